import { describe, expect, it } from 'vitest';
import { type SimDecision, simulate } from '../sim/index.js';
import { type ClusterDecision, decisionDivergence, divergenceMarkdown } from './divergence.js';
import { smallCluster } from './small-cluster.fixtures.js';

/** 4 hosts, 8 VMs, the first 2 h of 20110412 under THR-MMT-0.8: the plain simulator migrates in several rounds. */
async function setting() {
  const { workload, options } = await smallCluster('20110412', 24);
  const sim = simulate(workload, { ...options, series: false, decisions: true });
  return { workload, options, sim, rounds: sim.decisions! };
}

/** A simulator round as a cluster would have recorded it. */
const asCluster = (d: SimDecision): ClusterDecision => ({
  vmHost: [...d.vmHost],
  vmUtilisation: [...d.vmUtilisation],
  requested: [...d.requested],
  overloaded: [...d.overloaded],
  migrations: d.migrations.map(([v, h]) => [v, h]),
  inFlight: d.inFlight.map(([v, h]) => [v, h]),
  arrivals: [...d.arrivals],
});

describe('decision divergence between the cluster and the simulator', () => {
  it('the simulator records every planning round; its own rounds replayed as a cluster’s diverge nowhere', async () => {
    const { workload, options, sim, rounds } = await setting();
    expect(rounds).toHaveLength(23);
    expect(rounds.reduce((a, d) => a + d.migrations.length, 0)).toBeGreaterThanOrEqual(sim.migrations);
    expect(rounds.some((d) => d.migrations.length > 0)).toBe(true);
    const d = decisionDivergence(workload, options, rounds.map(asCluster), rounds);
    expect(d.rounds).toBe(23);
    expect(d.differing).toBe(0);
    expect(d.firstDiffering).toBeNull();
    // The counterfactual (the cluster's state on the trace) is the simulator's own round: no flip.
    expect(d.measurementFlips).toBe(0);
    expect(d.hostGap.max).toBeCloseTo(0, 9);
    // Measured = traced in every band.
    for (const b of d.fidelity) {
      expect(b.measured).toBeCloseTo(b.traced, 9);
      expect(b.sd).toBeCloseTo(0, 6);
    }
  });

  it('names a measurement when the same state planned apart, and placement once the states differ', async () => {
    const { workload, options, rounds } = await setting();
    const i = rounds.findIndex((d) => d.migrations.length > 0);
    expect(i).toBeGreaterThanOrEqual(0);
    const cluster = rounds.map(asCluster);
    // Round i: the cluster measured its VMs 5 points lower and planned nothing.
    cluster[i] = {
      ...cluster[i]!,
      vmUtilisation: cluster[i]!.vmUtilisation.map((u) => Math.max(0, u - 0.05)),
      migrations: [],
    };
    // Round i + 1: its placement differs (the first migration of round i did not happen).
    const [vm] = rounds[i]!.migrations[0]!;
    const later = rounds.findIndex((d, j) => j > i && d.vmHost[vm] !== rounds[i]!.vmHost[vm]);
    if (later >= 0) {
      cluster[later] = {
        ...cluster[later]!,
        vmHost: cluster[later]!.vmHost.map((h, v) => (v === vm ? rounds[i]!.vmHost[vm]! : h)),
        migrations: [],
      };
    }
    const d = decisionDivergence(workload, options, cluster, rounds);
    expect(d.firstDiffering).toBe(i + 1);
    const first = d.intervals[0]!;
    expect(first.cause).toBe('measurement');
    expect(first.cluster).toEqual([]);
    expect(first.traced).toEqual(first.sim);
    expect(first.gaps.length).toBeGreaterThan(0);
    const g = first.gaps.find((x) => x.vm !== null)!;
    expect(g.vm!.traced - g.vm!.measured).toBeCloseTo(Math.min(0.05, g.vm!.traced), 9);
    expect(d.byCause.measurement).toBeGreaterThanOrEqual(1);
    if (later >= 0 && rounds[later]!.migrations.length > 0) {
      expect(d.intervals.find((r) => r.interval === later + 1)?.cause).toBe('placement');
    }
    expect(d.measurementFlips).toBeGreaterThanOrEqual(1);
    const md = divergenceMarkdown(d);
    expect(md).toContain(`first: interval ${i + 1}`);
    expect(md).toMatch(new RegExp(`\\| ${i + 1} \\| measurement \\| — \\| vm\\d+→\\d+`));
  });
});
