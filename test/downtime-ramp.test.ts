/**
 * The downtime ramp end to end (docs/migration.md): a gap guest dirtying its whole working set faster than a 16 MiB/s
 * link sends it never gets under a 50 ms limit, so its rounds stop shrinking; with --downtime-ramp the limit rises
 * step by step, the report lists each raise, and the guest on the destination equals a guest that never moved.
 * The flag parses strictly.
 */
import { describe, expect, it } from 'vitest';
import { parseMigrationRequest } from '../src/agent/requests.js';
import { migrationOptionsFromFlags } from '../src/cli/flags.js';
import { UsageError } from '../src/errors.js';
import type { GuestConfig } from '../src/guest/index.js';
import type { MigrationOptions } from '../src/migration/index.js';
import { agentPairForFile, expectOracle, MiB, sleep } from './helpers.js';

const agents = agentPairForFile();

// 2048 pages written as fast as the vCPU can: the dirty set is the whole working set every round (≈ 0.5 s of link).
const config: GuestConfig = {
  ramBytes: 32 * MiB,
  seed: 11,
  workload: { name: 'gap', params: { workingSetBytes: 8 * MiB, writeRate: 0 } },
};

describe('downtime ramp', () => {
  it('raises the downtime limit on rounds without progress, reports each raise; the guest passes the oracle', async () => {
    const id = 'ramp1';
    await agents.a.client.startGuest(config, id);
    await sleep(200);
    // START is far below the ≈ 500 ms the dirty set costs; MAX is well above it, so that a loaded machine (a slower
    // measured link) still converges inside the round bound.
    const options: Partial<MigrationOptions> = {
      maxBandwidth: 16 * MiB,
      maxRounds: 15,
      downtimeRamp: { startMs: 50, stepMs: 500, maxMs: 4050 },
    };
    const started = await agents.a.client.migrate(id, agents.b.agent.address, options);
    const r = await agents.a.client.follow(started.id, undefined, 50);
    expect(r.status).toBe('completed');
    const raises = r.downtimeRamp ?? [];
    expect(raises.length).toBeGreaterThanOrEqual(1);
    expect(raises[0]).toMatchObject({ fromMs: 50, toMs: 550 });
    for (const [i, x] of raises.entries()) {
      expect(x.toMs - x.fromMs).toBeLessThanOrEqual(500);
      expect(x.toMs).toBeLessThanOrEqual(4050);
      if (i > 0) expect(x.fromMs).toBe(raises[i - 1]!.toMs);
    }
    expect(r.downtimeLimitMs).toBe(raises.at(-1)!.toMs);
    expect(r.events.some((e) => e.includes('downtime ramp: no progress in round'))).toBe(true);
    expect(r.switchoverReason).toBe('converged');
    await expectOracle(agents.b.client, id, config);
    await agents.b.client.stopGuest(id);
  });

  it("the control API's migrate body takes options.downtimeRamp, schema-checked", () => {
    const body = (downtimeRamp: unknown) => ({
      guest: 'g',
      destination: '127.0.0.1:7071',
      options: { downtimeRamp },
    });
    const ramp = { startMs: 150, stepMs: 150, maxMs: 1050 };
    expect(parseMigrationRequest(body(ramp)).options.downtimeRamp).toEqual(ramp);
    expect(parseMigrationRequest(body(null)).options.downtimeRamp).toBeNull();
    for (const bad of [
      { ...ramp, startMs: 2000 },
      { ...ramp, stepMs: 0 },
      { ...ramp, extra: 1 },
      '150ms:150ms:1s',
    ]) {
      expect(() => parseMigrationRequest(body(bad)), JSON.stringify(bad)).toThrow(UsageError);
    }
  });

  it('--downtime-ramp parses strictly: three durations, START ≤ MAX; the flag and the form are named', () => {
    const { options } = migrationOptionsFromFlags({ downtimeRamp: '150ms:150ms:1.05s' });
    expect(options.downtimeRamp).toEqual({ startMs: 150, stepMs: 150, maxMs: 1050 });
    for (const bad of ['', '150ms', '150ms:150ms', '1:2:3:4', 'a:b:c', '0:1:2', '150ms:-1:1s', '2s:1s:1s']) {
      expect(() => migrationOptionsFromFlags({ downtimeRamp: bad }), bad).toThrow(
        /--downtime-ramp.*START:STEP:MAX/,
      );
    }
  });
});
