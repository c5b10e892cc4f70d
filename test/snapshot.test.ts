/**
 * Snapshots through the agents' control API (docs/snapshot.md): a guest that writes constantly is snapshotted on
 * one agent while it runs, restored on another, and the determinism oracle checks the restored guest; a corrupt
 * or truncated file is refused with a typed error and no guest; the files stay inside --snapshot-dir; a restore
 * is admitted like a start; and a cold migration through a file stops the source only after the copy checked out.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Agent, AgentClient, startAgent } from '../src/agent/index.js';
import { coldMigrate } from '../src/cli/snapshot.js';
import { LivemigError, type MigrationError, UsageError } from '../src/errors.js';
import { type GuestConfig, referenceRun } from '../src/guest/index.js';
import { parseSnapshot } from '../src/snapshot/index.js';
import { childAgent, expectOracle, isAdvancing, MiB, runCli, waitFor } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'livemig-snapshots-'));
const config: GuestConfig = {
  ramBytes: 16 * MiB,
  vcpus: 2,
  seed: 5,
  workload: { name: 'gap', params: { workingSetBytes: 8 * MiB, writeRate: 0 } },
};
let a: Agent;
let b: Agent;
let ca: AgentClient;
let cb: AgentClient;

beforeAll(async () => {
  [a, b] = await Promise.all([
    startAgent({ host: '127.0.0.1', port: 0, snapshotDir: dir }),
    // Room for one 16 MiB guest and its vCPU threads, not two.
    startAgent({ host: '127.0.0.1', port: 0, snapshotDir: dir, limits: { maxRamTotalBytes: 40 * MiB } }),
  ]);
  ca = new AgentClient(a.address);
  cb = new AgentClient(b.address);
});
afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
  rmSync(dir, { recursive: true, force: true });
});

async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => {
      throw new Error('expected a refusal');
    },
    (err: Error) => err,
  );
}

describe('snapshot and restore through the agents', () => {
  it('a guest writing constantly: snapshotted live on A, restored on B, checked by the oracle', async () => {
    await ca.startGuest(config, 'busy');
    await waitFor(async () => Math.min(...(await ca.guest('busy')).steps) > 3000, 60_000, 'some work');
    const snap = await ca.snapshot('busy', 'busy.snap');
    expect(snap.live).toBe(true);
    expect(snap.file).toBe('busy.snap');
    expect(snap.stepsPerSecBefore).toBeGreaterThan(0);
    expect(snap.diskBytes).toBeLessThan(snap.fileBytes); // the untouched half of RAM is holes
    // The snapshot did not stop the guest.
    expect((await ca.guest('busy')).status).toBe('running');
    expect(await isAdvancing(ca, 'busy')).toBe(true);

    // Restored paused: exactly the guest at the instant (a guest run straight to the same steps).
    const r = await cb.restore('busy.snap', { id: 'copy', run: false });
    expect(r.steps).toEqual(snap.steps);
    expect(r.guest.origin).toBe('restored');
    const reference = await referenceRun(config, snap.steps);
    expect((await cb.state('copy')).vcpus).toEqual(reference.state.vcpus);
    const bytes = Buffer.from(await cb.ram('copy'));
    let differs = -1;
    for (let p = 0; p < reference.ram.pageCount && differs < 0; p++)
      if (!bytes.subarray(p * 4096, (p + 1) * 4096).equals(reference.ram.page(p))) differs = p;
    expect(differs).toBe(-1);
    // Then it runs on, and the oracle checks it wherever it got to.
    await cb.resume('copy');
    expect(await isAdvancing(cb, 'copy')).toBe(true);
    await expectOracle(cb, 'copy', config);
    await cb.stopGuest('copy');
    // The source, never paused for long, still passes the oracle too.
    await expectOracle(ca, 'busy', config);
    await ca.stopGuest('busy');
  }, 180_000);

  it('a corrupt or truncated file is refused with a typed error; no guest starts; the running guest is untouched', async () => {
    await ca.startGuest(config, 'src');
    await ca.snapshot('src', 'good.snap');
    const good = readFileSync(join(dir, 'good.snap'));
    const { header, pages } = parseSnapshot(good);
    const bad = Buffer.from(good);
    bad[header.layout.ramOffset + [...pages.keys()][5]! * 4096 + 77]! ^= 1;
    writeFileSync(join(dir, 'bad.snap'), bad);
    writeFileSync(join(dir, 'short.snap'), good.subarray(0, good.length - 100));
    for (const [file, code, words] of [
      ['bad.snap', 'SNAPSHOT_CORRUPT', /page \d+/],
      ['short.snap', 'SNAPSHOT_CORRUPT', /truncated/],
    ] as const) {
      const err = await rejection(cb.restore(file, { id: 'nope' }));
      expect(err).toBeInstanceOf(LivemigError);
      expect((err as LivemigError).code).toBe(code);
      expect(err.message).toMatch(words);
    }
    expect((await cb.guests()).map((g) => g.id)).not.toContain('nope');
    expect((await ca.guest('src')).status).toBe('running');
    expect(await isAdvancing(ca, 'src')).toBe(true);
    // The good one still restores (and B, with room for one guest only, then refuses a second).
    await cb.restore('good.snap', { id: 'ok' });
    const full = await rejection(cb.restore('good.snap', { id: 'ok2' }));
    expect((full as MigrationError).code).toBe('RESOURCE_LIMIT');
    await cb.stopGuest('ok');
    await ca.stopGuest('src');
  }, 180_000);

  it('files stay inside --snapshot-dir; an agent without one refuses', async () => {
    await ca.startGuest({ ...config, ramBytes: 4 * MiB, workload: { name: 'gap' } }, 'tiny');
    for (const file of ['../escape.snap', '/etc/passwd', 'sub/x.snap', '.hidden']) {
      const err = await rejection(ca.snapshot('tiny', file));
      expect(err).toBeInstanceOf(UsageError);
      expect(err.message).toMatch(/--snapshot-dir/);
    }
    expect(await rejection(cb.restore('/etc/passwd'))).toBeInstanceOf(UsageError);
    // An absolute path naming a file in the folder is fine.
    const snap = await ca.snapshot('tiny', join(dir, 'tiny.snap'));
    expect(snap.file).toBe('tiny.snap');
    // An existing file is never replaced.
    expect((await rejection(ca.snapshot('tiny', 'tiny.snap'))).message).toMatch(/exists/);
    await ca.stopGuest('tiny');
    const plain = await startAgent({ host: '127.0.0.1', port: 0 });
    // With an API token, both need it (they write and read guest memory).
    const guarded = await startAgent({
      host: '127.0.0.1',
      port: 0,
      snapshotDir: dir,
      apiToken: 'sesame-0123456789',
    });
    try {
      const c = new AgentClient(plain.address);
      await c.startGuest({ ...config, ramBytes: 4 * MiB }, 'g');
      const err = await rejection(c.snapshot('g', 'x.snap'));
      expect((err as MigrationError).code).toBe('FORBIDDEN');
      const owner = new AgentClient(guarded.address, { token: 'sesame-0123456789' });
      await owner.startGuest({ ...config, ramBytes: 4 * MiB }, 'g');
      const stranger = new AgentClient(guarded.address, { token: 'wrong-token-000000' });
      expect(((await rejection(stranger.snapshot('g', 'y.snap'))) as MigrationError).code).toBe(
        'AUTH_FAILED',
      );
      expect(((await rejection(stranger.restore('tiny.snap'))) as MigrationError).code).toBe('AUTH_FAILED');
      expect((await owner.snapshot('g', 'y.snap')).file).toBe('y.snap');
    } finally {
      await Promise.all([plain.close(), guarded.close()]);
    }
  }, 120_000);

  it('cold migration through a file: the source stops only after the copy checked out', async () => {
    await ca.startGuest(config, 'mover');
    await waitFor(async () => Math.min(...(await ca.guest('mover')).steps) > 1000, 60_000, 'some work');
    const moved = await coldMigrate(ca, cb, 'mover', 'mover.snap');
    expect(moved.steps.every((s) => s > 1000)).toBe(true);
    expect((await ca.guests()).map((g) => g.id)).not.toContain('mover');
    expect((await cb.guest('mover')).status).toBe('running');
    await expectOracle(cb, 'mover', config);
    await cb.stopGuest('mover');

    // A restore that fails (B already hosts that name): the source resumes, nothing is left on B.
    await ca.startGuest(config, 'stay');
    await cb.startGuest({ ...config, ramBytes: 4 * MiB }, 'stay');
    await expect(coldMigrate(ca, cb, 'stay', 'stay.snap')).rejects.toThrow(/already exists/);
    expect((await ca.guest('stay')).status).toBe('running');
    expect((await cb.guest('stay')).config.ramBytes).toBe(4 * MiB);
    await Promise.all([ca.stopGuest('stay'), cb.stopGuest('stay')]);
  }, 180_000);
});

describe('the livemig commands', () => {
  it('guest snapshot / restore print their figures (and --json); a damaged file exits 1 with its code', async () => {
    // Agents as child processes: runCli blocks this process while the command runs.
    const cliDir = mkdtempSync(join(tmpdir(), 'livemig-snapshots-cli-'));
    const [x, y] = await Promise.all([
      childAgent(['--snapshot-dir', cliDir]),
      childAgent(['--snapshot-dir', cliDir]),
    ]);
    try {
      await x.client.startGuest({ ...config, ramBytes: 8 * MiB }, 'c1');
      const text = runCli([
        'guest',
        'snapshot',
        '--agent',
        x.child.address,
        '--guest',
        'c1',
        '--to',
        'c1.snap',
      ]);
      expect(text.code).toBe(0);
      expect(text.stdout).toMatch(/snapshot of c1 written to c1\.snap: .*2048 pages/);
      expect(text.stdout).toMatch(/snapshot time \d+.*guest paused/);
      expect(text.stdout).toMatch(/steps\/s before, .* during \(slowdown -?\d+%\)/);
      const json = runCli([
        'guest',
        'snapshot',
        '--agent',
        x.child.address,
        '--guest',
        'c1',
        '--to',
        'c2.snap',
        '--json',
      ]);
      const snap = JSON.parse(json.stdout) as { live: boolean; fileBytes: number; steps: number[] };
      expect(snap.live).toBe(true);
      const restored = runCli([
        'guest',
        'restore',
        'c2.snap',
        '--agent',
        y.child.address,
        '--id',
        'c2',
        '--json',
      ]);
      expect(restored.code).toBe(0);
      const r = JSON.parse(restored.stdout) as {
        steps: number[];
        restoreMs: number;
        guest: { status: string };
      };
      expect(r.steps).toEqual(snap.steps);
      expect(r.guest.status).toBe('running');
      expect(r.restoreMs).toBeGreaterThan(0);
      const bytes = readFileSync(join(cliDir, 'c1.snap'));
      writeFileSync(join(cliDir, 'cut.snap'), bytes.subarray(0, bytes.length - 4096));
      const bad = runCli(['guest', 'restore', 'cut.snap', '--agent', y.child.address]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/\[SNAPSHOT_CORRUPT\] .*truncated/);
      expect((await y.client.guests()).map((g) => g.id)).toEqual(['c2']);
    } finally {
      await Promise.all([x.child.stop(), y.child.stop()]);
      rmSync(cliDir, { recursive: true, force: true });
    }
  }, 180_000);
});
