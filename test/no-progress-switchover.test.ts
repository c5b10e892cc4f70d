/**
 * A guest that dirties all of its RAM every round, end to end: no round can shrink the set, and at the 2 MiB/s
 * limit it never fits the 1 s downtime limit (4 MiB is 2 s there). Its stop-and-copy goes unlimited, though, and
 * at the engine's own rate the set fits: the migration switches over after round 2 instead of resending the whole
 * RAM until max-rounds and pausing the same set then. QEMU's avail-switchover-bandwidth set to the link gives the
 * old behaviour back.
 */
import { describe, expect, it } from 'vitest';
import type { GuestConfig } from '../src/guest/index.js';
import type { MigrationOptions, MigrationReport } from '../src/migration/index.js';
import { agentPairForFile, expectOracle, MiB, sleep } from './helpers.js';

const agents = agentPairForFile();
let n = 0;

// 1024 pages written as fast as the vCPU can: every round finds all of them dirty.
const config: GuestConfig = {
  ramBytes: 4 * MiB,
  seed: 5,
  workload: { name: 'gap', params: { workingSetBytes: 4 * MiB, writeRate: 0 } },
};
// The unlimited rate needs only 4 MiB/s for the set to fit 1 s: the source measured 32 MiB/s and more at load 15.
const link: Partial<MigrationOptions> = { maxBandwidth: 2 * MiB, downtimeLimitMs: 1000, maxRounds: 3 };

async function migrate(options: Partial<MigrationOptions>): Promise<{ id: string; report: MigrationReport }> {
  const id = `np${++n}`;
  await agents.a.client.startGuest(config, id);
  await sleep(200);
  const started = await agents.a.client.migrate(id, agents.b.agent.address, options);
  return { id, report: await agents.a.client.follow(started.id, undefined, 50) };
}

describe('a round without progress whose set fits at the stop-and-copy rate', () => {
  it('switches over after round 2; the guest on the destination passes the oracle', async () => {
    const { id, report: r } = await migrate(link);
    expect(r.status).toBe('completed');
    expect(r.verified).toBe(true);
    expect(r.switchoverReason).toBe('no-progress');
    expect(r.rounds).toBe(2);
    expect(r.perRound.map((x) => x.dirtyPages)).toEqual([1024, 1024]);
    expect(
      r.events.some((e) => e.includes('no progress in round 2: its 1024 dirty pages fit the 1000 ms limit')),
    ).toBe(true);
    // The whole RAM twice live and once paused, nothing more.
    expect(r.transferredBytes).toBeLessThan(3.2 * config.ramBytes);
    await expectOracle(agents.b.client, id, config);
    await agents.b.client.stopGuest(id);
  });

  it('with avail-switchover-bandwidth set to the link, the rounds run on to max-rounds as before', async () => {
    const { id, report: r } = await migrate({ ...link, availSwitchoverBandwidth: 2 * MiB });
    expect(r.status).toBe('completed');
    expect(r.switchoverReason).toBe('max-rounds');
    expect(r.rounds).toBe(3);
    await agents.b.client.stopGuest(id);
  });
});
