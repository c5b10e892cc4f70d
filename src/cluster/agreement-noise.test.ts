import { describe, expect, it } from 'vitest';
import { simulate } from '../sim/index.js';
import { measurementResiduals, noiseDistribution, noiseMarkdown } from './agreement-noise.js';
import { smallCluster } from './small-cluster.fixtures.js';

async function setting() {
  const { workload, options } = await smallCluster('20110412', 24);
  return { workload, options, plain: simulate(workload, { ...options, series: false }) };
}

describe('the simulator under the cluster’s measurement noise', () => {
  it('without noise every trial is the plain simulator; with it the count spreads around it', async () => {
    const { workload, options, plain } = await setting();
    const none = noiseDistribution(
      workload,
      options,
      [0],
      { migrations: plain.migrations, energyKWh: 0 },
      5,
    )!;
    expect(none.migrations.min).toBe(plain.migrations);
    expect(none.migrations.max).toBe(plain.migrations);
    // Energy within a few parts in 10 000: given values are linear between steps, the means' own interpolation not.
    expect(Math.abs(none.energyKWh.median / plain.energyKWh - 1)).toBeLessThan(1e-3);
    expect(none.clusterPercentile.migrations).toBe(1);
    // ±3 points per VM and interval: THR-MMT's decisions at 80 % turn, and the count spreads.
    const draw = () =>
      noiseDistribution(
        workload,
        options,
        [-0.03, 0.03],
        { migrations: plain.migrations, energyKWh: plain.energyKWh },
        40,
      )!;
    const noisy = draw();
    expect(noisy.residuals).toEqual({ n: 2, mean: 0, sd: 0.03 });
    expect(noisy.migrations.max).toBeGreaterThan(noisy.migrations.min);
    // Seeded: the same draw twice.
    const again = draw();
    expect(again).toEqual(noisy);
    expect(noiseMarkdown(noisy, 'figures')).toMatch(
      /^\*\*The simulator under the measurement noise\*\* \(40 runs/,
    );
  });

  it('draws the residuals from the measured rounds, leaving out the VMs in flight or held', async () => {
    const { workload } = await setting();
    const K = workload.samplesPerVm;
    const traced = (v: number, k: number) =>
      (workload.samples[v * K + k - 1]! + workload.samples[v * K + k]!) / 200;
    const vms = Array.from({ length: 8 }, (_, v) => ({
      utilisation: Array.from({ length: 2 }, (_, i) => traced(v, i + 1) + (v === 0 ? 0.5 : 0.01)),
    }));
    const decision = {
      vmHost: [],
      vmUtilisation: [],
      requested: [],
      overloaded: [],
      migrations: [],
      inFlight: [[0, 1]] as [number, number][],
      held: [],
    };
    const r = measurementResiduals(workload, [{ vms, intervals: [{ decision }, { decision }] }]);
    expect(r).toHaveLength(14);
    for (const x of r) expect(x).toBeCloseTo(0.01, 9);
  });
});
