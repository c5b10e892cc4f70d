/**
 * Live snapshot and restore, checked by the determinism oracle: the file holds the guest exactly as it was at the
 * snapshot's instant (the RAM of a guest run straight to the same steps), the restored guest runs on as if it had
 * never stopped, and the copy-before-write path gives the start-instant image however much the guest writes.
 * A corrupt, truncated or foreign file is refused with a typed error and no guest is left behind.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Guest, type GuestConfig, ramEquals, referenceRun } from '../guest/index.js';
import { parseSnapshot, restoreSnapshot, SnapshotError, writeSnapshot } from './index.js';

const MiB = 1 << 20;
const dir = mkdtempSync(join(tmpdir(), 'livemig-snapshot-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(dir, `s${n++}.snap`);

// A guest that writes as fast as it can, half its RAM untouched (zero pages: holes in the file).
const config: GuestConfig = {
  ramBytes: 8 * MiB,
  vcpus: 2,
  seed: 11,
  workload: { name: 'gap', params: { workingSetBytes: 4 * MiB, writeRate: 0 } },
};

const until = async (cond: () => boolean) => {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
};

async function snapshotOfRunning(file: string): Promise<Awaited<ReturnType<typeof writeSnapshot>>> {
  const guest = await Guest.create(config);
  try {
    guest.resume();
    await until(() => Math.min(...guest.steps()) > 2000);
    // A pool of 8 slots: the vCPUs run out of them and wait for the writer, which saves copies first.
    const result = await writeSnapshot(guest, file, { baselineMs: 50, batchPages: 16, copySlots: 8 });
    // The guest kept running: it was never left paused, and it goes on stepping after the snapshot.
    expect(guest.running).toBe(true);
    const after = guest.steps();
    await until(() => guest.steps().every((s, i) => s > after[i]!));
    return result;
  } finally {
    await guest.destroy();
  }
}

describe('live snapshot', () => {
  it('of a guest writing constantly: the file is the guest at the instant; the restored guest runs on as the oracle says', async () => {
    const file = fresh();
    const result = await snapshotOfRunning(file);
    expect(result.live).toBe(true);
    expect(result.pages).toBe(config.ramBytes / 4096);
    expect(result.zeroPages).toBeGreaterThanOrEqual(result.pages / 2);
    expect(result.fileBytes).toBe(statSync(file).size);
    expect(result.stepsPerSecBefore).toBeGreaterThan(0);
    expect(result.stepsPerSecDuring).toBeGreaterThanOrEqual(0);

    const reference = await referenceRun(config, result.steps);
    const restored = await restoreSnapshot(file, { run: false });
    try {
      expect(restored.guest.state().vcpus).toEqual(reference.state.vcpus);
      expect(ramEquals(restored.guest.ram, reference.ram)).toEqual({ equal: true, firstDifferentPage: -1 });
      expect(restored.pagesRead).toBe(result.pages - result.zeroPages);
      // Runs on from there exactly as a guest that never stopped.
      const targets = result.steps.map((s, i) => s + 1500 + 7 * i);
      await restored.guest.runToStep(targets);
      const later = await referenceRun(config, targets);
      expect(ramEquals(restored.guest.ram, later.ram)).toEqual({ equal: true, firstDifferentPage: -1 });
    } finally {
      await restored.guest.destroy();
    }
  }, 120_000);

  it('copy-before-write: pages the guest changes after the instant are saved as they were at it', async () => {
    const guest = await Guest.create(config);
    try {
      await guest.runToStep(1000);
      const wp = guest.startWriteProtect(); // 4096 slots: room for every page of this 8 MiB guest
      // Before the writer saves a single page, the guest runs on and rewrites many of them.
      await guest.runToStep(6000);
      const image = new Uint8Array(config.ramBytes);
      let copied = 0;
      for (let p = 0; p < config.ramBytes / 4096; p++)
        if (wp.save(p, image.subarray(p * 4096, (p + 1) * 4096)) === 'copy') copied++;
      guest.stopWriteProtect();
      expect(copied).toBeGreaterThan(0); // the vCPUs touched pages: their pre-write copies were used
      const atInstant = await referenceRun(config, 1000);
      const now = await referenceRun(config, 6000);
      expect(ramEquals(guest.ram, now.ram).equal).toBe(true); // the guest itself was not held back
      let diff = -1;
      for (let p = 0; p < config.ramBytes / 4096 && diff < 0; p++) {
        if (!Buffer.from(image.subarray(p * 4096, (p + 1) * 4096)).equals(Buffer.from(atInstant.ram.page(p))))
          diff = p;
      }
      expect(diff).toBe(-1);
      // And it runs on unprotected afterwards.
      await guest.runToStep(7000);
      expect(ramEquals(guest.ram, (await referenceRun(config, 7000)).ram).equal).toBe(true);
    } finally {
      await guest.destroy();
    }
  }, 120_000);

  it('of a paused guest (a cold snapshot) leaves it paused, and the file parses in memory too', async () => {
    const guest = await Guest.create(config);
    const file = fresh();
    try {
      await guest.runToStep(500);
      const result = await writeSnapshot(guest, file);
      expect(result.live).toBe(false);
      expect(result.copiedPages).toBe(0);
      expect(guest.running).toBe(false);
      const { header, pages } = parseSnapshot(readFileSync(file));
      expect(header.guest.vcpus.map((v) => v.step)).toEqual([500, 500]);
      for (const [p, data] of pages)
        expect(Buffer.from(data).equals(Buffer.from(guest.ram.page(p)))).toBe(true);
    } finally {
      await guest.destroy();
    }
  }, 60_000);

  it('refuses to overwrite a file; an existing file is left alone and the guest keeps running', async () => {
    const file = fresh();
    writeFileSync(file, 'precious');
    const guest = await Guest.create(config);
    try {
      guest.resume();
      await expect(writeSnapshot(guest, file)).rejects.toThrow(/exists/);
      expect(readFileSync(file, 'utf8')).toBe('precious');
      expect(guest.running).toBe(true);
    } finally {
      await guest.destroy();
    }
  });
});

describe('restore refuses a bad file, and starts nothing', () => {
  let good: Buffer;
  let goodFile: string;
  it('makes a good snapshot', async () => {
    goodFile = fresh();
    const guest = await Guest.create(config);
    try {
      await guest.runToStep(300);
      await writeSnapshot(guest, goodFile);
    } finally {
      await guest.destroy();
    }
    good = readFileSync(goodFile);
  }, 60_000);

  const cases: [string, (b: Buffer) => Buffer, string, RegExp][] = [
    ['a flipped bit in a page', (b) => flipInPage(b), 'SNAPSHOT_CORRUPT', /page \d+ .*checksum/],
    ['a truncated file', (b) => b.subarray(0, b.length - 4096), 'SNAPSHOT_CORRUPT', /truncated/],
    ['a flipped bit in the header', (b) => flip(b, 100), 'SNAPSHOT_CORRUPT', /header checksum/],
    [
      'a flipped bit in the page tables',
      (b) => flip(b, parseSnapshot(b).header.layout.bitmapOffset),
      'SNAPSHOT_CORRUPT',
      /tables/,
    ],
    [
      'an unfinished file (no prefix)',
      (b) => Buffer.concat([Buffer.alloc(64), b.subarray(64)]),
      'SNAPSHOT_CORRUPT',
      /never finished/,
    ],
    [
      'another kind of file',
      () => Buffer.from('{"hello": "world"}\n'),
      'SNAPSHOT_FORMAT',
      /does not start with/,
    ],
  ];
  it.each(cases)(
    '%s',
    async (_what, damage, code, message) => {
      expect.assertions(5);
      const file = fresh();
      writeFileSync(file, damage(good));
      let admitted = 0;
      let released = 0;
      try {
        await restoreSnapshot(file, {
          admit: () => {
            admitted++;
            return () => released++;
          },
        });
      } catch (err) {
        expect(err).toBeInstanceOf(SnapshotError);
        expect((err as SnapshotError).code).toBe(code);
        expect((err as SnapshotError).message).toMatch(message);
      }
      expect(released).toBe(admitted); // any reservation taken was given back
      // The good file is untouched and still restores.
      const ok = await restoreSnapshot(goodFile, { run: false });
      expect(ok.guest.steps()).toEqual([300, 300]);
      await ok.guest.destroy();
    },
    60_000,
  );
});

function flip(b: Buffer, at: number): Buffer {
  const c = Buffer.from(b);
  c[at]! ^= 0x10;
  return c;
}

function flipInPage(b: Buffer): Buffer {
  const { header, pages } = parseSnapshot(b);
  const p = [...pages.keys()][3]!;
  return flip(b, header.layout.ramOffset + p * header.layout.pageSize + 123);
}

describe('live snapshot of other workloads (reads through the MMU are protected too)', () => {
  it.each([
    ['twolf', { writeProbability: 0.3 }],
    ['kv', {}],
    ['kv-read', {}],
  ] as const)(
    '%s: the file equals the guest at the instant',
    async (name, params) => {
      const other: GuestConfig = { ramBytes: 4 * MiB, vcpus: 2, seed: 4, workload: { name, params } };
      const guest = await Guest.create(other);
      const file = fresh();
      try {
        guest.resume();
        await until(() => Math.min(...guest.steps()) > 500);
        const result = await writeSnapshot(guest, file, { batchPages: 8, copySlots: 4 });
        expect(guest.running).toBe(true);
        const reference = await referenceRun(other, result.steps);
        const restored = await restoreSnapshot(file, { run: false });
        try {
          expect(restored.guest.state().vcpus).toEqual(reference.state.vcpus);
          expect(ramEquals(restored.guest.ram, reference.ram)).toEqual({
            equal: true,
            firstDifferentPage: -1,
          });
        } finally {
          await restored.guest.destroy();
        }
      } finally {
        await guest.destroy();
      }
    },
    120_000,
  );
});
