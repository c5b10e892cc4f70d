import { describe, expect, it } from 'vitest';
import { UsageError } from '../errors.js';
import { pooledFidelity, repeatAgreement, repeatMarkdown } from './agreement-repeat.js';
import { parseSavedCluster, rerunAgreement } from './agreement-rerun.js';
import { savedClusterRun } from './saved-run.fixtures.js';

/** A saved run of one configuration whose cluster made `migrations` migrations and used `energy` kWh. */
async function run(migrations: number, energy: number, policy = 'THR-MMT-0.8') {
  const saved = parseSavedCluster(
    JSON.parse(
      JSON.stringify({
        ...savedClusterRun({
          policy,
          utilisation: (v, k) => 0.2 + 0.05 * ((v + k) % 5),
          demandMeasured: 1000,
          demandTrace: 1000,
          energyKWh: energy,
          pdm: 0.001,
          hostShutdowns: 1,
          migration: { vm: 3, from: 1, to: 3, slowdown: 0.05 },
        }),
      }),
    ),
  );
  saved.metrics.migrations = migrations;
  return { ...saved, agreement: (await rerunAgreement(saved)).agreement };
}

describe('the cluster’s figures as a distribution over repeated runs', () => {
  it('compares the plain simulator with the runs’ median and says whether it lies within their range', async () => {
    const runs = [await run(9, 0.2), await run(2, 0.25), await run(4, 0.21)];
    const sim = runs[0]!.agreement.variants.find((v) => v.key === 'model')!.sim;
    const a = repeatAgreement(runs);
    expect(a.runs).toBe(3);
    const m = a.rows.find((r) => r.metric === 'migrations')!;
    expect(m.values).toEqual([9, 2, 4]);
    expect(m.median).toBe(4);
    expect([m.min, m.max]).toEqual([2, 9]);
    expect(m.sim).toBe(sim.migrations);
    expect(m.inRange).toBe(sim.migrations >= 2 && sim.migrations <= 9);
    expect(m.row.relative[0]).toBeCloseTo((4 - sim.migrations) / sim.migrations, 12);
    expect(m.row.agrees[0]).toBe(Math.abs((4 - sim.migrations) / sim.migrations) <= 0.1);
    const e = a.rows.find((r) => r.metric === 'energy (kWh)')!;
    expect(e.median).toBe(0.21);
    const md = repeatMarkdown(a);
    expect(md).toContain('**THR-MMT-0.8, 20110306**, 3 runs of one configuration');
    expect(md).toContain(`| migrations | 4 (2–9) | 9, 2, 4 | ${sim.migrations} |`);
    // Runs saved before the rounds were recorded have no divergence: none is listed.
    expect(a.divergence).toEqual([null, null, null]);
    expect(md).not.toContain('Rounds planned apart');
  });

  it('pools the runs’ measured − traced bands: the same mean and sd as over all their VM-intervals at once', () => {
    const xs = [
      [0.1, 0.12, 0.09],
      [0.11, 0.1],
    ];
    const traced = 0.1;
    const band = (ms: number[]) => {
      const mean = ms.reduce((a, x) => a + x, 0) / ms.length;
      const d = ms.map((m) => m - traced);
      const bias = d.reduce((a, x) => a + x, 0) / d.length;
      return {
        band: '10–20 %',
        n: ms.length,
        traced,
        measured: mean,
        sd: Math.sqrt(d.reduce((a, x) => a + (x - bias) ** 2, 0) / d.length),
      };
    };
    const [p] = pooledFidelity([[band(xs[0]!)], [band(xs[1]!)]]);
    const all = band(xs.flat());
    expect(p!.n).toBe(5);
    expect(p!.measured).toBeCloseTo(all.measured, 12);
    expect(p!.sd).toBeCloseTo(all.sd, 12);
    expect(pooledFidelity([])).toEqual([]);
  });

  it('refuses runs of different configurations', async () => {
    expect.assertions(2);
    const runs = [await run(3, 0.2), await run(3, 0.2, 'LR-MMT-1.2')];
    try {
      repeatAgreement(runs);
    } catch (err) {
      expect(err).toBeInstanceOf(UsageError);
      expect((err as Error).message).toMatch(/not of one configuration/);
    }
  });
});
