import { describe, expect, it } from 'vitest';
import { UsageError } from '../errors.js';
import { simulate } from '../sim/index.js';
import { parseSavedCluster, rerunAgreement } from './agreement-rerun.js';
import { agreementSection } from './agreement-table.js';
import { SAVED_INTERVALS, savedClusterRun } from './saved-run.fixtures.js';
import { smallCluster } from './small-cluster.fixtures.js';

const K = SAVED_INTERVALS;
/** Written before the seed and migration limits were recorded: the rerun must supply the runs' defaults. */
const saved = {
  ...savedClusterRun({
    policy: 'THR-MMT-0.8',
    utilisation: (v, k) => 0.2 + 0.05 * ((v + k) % 5),
    demandMeasured: 1000,
    demandTrace: 1100,
    energyKWh: 0.2,
    pdm: 0.001,
    hostShutdowns: 1,
    migration: { vm: 3, from: 1, to: 3, slowdown: 0.05 },
  }),
  agreement: { stale: true },
};

describe('the agreement of a saved cluster run, rerun', () => {
  it('runs the ladder with the run’s setting; its model rung is the plain livemig sim on the same window', async () => {
    const run = parseSavedCluster(JSON.parse(JSON.stringify(saved)));
    // Files written before the seed and limits were recorded get the defaults the runs used.
    expect(run.seed).toBe(42);
    expect(run.migrationLimits).toEqual({ perHost: 2, perCluster: 5 });
    const { agreement, model } = await rerunAgreement(run);
    expect(agreement.variants.map((v) => v.key)).toEqual([
      'samples',
      'model',
      'measured-migrations',
      'measured-demand',
    ]);
    expect(agreement.deliveredRatio).toBeCloseTo(1000 / 1100, 12);
    const { workload, options } = await smallCluster('20110306', K);
    const plain = simulate(workload, { ...options, series: false });
    expect(model.sim.energyKWh).toBe(plain.energyKWh);
    expect(model.sim.migrations).toBe(plain.migrations);
    const samples = simulate(workload, { ...options, sampling: 'instant', series: false });
    expect(agreement.variants[0]!.sim.energyKWh).toBe(samples.energyKWh);
    // Deterministic: the same file gives the same table.
    const again = await rerunAgreement(run);
    expect(again.agreement.rows).toEqual(agreement.rows);
    const md = agreementSection(run, agreement);
    expect(md).toMatch(/^\*\*THR-MMT-0\.8, 20110306\*\* \(wall 40 s;/);
    expect(md).toContain('| energy (kWh) | 0.200 |');
    expect(md).toContain(`cluster ${'2'.repeat(K)}`);
  });

  it('refuses a file that is not a cluster report, naming the field', () => {
    expect.assertions(3);
    try {
      parseSavedCluster({ ...saved, vms: [{ ramMiB: 32 }] }, 'x/cluster.json');
    } catch (err) {
      expect(err).toBeInstanceOf(UsageError);
      expect((err as Error).message).toMatch(
        /^x\/cluster\.json: not a livemig cluster report \(vms\.0\.utilisation/,
      );
      expect((err as Error).message).toMatch(/livemig cluster --out DIR/);
    }
  });

  it('refuses a run on traces that are not a bundled day', async () => {
    const run = parseSavedCluster({ ...saved, day: 'my-traces' });
    await expect(rerunAgreement(run)).rejects.toThrow(/not a bundled PlanetLab day/);
  });
});
