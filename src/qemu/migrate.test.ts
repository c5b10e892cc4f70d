import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MigrationError, UsageError } from '../errors.js';
import { migrateQemu } from './migrate.js';
import { QmpClient, type QmpMigrationInfo } from './qmp.js';

const GREETING = {
  QMP: { version: { qemu: { major: 10, minor: 0, micro: 2 }, package: '' }, capabilities: [] },
};
const servers: Server[] = [];
const clients: QmpClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const s of servers.splice(0)) s.close();
});

/** A scripted QEMU: records every command, answers query-migrate from `script` (the last entry repeats). */
async function fakeQemu(
  script: QmpMigrationInfo[],
  answers: Record<string, unknown> = {},
): Promise<{ client: QmpClient; log: { execute: string; arguments?: unknown }[] }> {
  const path = join(mkdtempSync(join(tmpdir(), 'fakeqemu-')), 'qmp.sock');
  const log: { execute: string; arguments?: unknown }[] = [];
  let step = 0;
  const server = createServer((sock) => {
    sock.write(`${JSON.stringify(GREETING)}\r\n`);
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const msg = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        log.push({ execute: msg.execute, arguments: msg.arguments });
        let ret: unknown = answers[msg.execute] ?? {};
        if (msg.execute === 'query-migrate') ret = script[Math.min(step++, script.length - 1)];
        if (msg.execute === 'query-migrate-parameters')
          ret = { 'downtime-limit': 300, 'max-bandwidth': 134217728, 'xbzrle-cache-size': 67108864 };
        sock.write(`${JSON.stringify({ return: ret, id: msg.id })}\r\n`);
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  servers.push(server);
  const client = await QmpClient.connect({ path });
  clients.push(client);
  return { client, log };
}

const MiB = 2 ** 20;
function ram(sync: number, transferredMiB: number, remainingMiB: number) {
  return {
    transferred: transferredMiB * MiB,
    remaining: remainingMiB * MiB,
    total: 256 * MiB,
    duplicate: 0,
    normal: (transferredMiB * MiB) / 4096,
    'normal-bytes': transferredMiB * MiB,
    'dirty-pages-rate': 2000,
    mbps: 268,
    'dirty-sync-count': sync,
    'postcopy-requests': 0,
    'page-size': 4096,
  };
}

/** A fake cgroup v1 cpu hierarchy: plain files where the kernel has control files (as in cgroup.test.ts). */
function fakeCgroupV1(): string {
  const root = mkdtempSync(join(tmpdir(), 'cgroup-'));
  mkdirSync(join(root, 'cpu'));
  writeFileSync(join(root, 'cpu', 'cpu.cfs_quota_us'), '-1\n');
  writeFileSync(join(root, 'cpu', 'tasks'), '');
  return root;
}

describe('migrateQemu', () => {
  it('sets capabilities and parameters, polls to completion and maps query-migrate into the report', async () => {
    const src = await fakeQemu([
      { status: 'active', ram: ram(1, 10, 200) },
      { status: 'active', ram: ram(2, 120, 20) },
      { status: 'active', ram: ram(3, 140, 2) },
      {
        status: 'completed',
        ram: ram(4, 150, 0),
        'total-time': 4321,
        downtime: 12,
        'setup-time': 3,
        'xbzrle-cache': {
          'cache-size': 32 * MiB,
          bytes: 1000,
          pages: 50,
          'cache-miss': 7,
          'cache-miss-rate': 0.1,
          overflow: 1,
        },
      },
    ]);
    const dst = await fakeQemu([{ status: 'active' }]);
    const r = await migrateQemu(src.client, dst.client, {
      uri: 'tcp:127.0.0.1:1',
      xbzrle: true,
      xbzrleCacheBytes: 32 * MiB,
      downtimeLimitMs: 50,
      maxBandwidth: 32 * MiB,
      pollMs: 1,
    });
    const caps = src.log.find((m) => m.execute === 'migrate-set-capabilities')?.arguments;
    expect(caps).toEqual({
      capabilities: [
        { capability: 'xbzrle', state: true },
        { capability: 'auto-converge', state: false },
        { capability: 'postcopy-ram', state: false },
        // Always said: a QEMU that arrived by a multifd migration keeps multifd on otherwise.
        { capability: 'multifd', state: false },
      ],
    });
    expect(src.log.find((m) => m.execute === 'migrate-set-parameters')?.arguments).toEqual({
      'downtime-limit': 50,
      'max-bandwidth': 32 * MiB,
      'xbzrle-cache-size': 32 * MiB,
    });
    expect(r.verify).toBe('none');
    expect(r.verified).toBe(false);
    expect(src.log.find((m) => m.execute === 'migrate')?.arguments).toEqual({ uri: 'tcp:127.0.0.1:1' });
    expect(dst.log.some((m) => m.execute === 'migrate-set-capabilities')).toBe(false);
    expect(r.status).toBe('completed');
    expect(r.totalTimeMs).toBe(4321);
    expect(r.downtimeMs).toBe(12);
    // Syncs: setup, after round 1, after round 2, stop-and-copy: two live rounds in livemig's sense.
    expect(r.rounds).toBe(2);
    expect(r.qemu.dirtySyncCount).toBe(4);
    expect(r.engine).toBe('qemu');
    expect(r.switchoverReason).toBe('converged');
    expect(r.xbzrle.cacheWays).toBe(1);
    expect(r.transferredBytes).toBe(150 * MiB);
    expect(r.xbzrle).toMatchObject({
      enabled: true,
      cacheHits: 51,
      encodedBytes: 1000,
      pageBytes: 50 * 4096,
      cacheMisses: 7,
      overflows: 1,
      cacheBytes: 32 * MiB,
    });
    expect(r.pages).toMatchObject({ xbzrle: 50, raw: (150 * MiB) / 4096, zero: 0 });
    // One row per live round; the stop-and-copy's sync (seen with `completed`) is not a round.
    expect(r.perRound.map((s) => [s.round, s.bytes / MiB, s.dirtyPages])).toEqual([
      [1, 110, 5120],
      [2, 20, 512],
    ]);
    expect(r.stalled).toBe(false);
  });

  it('post-copy: postcopy-ram on both sides, migrate-start-postcopy once active', async () => {
    const src = await fakeQemu([
      { status: 'setup' },
      { status: 'active', ram: ram(1, 1, 250) },
      { status: 'postcopy-active', ram: ram(2, 100, 100) },
      { status: 'completed', ram: ram(2, 200, 0) },
    ]);
    const dst = await fakeQemu([{ status: 'active' }]);
    const r = await migrateQemu(src.client, dst.client, { uri: 'tcp:x:1', strategy: 'postcopy', pollMs: 1 });
    expect(dst.log.find((m) => m.execute === 'migrate-set-capabilities')?.arguments).toEqual({
      capabilities: [
        { capability: 'postcopy-ram', state: true },
        { capability: 'postcopy-blocktime', state: true },
      ],
    });
    expect(src.log.filter((m) => m.execute === 'migrate-start-postcopy')).toHaveLength(1);
    // Said off explicitly: a QEMU that arrived by a migration with postcopy-preempt keeps it on otherwise.
    const srcCaps = src.log.find((m) => m.execute === 'migrate-set-capabilities')?.arguments as
      | { capabilities: unknown[] }
      | undefined;
    expect(srcCaps?.capabilities).toContainEqual({ capability: 'postcopy-preempt', state: false });
    expect(r.qemu.switchedToPostcopy).toBe(true);
    expect(r.qemu.postcopyReason).toBe('strategy');
    expect(r.switchoverReason).toBe('postcopy: strategy');
    // The post-copy phase gets the same bandwidth limit as pre-copy (QEMU's own default is unlimited).
    expect(src.log.find((m) => m.execute === 'migrate-set-parameters')?.arguments).toMatchObject({
      'max-postcopy-bandwidth': 128 * MiB,
    });
  });

  it("multifd: QEMU's multifd capability and multifd-channels on both sides, zstd as multifd-compression", async () => {
    const src = await fakeQemu([{ status: 'completed', ram: ram(2, 150, 0) }]);
    const dst = await fakeQemu([{ status: 'active' }]);
    await migrateQemu(src.client, dst.client, {
      uri: 'tcp:x:1',
      multifdChannels: 4,
      compress: 'zstd',
      pollMs: 1,
    });
    expect(src.log.find((m) => m.execute === 'migrate-set-capabilities')?.arguments).toEqual({
      capabilities: [
        { capability: 'xbzrle', state: false },
        { capability: 'auto-converge', state: false },
        { capability: 'postcopy-ram', state: false },
        { capability: 'multifd', state: true },
      ],
    });
    expect(dst.log.find((m) => m.execute === 'migrate-set-capabilities')?.arguments).toEqual({
      capabilities: [{ capability: 'multifd', state: true }],
    });
    const mf = { 'multifd-channels': 4, 'multifd-compression': 'zstd' };
    expect(dst.log.find((m) => m.execute === 'migrate-set-parameters')?.arguments).toEqual(mf);
    // The destination (started with -incoming defer) listens only once multifd is set.
    const dstOrder = dst.log.map((m) => m.execute);
    expect(dstOrder.indexOf('migrate-incoming')).toBeGreaterThan(dstOrder.indexOf('migrate-set-parameters'));
    expect(dst.log.find((m) => m.execute === 'migrate-incoming')?.arguments).toEqual({ uri: 'tcp:x:1' });
    expect(
      src.log.filter((m) => m.execute === 'migrate-set-parameters').map((m) => m.arguments),
    ).toContainEqual(mf);
    // Both sides are set before the stream starts.
    const order = src.log.map((m) => m.execute);
    expect(order.indexOf('migrate')).toBeGreaterThan(order.lastIndexOf('migrate-set-parameters'));
    // lz4 has no QEMU multifd counterpart.
    const lz4 = await migrateQemu(src.client, dst.client, {
      uri: 'tcp:x:1',
      multifdChannels: 2,
      compress: 'lz4',
    }).catch((e: unknown) => e);
    expect(lz4).toBeInstanceOf(UsageError);
    expect(String((lz4 as Error).message)).toMatch(/zstd or zlib/);
  });

  it('postcopy-preempt: the capability on both sides; the destination reports postcopy-blocktime', async () => {
    const src = await fakeQemu([
      { status: 'active', ram: ram(1, 1, 250) },
      { status: 'postcopy-active', ram: ram(2, 100, 100) },
      { status: 'completed', ram: ram(2, 200, 0) },
    ]);
    const dst = await fakeQemu([
      { status: 'active', 'postcopy-blocktime': 120, 'postcopy-vcpu-blocktime': [120] } as QmpMigrationInfo,
    ]);
    const r = await migrateQemu(src.client, dst.client, {
      uri: 'tcp:x:1',
      strategy: 'postcopy',
      postcopyPreempt: true,
      pollMs: 1,
    });
    type Caps = { capabilities: { capability: string; state: boolean }[] } | undefined;
    const caps = (c: { log: { execute: string; arguments?: unknown }[] }) =>
      (c.log.find((m) => m.execute === 'migrate-set-capabilities')?.arguments as Caps)?.capabilities;
    expect(caps(src)).toContainEqual({ capability: 'postcopy-preempt', state: true });
    expect(caps(dst)).toContainEqual({ capability: 'postcopy-preempt', state: true });
    expect(caps(dst)).toContainEqual({ capability: 'postcopy-blocktime', state: true });
    expect(r.qemu.postcopyBlocktime).toEqual({ totalMs: 120, vcpuMs: [120] });
  });

  it('a destination started with -incoming defer is told to listen once its capabilities are set', async () => {
    const src = await fakeQemu([{ status: 'completed', ram: ram(1, 100, 0) }]);
    const dst = await fakeQemu([{ status: 'active' }]);
    await migrateQemu(src.client, dst.client, {
      uri: 'tcp:127.0.0.1:4444',
      listen: true,
      strategy: 'postcopy',
      postcopyPreempt: true,
      pollMs: 1,
    });
    const order = dst.log.map((m) => m.execute);
    expect(order.indexOf('migrate-incoming')).toBeGreaterThan(order.indexOf('migrate-set-capabilities'));
    expect(dst.log.find((m) => m.execute === 'migrate-incoming')?.arguments).toEqual({
      uri: 'tcp:127.0.0.1:4444',
    });
    expect(src.log.findIndex((m) => m.execute === 'migrate')).toBeGreaterThanOrEqual(0);
  });

  it('stall detection: a dirty set that stops shrinking is cancelled with STALLED', async () => {
    const script: QmpMigrationInfo[] = [{ status: 'active', ram: ram(1, 10, 200) }];
    for (let i = 2; i < 12; i++) script.push({ status: 'active', ram: ram(i, 100 + 10 * i, 60 + (i % 2)) });
    const src = await fakeQemu(script);
    const dst = await fakeQemu([{ status: 'active' }]);
    const err = await migrateQemu(src.client, dst.client, {
      uri: 'tcp:x:1',
      stallRounds: 3,
      onStall: 'abort',
      pollMs: 1,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as MigrationError).code).toBe('STALLED');
    expect(src.log.some((m) => m.execute === 'migrate_cancel')).toBe(true);
  });

  it('stall detection with onStall postcopy switches instead', async () => {
    const script: QmpMigrationInfo[] = [{ status: 'active', ram: ram(1, 10, 200) }];
    for (let i = 2; i < 8; i++) script.push({ status: 'active', ram: ram(i, 100 + 10 * i, 60) });
    script.push({ status: 'completed', ram: ram(8, 300, 0) });
    const src = await fakeQemu(script);
    const dst = await fakeQemu([{ status: 'active' }]);
    const r = await migrateQemu(src.client, dst.client, {
      uri: 'tcp:x:1',
      stallRounds: 2,
      onStall: 'postcopy',
      pollMs: 1,
    });
    expect(r.stalled).toBe(true);
    expect(r.qemu.switchedToPostcopy).toBe(true);
    expect(r.qemu.postcopyReason).toBe('stalled');
    expect(dst.log.some((m) => m.execute === 'migrate-set-capabilities')).toBe(true);
  });

  it('times out: cancels before switch-over and fails with TIMEOUT', async () => {
    const src = await fakeQemu([{ status: 'active', ram: ram(1, 1, 250) }]);
    const dst = await fakeQemu([{ status: 'active' }]);
    const err = await migrateQemu(src.client, dst.client, { uri: 'tcp:x:1', timeoutMs: 30, pollMs: 5 }).catch(
      (e: unknown) => e,
    );
    expect((err as MigrationError).code).toBe('TIMEOUT');
    expect(src.log.some((m) => m.execute === 'migrate_cancel')).toBe(true);
  });

  it('dynamic XBZRLE cache sizing: nextCacheSize between rounds, applied with xbzrle-cache-size', async () => {
    const cache = (pages: number, bytes: number, miss: number) => ({
      'cache-size': 64 * MiB,
      bytes,
      pages,
      'cache-miss': miss,
      'cache-miss-rate': 0,
      overflow: 0,
    });
    const src = await fakeQemu([
      { status: 'active', ram: ram(1, 10, 200), 'xbzrle-cache': cache(0, 0, 0) },
      // Round 1: QEMU does not use XBZRLE in its first pass; 20 MiB dirty left.
      { status: 'active', ram: ram(2, 120, 20), 'xbzrle-cache': cache(0, 0, 0) },
      // Round 2: 1000 pages encoded into 90% of their size: XBZRLE does not pay, the cache halves.
      { status: 'active', ram: ram(3, 140, 2), 'xbzrle-cache': cache(1000, 1000 * 4096 * 0.9, 10) },
      { status: 'completed', ram: ram(4, 150, 0), 'xbzrle-cache': cache(1000, 1000 * 4096 * 0.9, 10) },
    ]);
    const dst = await fakeQemu([{ status: 'active' }]);
    const progress: number[] = [];
    const r = await migrateQemu(src.client, dst.client, {
      uri: 'tcp:x:1',
      xbzrle: true,
      cacheSizing: 'dynamic',
      xbzrleCacheMaxBytes: 64 * MiB,
      pollMs: 1,
      onProgress: (p) => progress.push(p.rounds),
    });
    const sizes = src.log
      .filter((m) => m.execute === 'migrate-set-parameters')
      .map((m) => (m.arguments as Record<string, number>)['xbzrle-cache-size'])
      .filter((x) => x !== undefined);
    // Starts at the budget (round 1 fills the cache), then the policy's answer after round 2.
    expect(sizes).toEqual([64 * MiB, 32 * MiB]);
    expect(r.xbzrle.cacheSizing).toBe('dynamic');
    expect(r.xbzrle.cacheResizes).toEqual([{ round: 2, bytes: 32 * MiB }]);
    expect(r.xbzrle.cacheBytesPeak).toBe(64 * MiB);
    expect(r.events.some((e) => e.includes('64 → 32 MiB'))).toBe(true);
    expect(progress.length).toBe(4);
  });

  it('max rounds: QEMU has no such rule, so the switch-over is forced by raising downtime-limit', async () => {
    const script: QmpMigrationInfo[] = [];
    for (let i = 1; i < 6; i++) script.push({ status: 'active', ram: ram(i, 10 * i, 60) });
    script.push({ status: 'completed', ram: ram(6, 70, 0) });
    const src = await fakeQemu(script);
    const dst = await fakeQemu([{ status: 'active' }]);
    const r = await migrateQemu(src.client, dst.client, { uri: 'tcp:x:1', maxRounds: 2, pollMs: 1 });
    const limits = src.log
      .filter((m) => m.execute === 'migrate-set-parameters')
      .map((m) => (m.arguments as Record<string, number>)['downtime-limit']);
    expect(limits).toEqual([300, 2_000_000]);
    expect(r.switchoverReason).toBe('max-rounds');
  });

  it("proxmox's double-downtime: each round that does not shrink the dirty set doubles downtime-limit", async () => {
    const src = await fakeQemu([
      { status: 'active', ram: ram(1, 10, 200) },
      { status: 'active', ram: ram(2, 100, 60) },
      { status: 'active', ram: ram(3, 160, 60) }, // no progress: 100 → 200 ms
      { status: 'active', ram: ram(4, 220, 30) },
      { status: 'active', ram: ram(5, 250, 10) },
      { status: 'completed', ram: ram(6, 260, 0) },
    ]);
    const dst = await fakeQemu([{ status: 'active' }]);
    const r = await migrateQemu(src.client, dst.client, { uri: 'tcp:x:1', preset: 'proxmox', pollMs: 1 });
    const limits = src.log
      .filter((m) => m.execute === 'migrate-set-parameters')
      .map((m) => (m.arguments as Record<string, number>)['downtime-limit']);
    // proxmox: 100 ms, XBZRLE on, a round without progress doubles the limit.
    expect(limits).toEqual([100, 200]);
    expect(r.xbzrle.enabled).toBe(true);
    expect(r.downtimeLimitMs).toBe(200);
    expect(r.events.some((e) => e.includes('no progress in round 2'))).toBe(true);
  });

  it('downtime ramp: downtime-limit raised by STEP on rounds without progress up to MAX, then the stall action', async () => {
    const script: QmpMigrationInfo[] = [{ status: 'active', ram: ram(1, 10, 200) }];
    for (let i = 2; i < 9; i++) script.push({ status: 'active', ram: ram(i, 100 + 10 * i, 60) });
    script.push({ status: 'completed', ram: ram(9, 300, 0) });
    const src = await fakeQemu(script);
    const dst = await fakeQemu([{ status: 'active' }]);
    const r = await migrateQemu(src.client, dst.client, {
      uri: 'tcp:x:1',
      downtimeRamp: { startMs: 150, stepMs: 150, maxMs: 450 },
      onStall: 'postcopy',
      stallRounds: 1,
      pollMs: 1,
    });
    const limits = src.log
      .filter((m) => m.execute === 'migrate-set-parameters')
      .map((m) => (m.arguments as Record<string, number>)['downtime-limit']);
    expect(limits).toEqual([150, 300, 450]);
    expect(r.downtimeRamp).toEqual([
      { round: 2, fromMs: 150, toMs: 300 },
      { round: 3, fromMs: 300, toMs: 450 },
    ]);
    expect(r.downtimeLimitMs).toBe(450);
    expect(r.events.some((e) => e.includes('downtime ramp: no progress in round 2'))).toBe(true);
    // The stall action waited for the ramp to reach its maximum.
    const order = src.log.map((m) => m.execute);
    expect(order.indexOf('migrate-start-postcopy')).toBeGreaterThan(
      order.lastIndexOf('migrate-set-parameters'),
    );
    expect(r.qemu.postcopyReason).toBe('stalled');
  });

  it('cold: stops the source first, resumes the destination after the copy; all of it is downtime', async () => {
    const src = await fakeQemu([
      { status: 'active', ram: ram(1, 10, 200) },
      { status: 'completed', ram: ram(2, 150, 0), 'total-time': 50, downtime: 3 },
    ]);
    const dst = await fakeQemu([{ status: 'active' }]);
    const r = await migrateQemu(src.client, dst.client, { uri: 'tcp:x:1', strategy: 'cold', pollMs: 1 });
    const order = src.log.map((m) => m.execute);
    expect(order.indexOf('stop')).toBeGreaterThanOrEqual(0);
    expect(order.indexOf('stop')).toBeLessThan(order.indexOf('migrate'));
    expect(dst.log.some((m) => m.execute === 'cont')).toBe(true);
    expect(r.switchoverReason).toBe('cold');
    expect(r.downtimeMs).toBeGreaterThan(3);
  });

  it('options QEMU cannot apply: compression is refused, others are listed in the report', async () => {
    const src = await fakeQemu([{ status: 'completed', ram: ram(2, 150, 0) }]);
    const dst = await fakeQemu([{ status: 'active' }]);
    const err = await migrateQemu(src.client, dst.client, { uri: 'tcp:x:1', compress: 'zstd' }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UsageError);
    // dirty-limit needs KVM's dirty ring, which TCG has not: refused with QEMU's own reason.
    const dl = await migrateQemu(src.client, dst.client, { uri: 'tcp:x:1', dirtyLimit: true }).catch(
      (e: unknown) => e,
    );
    expect(dl).toBeInstanceOf(UsageError);
    expect(String((dl as Error).message)).toMatch(/dirty-ring-size/);
    const r = await migrateQemu(src.client, dst.client, { uri: 'tcp:x:1', cacheWays: 4, pollMs: 1 });
    expect(r.qemu.notApplied.join(' ')).toMatch(/direct-mapped/);
  });

  it('power: meters the source QEMU process, models its energy, and CAPs its vCPU threads for a budget', async () => {
    // The "QEMU" is this test process: its main thread stands for the vCPU thread, found through /proc.
    const script: QmpMigrationInfo[] = [];
    for (let i = 1; i < 5; i++) script.push({ status: 'active', ram: ram(i, 40 * i, 100 - 20 * i) });
    script.push({ status: 'completed', ram: ram(5, 200, 0), 'total-time': 200 });
    const src = await fakeQemu(script, { 'query-cpus-fast': [{ 'cpu-index': 0, 'thread-id': process.pid }] });
    const dst = await fakeQemu([{ status: 'active' }]);
    const root = fakeCgroupV1();
    const r = await migrateQemu(src.client, dst.client, {
      uri: 'tcp:x:1',
      capping: 'cap',
      powerCap: 1, // below any host's idle power: the budget cannot be met, the CAP goes to 1
      cgroupRoot: root,
      raplRoot: null,
      pollMs: 20,
    });
    expect(r.qemu.pid).toBe(process.pid);
    expect(r.qemu.vcpuThreads).toEqual([process.pid]);
    expect(r.qemu.cpu.source).not.toBeNull();
    expect(r.energy?.source.label).toBe('modelled');
    expect(r.energy?.model).toBe('intel-core-i7-920');
    expect(r.energy?.source.averageWatts ?? 0).toBeGreaterThan(100);
    expect(r.energy?.sourceMeasured).toBeNull();
    const group = join(root, 'cpu', 'livemig', `qemu-${process.pid}`);
    expect(readFileSync(join(group, 'tasks'), 'utf8')).toBe(String(process.pid));
    expect(r.cap.map((c) => c.cap)).toEqual([1]);
    expect(r.cap[0]?.reason).toMatch(/power budget 1 W \(not met at CAP 1\)/);
    expect(readFileSync(join(group, 'cpu.cfs_quota_us'), 'utf8')).toBe('1000');
    expect(r.energy?.capping.caps).toEqual([1]);
  });

  it('power: the adaptive controller re-chooses the CAP after every round', async () => {
    const script: QmpMigrationInfo[] = [];
    for (let i = 1; i < 6; i++) script.push({ status: 'active', ram: ram(i, 40 * i, 100 - 15 * i) });
    script.push({ status: 'completed', ram: ram(6, 250, 0) });
    const src = await fakeQemu(script, { 'query-cpus-fast': [{ 'cpu-index': 0, 'thread-id': process.pid }] });
    const dst = await fakeQemu([{ status: 'active' }]);
    const root = fakeCgroupV1();
    const r = await migrateQemu(src.client, dst.client, {
      uri: 'tcp:x:1',
      capping: 'cap',
      capControl: 'adaptive',
      powerCap: 1,
      cgroupRoot: root,
      raplRoot: null,
      pollMs: 20,
    });
    // The first decision CAPs the vCPU threads (the budget cannot be met); every CAP given is in the report.
    expect(r.cap.length).toBeGreaterThanOrEqual(1);
    expect(r.cap[0]?.reason).toMatch(/^power budget, adaptive: power .* W \(budget 1 W\) allows CAP 1/);
    expect(r.cap[0]?.cap).toBe(1);
    expect(r.energy?.capping).toMatchObject({ mode: 'cap', control: 'adaptive', powerCapWatts: 1 });
  });
});
