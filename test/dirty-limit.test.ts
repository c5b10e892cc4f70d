/**
 * Dirty-rate limiting end to end (docs/dirty-limit.md): a gap guest dirtying far faster than a 16 MiB/s link never
 * converges by plain pre-copy; with --dirty-limit the same guest converges once the limit applies, the report shows
 * what it did, the guest on the destination equals a guest that never moved, and a failed migration leaves no
 * limit behind. The flags parse strictly.
 */
import { describe, expect, it } from 'vitest';
import { migrationOptionsFromFlags } from '../src/cli/flags.js';
import { UsageError } from '../src/errors.js';
import type { GuestConfig } from '../src/guest/index.js';
import { type MigrationOptions, resolveOptions } from '../src/migration/index.js';
import { agentPairForFile, expectOracle, MiB, sleep } from './helpers.js';

const agents = agentPairForFile();
let n = 0;

// 2048 pages written as fast as the vCPU can: the dirty set is the whole working set every round.
const config: GuestConfig = {
  ramBytes: 32 * MiB,
  seed: 7,
  workload: { name: 'gap', params: { workingSetBytes: 8 * MiB, writeRate: 0 } },
};
const link: Partial<MigrationOptions> = { maxBandwidth: 16 * MiB, maxRounds: 8, downtimeLimitMs: 50 };

async function migrate(options: Partial<MigrationOptions>) {
  const id = `dl${++n}`;
  await agents.a.client.startGuest(config, id);
  await sleep(200);
  const started = await agents.a.client.migrate(id, agents.b.agent.address, options);
  const report = await agents.a.client.follow(started.id, undefined, 50);
  return { id, report };
}

describe('dirty-limit', () => {
  it('converges where plain pre-copy does not; the migrated guest passes the oracle', async () => {
    const plain = await migrate(link);
    expect(plain.report.status).toBe('completed');
    expect(plain.report.switchoverReason).not.toBe('converged');
    expect(plain.report.dirtyLimit).toBeUndefined();
    await agents.b.client.stopGuest(plain.id);

    const limited = await migrate({ ...link, dirtyLimit: true, vcpuDirtyLimit: 1, dirtyLimitPeriodMs: 50 });
    const r = limited.report;
    expect(r.status).toBe('completed');
    expect(r.switchoverReason).toBe('converged');
    const dl = r.dirtyLimit!;
    expect(dl.appliedAfterRound).toBeGreaterThanOrEqual(2);
    expect(dl.pagesPerPeriod).toBe(12); // 1 MiB/s of 4 KiB pages over 50 ms
    expect(dl.throttleMs[0]).toBeGreaterThan(0);
    expect(dl.waits[0]).toBeGreaterThan(0);
    // Held to the limit (0.94 MB/s) within the partial periods at the ends of a window of at least one round.
    expect(dl.dirtyRateMBps[0]).toBeLessThanOrEqual(1.5); // quota: 12 pages per 50 ms = 0.94 MB/s
    expect(r.events.some((e) => e.includes('dirty-limit: 1 MB/s per vCPU'))).toBe(true);
    await expectOracle(agents.b.client, limited.id, config);
    await agents.b.client.stopGuest(limited.id);
  });

  it('dirty-limit and auto-converge are alternatives, as in QEMU', () => {
    expect(() => resolveOptions({ dirtyLimit: true, autoConverge: true }, undefined, MiB)).toThrow(
      UsageError,
    );
    expect(() => resolveOptions({ dirtyLimit: true, onStall: 'auto-converge' }, undefined, MiB)).toThrow(
      /alternatives/,
    );
  });

  it('--dirty-limit and --dirty-limit-period parse strictly', () => {
    const { options } = migrationOptionsFromFlags({ dirtyLimit: '8', dirtyLimitPeriod: '100ms' });
    expect(options).toMatchObject({ dirtyLimit: true, vcpuDirtyLimit: 8, dirtyLimitPeriodMs: 100 });
    for (const bad of ['', 'abc', '0', '-1', '1e9']) {
      expect(() => migrationOptionsFromFlags({ dirtyLimit: bad }), bad).toThrow(/--dirty-limit/);
    }
    for (const bad of ['0', '2s', 'x']) {
      expect(() => migrationOptionsFromFlags({ dirtyLimitPeriod: bad }), bad).toThrow(/--dirty-limit-period/);
    }
  });
});
