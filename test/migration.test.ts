/**
 * End-to-end migrations between two agents over real TCP on loopback: every strategy, XBZRLE and compressors,
 * each checked by the switch-over digest AND by the determinism oracle (the destination's RAM equals, byte for
 * byte, a guest that never moved run to the same vCPU steps).
 */
import { describe, expect, it } from 'vitest';
import type { GuestConfig } from '../src/guest/index.js';
import type { MigrationOptions, MigrationReport } from '../src/migration/index.js';
import { agentPairForFile, expectOracle, isAdvancing, localAgent, MiB, sleep } from './helpers.js';

const agents = agentPairForFile();

let n = 0;

async function migrateOnce(
  config: GuestConfig,
  options: Partial<MigrationOptions>,
  warmupMs = 300,
): Promise<{ report: MigrationReport; id: string }> {
  const id = `t${++n}`;
  await agents.a.client.startGuest(config, id);
  await sleep(warmupMs);
  const started = await agents.a.client.migrate(id, agents.b.agent.address, options);
  const report = await agents.a.client.follow(started.id, undefined, 50);
  return { report, id };
}

const gap = (over: Partial<GuestConfig> = {}): GuestConfig => ({
  ramBytes: 32 * MiB,
  seed: 3,
  workload: { name: 'gap', params: { workingSetBytes: 24 * MiB, writeRate: 4000 } },
  ...over,
});

describe.each([
  ['cold', { strategy: 'cold' }],
  ['precopy', { strategy: 'precopy' }],
  ['precopy + xbzrle', { strategy: 'precopy', xbzrle: true, xbzrleCacheBytes: 8 * MiB }],
  ['precopy + xbzrle 1-way + zstd', { strategy: 'precopy', xbzrle: true, cacheWays: 1, compress: 'zstd' }],
  ['precopy + deflate, full digest', { strategy: 'precopy', compress: 'deflate', verify: 'full' }],
  ['precopy + rle', { strategy: 'precopy', compress: 'rle' }],
  ['precopy + lz4, hot-last', { strategy: 'precopy', compress: 'lz4', pageOrder: 'hot-last' }],
  ['postcopy', { strategy: 'postcopy' }],
  ['hybrid', { strategy: 'hybrid', postcopyAfterRounds: 1, downtimeLimitMs: 1 }],
] as [string, Partial<MigrationOptions>][])('%s', (_name, options) => {
  // Unlimited bandwidth makes the source's CPU the link: on a loaded host (load average 10 on 2 cores) deflate
  // then carries less than the paced guest dirties (its pacing needs little CPU, so it keeps its rate), pre-copy
  // never converges and ran its default 30 rounds in 80-98 s, past the test timeout. These tests check
  // correctness, not convergence: at most 8 rounds, then stop-and-copy (about 25 s at that load).
  it('migrates a running guest; the destination continues it exactly', { timeout: 120_000 }, async () => {
    const config = gap();
    const { report, id } = await migrateOnce(config, { maxBandwidth: 0, maxRounds: 8, ...options });
    expect(report.error).toBeUndefined();
    expect(report.status).toBe('completed');
    expect(report.verified).toBe(true);
    expect(report.transferredBytes).toBeGreaterThan(0);
    // The guest left the source and runs on the destination.
    await expect(agents.a.client.guest(id)).rejects.toThrow(/no guest/);
    expect(await isAdvancing(agents.b.client, id)).toBe(true);
    await expectOracle(agents.b.client, id, config);
    await agents.b.client.stopGuest(id);
  });
});

describe('workloads', () => {
  it.each(['idle', 'twolf', 'zipf', 'seq', 'kv'] as const)(
    '%s with 2 vCPUs migrates by pre-copy + XBZRLE',
    async (name) => {
      const config: GuestConfig = {
        ramBytes: 16 * MiB,
        vcpus: 2,
        seed: 11,
        workload: { name, params: { workingSetBytes: 8 * MiB, writeRate: 3000 } },
      };
      const { report, id } = await migrateOnce(config, { xbzrle: true, maxBandwidth: 0 }, 200);
      expect(report.status).toBe('completed');
      expect(report.verified).toBe(true);
      await expectOracle(agents.b.client, id, config);
      await agents.b.client.stopGuest(id);
    },
  );
});

describe('pre-copy behaviour', () => {
  it('sends resent pages as XBZRLE and far fewer bytes than plain pre-copy', async () => {
    const config = gap({
      workload: {
        name: 'gap',
        params: { workingSetBytes: 8 * MiB, writeRate: 20000, bytesPerWrite: 8, wholePageFraction: 0 },
      },
    });
    const opts = { maxBandwidth: 64 * MiB, maxRounds: 6, downtimeLimitMs: 1 };
    const plain = await migrateOnce(config, opts, 300);
    const x = await migrateOnce(config, { ...opts, xbzrle: true, xbzrleCacheBytes: 16 * MiB }, 300);
    for (const r of [plain.report, x.report]) expect(r.status).toBe('completed');
    expect(x.report.pages.xbzrle).toBeGreaterThan(0);
    expect(x.report.xbzrle.cacheHits).toBeGreaterThan(0);
    // Compare bytes sent after round 1 (round 1 is the same bulk copy in both).
    const after1 = (r: MigrationReport) => r.perRound.slice(1).reduce((s, row) => s + row.bytes, 0);
    expect(after1(x.report)).toBeLessThan(after1(plain.report) / 2);
    await expectOracle(agents.b.client, x.id, config);
    await agents.b.client.stopGuest(plain.id);
    await agents.b.client.stopGuest(x.id);
  });

  it('hot-last holds hot pages for the stop-and-copy and skips pages dirtied again before their turn', async () => {
    const config: GuestConfig = {
      ramBytes: 32 * MiB,
      seed: 5,
      workload: { name: 'zipf', params: { workingSetBytes: 16 * MiB, writeRate: 20000 } },
    };
    const { report, id } = await migrateOnce(
      config,
      { maxBandwidth: 32 * MiB, pageOrder: 'hot-last', maxRounds: 6, downtimeLimitMs: 1 },
      300,
    );
    expect(report.status).toBe('completed');
    expect(report.pageOrder).toBe('hot-last');
    expect(Math.max(...report.perRound.map((r) => r.heldPages))).toBeGreaterThan(0);
    expect(report.pages.redirtied).toBeGreaterThan(0);
    await expectOracle(agents.b.client, id, config);
    await agents.b.client.stopGuest(id);
  });

  it('dynamic cache sizing starts small, resizes between rounds and stays within its budget', async () => {
    const config = gap({ workload: { name: 'gap', params: { workingSetBytes: 8 * MiB, writeRate: 20000 } } });
    const { report, id } = await migrateOnce(
      config,
      {
        maxBandwidth: 32 * MiB,
        xbzrle: true,
        cacheSizing: 'dynamic',
        xbzrleCacheBytes: 16 * MiB,
        xbzrleCacheMaxBytes: 16 * MiB,
        maxRounds: 6,
        downtimeLimitMs: 1,
      },
      300,
    );
    expect(report.status).toBe('completed');
    expect(report.xbzrle.cacheSizing).toBe('dynamic');
    expect(report.xbzrle.cacheResizes.length).toBeGreaterThan(0);
    expect(report.xbzrle.cacheBytesPeak).toBeLessThanOrEqual(16 * MiB);
    expect(report.pages.xbzrle).toBeGreaterThan(0);
    await expectOracle(agents.b.client, id, config);
    await agents.b.client.stopGuest(id);
  });

  it('auto-converge throttles a guest that outruns the link, and the migration completes', async () => {
    const config = gap({ workload: { name: 'gap', params: { workingSetBytes: 8 * MiB, writeRate: 0 } } });
    const id = `t${++n}`;
    await agents.a.client.startGuest(config, id);
    await sleep(200);
    const started = await agents.a.client.migrate(id, agents.b.agent.address, {
      maxBandwidth: 48 * MiB,
      autoConverge: true,
      maxRounds: 40,
      downtimeLimitMs: 50,
      throttleIncrement: 20,
    });
    const report = await agents.a.client.follow(started.id, undefined, 50);
    expect(report.status).toBe('completed');
    expect(report.cap.length).toBeGreaterThan(0);
    expect(report.cap[0]!.cap).toBe(80);
    // The throttle held the vCPU (its own account, which load cannot fake). Steps per second before and during are
    // not compared: a throttle to CAP 80 is a 20 % effect, and on the shared 2-core CI machine the guest's rate
    // measured over a second before moved more than that on its own (CI: 1.13 M steps/s before, 1.55 M during,
    // 1168 ms held).
    expect(report.guest.heldMs?.[0] ?? 0, JSON.stringify(report.guest)).toBeGreaterThan(0);
    await expectOracle(agents.b.client, id, config);
    await agents.b.client.stopGuest(id);
  });

  it('gives up on a guest that never converges when told to, and the guest keeps running on the source', async () => {
    const config = gap({ workload: { name: 'gap', params: { workingSetBytes: 8 * MiB, writeRate: 0 } } });
    const { report, id } = await migrateOnce(
      config,
      { maxBandwidth: 32 * MiB, onNonConvergence: 'abort', nonConvergenceRounds: 2, downtimeLimitMs: 1 },
      200,
    );
    expect(report.status).toBe('failed');
    expect(report.error?.code).toBe('NOT_CONVERGED');
    expect(await isAdvancing(agents.a.client, id)).toBe(true);
    expect((await agents.b.client.guests()).find((g) => g.id === id)).toBeUndefined();
    await expectOracle(agents.a.client, id, config);
    await agents.a.client.stopGuest(id);
  });

  it('stops after max rounds (stop-and-copy) and still verifies', async () => {
    const config = gap({ workload: { name: 'gap', params: { workingSetBytes: 8 * MiB, writeRate: 0 } } });
    const { report, id } = await migrateOnce(config, {
      maxBandwidth: 64 * MiB,
      maxRounds: 3,
      downtimeLimitMs: 1,
    });
    expect(report.status).toBe('completed');
    expect(report.rounds).toBe(3);
    expect(report.switchoverReason).toBe('max-rounds');
    expect(report.perRound).toHaveLength(3);
    await expectOracle(agents.b.client, id, config);
    await agents.b.client.stopGuest(id);
  });
});

describe('failures before switch-over leave the guest on the source', () => {
  it('a destination that refuses the guest size: RESOURCE_LIMIT, guest still running', async () => {
    const small = await localAgent({ maxRamBytes: 8 * MiB });
    try {
      const id = `t${++n}`;
      await agents.a.client.startGuest(gap(), id);
      const started = await agents.a.client.migrate(id, small.agent.address, {});
      const r = await agents.a.client.follow(started.id, undefined, 50);
      expect(r.status).toBe('failed');
      expect(r.error?.code).toBe('RESOURCE_LIMIT');
      expect(r.error?.message).toMatch(/max-ram/);
      expect(await isAdvancing(agents.a.client, id)).toBe(true);
      await agents.a.client.stopGuest(id);
    } finally {
      await small.agent.close();
    }
  });

  it('cancel mid-round: CANCELLED, guest running on the source, nothing left on the destination', async () => {
    const id = `t${++n}`;
    const config = gap();
    await agents.a.client.startGuest(config, id);
    const started = await agents.a.client.migrate(id, agents.b.agent.address, { maxBandwidth: 4 * MiB });
    await sleep(400);
    await agents.a.client.cancel(started.id);
    const r = await agents.a.client.follow(started.id, undefined, 50);
    expect(r.status).toBe('cancelled');
    expect(r.error?.code).toBe('CANCELLED');
    expect(await isAdvancing(agents.a.client, id)).toBe(true);
    expect((await agents.b.client.guests()).find((g) => g.id === id)).toBeUndefined();
    await expectOracle(agents.a.client, id, config);
    await agents.a.client.stopGuest(id);
  });

  it('a destination that is not listening: CONNECTION_REFUSED', async () => {
    const id = `t${++n}`;
    await agents.a.client.startGuest(gap(), id);
    const started = await agents.a.client.migrate(id, '127.0.0.1:1', {});
    const r = await agents.a.client.follow(started.id, undefined, 50);
    expect(r.error?.code).toBe('CONNECTION_REFUSED');
    expect(await isAdvancing(agents.a.client, id)).toBe(true);
    await agents.a.client.stopGuest(id);
  });
});
