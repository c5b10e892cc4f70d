import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isPlanetlabDay, loadPlanetlabDay, PLANETLAB_DAYS, planetlabDayFile } from './bundled.js';
import { TraceFormatError } from './trace-error.js';
import { decodeTracePack, encodeTracePack, loadTracePack, workloadDigest } from './tracepack.js';
import { type Workload, workloadStats } from './workload.js';

/**
 * Recorded when the packs were made (src/sim/pack-planetlab.ts) from CloudSim's text files, and checked against the
 * text files independently of livemig's code: VM count, sum of all samples (`cat * | awk '{s+=$1} END {print s}'`)
 * and the SHA-256 of every file's name and content in byte order of the names
 * (`LC_ALL=C ls | while IFS= read -r f; do printf '%s\n' "$f"; cat -- "$f"; done | sha256sum`).
 * A pack that decodes to these is the original day, every name and number.
 */
const ORIGINALS: Record<string, { vms: number; sum: number; sha256: string }> = {
  '20110303': {
    vms: 1052,
    sum: 3730979,
    sha256: '216d0b7700bb07b7f30005185cbb434f0d515d47f3d4a7424676cb0a218b9318',
  },
  '20110306': {
    vms: 898,
    sum: 2958567,
    sha256: '6940b9be7f8a1fddfab4bc0eb0d3d6478bc2d3e2367cdaddb32a26cef3e4d927',
  },
  '20110309': {
    vms: 1061,
    sum: 3270541,
    sha256: '68b1812c3fca1c59aa061f5997ef3045821e2befc7c4fb159f5603456e8e0b82',
  },
  '20110322': {
    vms: 1516,
    sum: 4044554,
    sha256: '8d20265b950dc2db1463cd4a057977ecc63edfeff26db133c11072b733d6ddbe',
  },
  '20110325': {
    vms: 1078,
    sum: 3278904,
    sha256: '499d041e4863c6a58ba95d18fe5d62094ea7787ed910c625a9c08a8e59e6c05d',
  },
  '20110403': {
    vms: 1463,
    sum: 5222074,
    sha256: 'd5da0e7152764091cd5e3f45a440bab62cc0a9272f7e4df4db083b3a846ccdca',
  },
  '20110409': {
    vms: 1358,
    sum: 4348839,
    sha256: '4e50db6c09923f1ce93b065097e3409e8f74eced08683c84d805d76361b8300f',
  },
  '20110411': {
    vms: 1233,
    sum: 4104606,
    sha256: '06e0cbc23980b6a232f3ae55b6fb514eb237e5cf8bebd28746ed9b3b0e5541e8',
  },
  '20110412': {
    vms: 1054,
    sum: 3501784,
    sha256: 'ad303ce83c9c30b80ecfcb3e047b6e0b80e2f015513d2aee4d5c8c9e9d0f5851',
  },
  '20110420': {
    vms: 1033,
    sum: 3103287,
    sha256: 'cb78607274885170e0fafa991f336d233ef68e19478db7ad752ead30e0c29fb2',
  },
};

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('bundled PlanetLab days', () => {
  it('are the ten days CloudSim ships, each decoding to the original files (names and numbers)', async () => {
    expect([...PLANETLAB_DAYS]).toEqual(Object.keys(ORIGINALS));
    for (const day of PLANETLAB_DAYS) {
      const w = await loadPlanetlabDay(day);
      expect(w.name).toBe(day);
      expect(w.samplesPerVm).toBe(288);
      expect(w.samples.length).toBe(w.vms * 288);
      expect(workloadDigest(w)).toEqual(ORIGINALS[day]);
    }
  });

  it("one file's worth: 20110303's first VM is its text file, byte for byte when rendered back", async () => {
    const w = await loadPlanetlabDay('20110303');
    // Recorded from the original file: its name (first in byte order), first values, sum and `sha256sum` of the file.
    expect(w.vmNames[0]).toBe('146-179_surfsnel_dsl_internl_net_colostate_557');
    const vm0 = Array.from(w.samples.subarray(0, 288));
    expect(vm0.slice(0, 12)).toEqual([24, 34, 29, 26, 26, 21, 18, 25, 25, 20, 12, 40]);
    expect(vm0.slice(-3)).toEqual([22, 20, 51]);
    expect(vm0.reduce((a, b) => a + b, 0)).toBe(7484);
    const text = `${vm0.join('\n')}\n`;
    expect(createHash('sha256').update(text).digest('hex')).toBe(
      'ac2b75e499540234398c8f8969d018ee2e9bad545d18c26bb7fc601a2cce8220',
    );
  });

  it('20110303 has the published mean and st. dev., VMs in byte order of the file names', async () => {
    const w = await loadPlanetlabDay('20110303');
    const s = workloadStats(w);
    expect(s.mean).toBeCloseTo(12.31, 2);
    expect(s.stdev).toBeCloseTo(17.09, 2);
    const sorted = [...w.vmNames].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect(w.vmNames).toEqual(sorted);
    // Some PlanetLab file names hold spaces; they survive the pack.
    expect(w.vmNames.filter((n) => n.includes(' ')).length).toBe(50);
  });

  it('are found next to the module, whatever the current folder', async () => {
    const elsewhere = await mkdtemp(join(tmpdir(), 'livemig-cwd-'));
    dirs.push(elsewhere);
    const before = process.cwd();
    process.chdir(elsewhere);
    try {
      expect((await loadPlanetlabDay('20110306')).vms).toBe(898);
    } finally {
      process.chdir(before);
    }
    expect(planetlabDayFile('20110306')).toMatch(/data[\\/]planetlab[\\/]20110306\.trace\.br$/);
  });

  it('an unknown day name is a usage error that lists the bundled days', async () => {
    expect(isPlanetlabDay('20110304')).toBe(false);
    await expect(loadPlanetlabDay('20110304')).rejects.toThrow(
      /no bundled PlanetLab day "20110304".*20110303, /,
    );
  });
});

describe('trace packs', () => {
  const small: Workload = {
    name: 'small',
    vmNames: ['a', 'b c', 'é'],
    vms: 3,
    samplesPerVm: 4,
    samples: Uint8Array.from([0, 1, 2, 3, 100, 99, 50, 0, 7, 7, 7, 7]),
  };

  it('round-trip names, shape and samples exactly', () => {
    const back = decodeTracePack(encodeTracePack(small), 'x.trace.br', 'small');
    expect(back).toEqual({ ...small, intervalSeconds: 300 });
  });

  it('reject corrupt, truncated and out-of-range packs naming the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'livemig-pack-'));
    dirs.push(dir);
    const good = encodeTracePack(small);
    const garbage = join(dir, 'garbage.trace.br');
    await writeFile(garbage, Buffer.from('not a pack at all'));
    await expect(loadTracePack(garbage)).rejects.toThrow(
      `trace ${garbage}: not Brotli-compressed data; expected a livemig trace pack (.trace.br)`,
    );
    // Decompress, cut the last sample, recompress: the header no longer matches the length.
    const { brotliCompressSync, brotliDecompressSync } = await import('node:zlib');
    const raw = brotliDecompressSync(good);
    expect(() => decodeTracePack(brotliCompressSync(raw.subarray(0, raw.length - 1)), 'cut', 'x')).toThrow(
      /cut: \d+ bytes after decompression, the header says \d+/,
    );
    const hot = Buffer.from(raw);
    hot[hot.length - 1] = 101;
    expect(() => decodeTracePack(brotliCompressSync(hot), 'hot', 'x')).toThrow(TraceFormatError);
    const pack = join(dir, 'small.trace.br');
    await writeFile(pack, good);
    expect((await loadTracePack(pack)).name).toBe('small');
    expect((await readFile(pack)).length).toBeLessThan(100);
  });
});
