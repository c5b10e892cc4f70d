/**
 * The simulator's own spread under the cluster's measurement noise. The cluster plans on what it measures, which is
 * each VM's trace plus a small error (a few points of utilisation per VM and interval on a quiet machine); a THR or
 * LR decision turns on a fraction of a point at its threshold, and once one round decides apart the runs follow
 * different paths. So the plain simulator's one count is compared not only with the cluster's, but with the
 * distribution the simulator itself gives on the trace plus errors drawn from the run's own (bootstrap: each VM
 * and interval gets a measured − traced difference drawn at random from those the run measured): if the cluster's
 * count lies inside it, the gap is the noise, not a simulator assumption.
 */

import { type SimOptions, simulate, type Workload } from '../sim/index.js';
import { Rng } from '../sim/stats.js';
import { measuredWorkload } from './agreement.js';
import type { ClusterDecision } from './divergence.js';

export interface NoiseQuantiles {
  min: number;
  p10: number;
  median: number;
  p90: number;
  max: number;
}

export interface NoiseDistribution {
  trials: number;
  /** The differences drawn from: how many, their mean and standard deviation (fractions of a VM's MIPS). */
  residuals: { n: number; mean: number; sd: number };
  migrations: NoiseQuantiles;
  energyKWh: NoiseQuantiles;
  /** Share of the trials whose figure is at or below the cluster's (its percentile in the distribution). */
  clusterPercentile: { migrations: number; energyKWh: number };
}

/** The trace's interval mean of VM v at step k ≥ 1 (the simulator's livemig mode). */
function traceMean(w: Workload, v: number, k: number): number {
  const K = w.samplesPerVm;
  return (w.samples[v * K + k - 1]! + w.samples[v * K + Math.min(k, K - 1)]!) / 200;
}

/**
 * Measured − traced per VM and interval of one or more runs, leaving out the VMs in flight or held at a round (not a
 * measurement of that interval). Runs without recorded rounds give their `vms[].utilisation` against the trace.
 */
export function measurementResiduals(
  trace: Workload,
  runs: readonly {
    readonly vms: readonly { readonly utilisation: readonly number[] }[];
    readonly intervals: readonly { readonly decision?: ClusterDecision | undefined }[];
  }[],
): number[] {
  const out: number[] = [];
  for (const r of runs) {
    const K = r.vms[0]?.utilisation.length ?? 0;
    for (let k = 1; k <= K; k++) {
      const d = r.intervals[k - 1]?.decision;
      const skip = new Set([...(d?.inFlight.map(([vm]) => vm) ?? []), ...(d?.held ?? [])]);
      for (let v = 0; v < trace.vms; v++) {
        const u = r.vms[v]?.utilisation[k - 1];
        if (u === undefined || skip.has(v)) continue;
        out.push(u - traceMean(trace, v, k));
      }
    }
  }
  return out;
}

const quantiles = (xs: number[]): NoiseQuantiles => {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { min: s[0]!, p10: at(0.1), median: at(0.5), p90: at(0.9), max: s[s.length - 1]! };
};

/**
 * `trials` simulator runs on the trace's interval means plus residuals drawn (seeded) from `residuals`; the
 * cluster's figures placed in the distribution. Null when there is nothing to draw from.
 */
export function noiseDistribution(
  trace: Workload,
  options: SimOptions,
  residuals: readonly number[],
  cluster: { migrations: number; energyKWh: number },
  trials: number,
  seed = 1,
): NoiseDistribution | null {
  if (residuals.length === 0 || trials < 1) return null;
  const rng = new Rng(seed);
  const K = trace.samplesPerVm;
  const migrations: number[] = [];
  const energy: number[] = [];
  for (let t = 0; t < trials; t++) {
    const util = Array.from({ length: trace.vms }, (_, v) =>
      Array.from({ length: K - 1 }, (_, j) =>
        Math.min(1, Math.max(0, traceMean(trace, v, j + 1) + residuals[rng.int(residuals.length)]!)),
      ),
    );
    const m = measuredWorkload(trace, util);
    const s = simulate(m.workload, { ...options, series: false, sampling: 'instant', utilisation: m.exact });
    migrations.push(s.migrations);
    energy.push(s.energyKWh);
  }
  const mean = residuals.reduce((a, x) => a + x, 0) / residuals.length;
  const sd = Math.sqrt(residuals.reduce((a, x) => a + (x - mean) ** 2, 0) / residuals.length);
  const below = (xs: number[], x: number): number => xs.filter((y) => y <= x).length / xs.length;
  return {
    trials,
    residuals: { n: residuals.length, mean, sd },
    migrations: quantiles(migrations),
    energyKWh: quantiles(energy),
    clusterPercentile: {
      migrations: below(migrations, cluster.migrations),
      energyKWh: below(energy, cluster.energyKWh),
    },
  };
}

/** One paragraph for the CLI and docs. */
export function noiseMarkdown(d: NoiseDistribution, cluster: string): string {
  const q = (x: NoiseQuantiles, f: (n: number) => string): string =>
    `${f(x.median)} (p10–p90 ${f(x.p10)}–${f(x.p90)}, min–max ${f(x.min)}–${f(x.max)})`;
  const n = (x: number): string => String(x);
  const e = (x: number): string => x.toFixed(3);
  return (
    `**The simulator under the measurement noise** (${d.trials} runs on the trace's interval means plus a measured − ` +
    `traced difference drawn per VM and interval from the ${d.residuals.n} the cluster measured: mean ` +
    `${(d.residuals.mean * 100).toFixed(2)} points, sd ${(d.residuals.sd * 100).toFixed(2)}): migrations ` +
    `${q(d.migrations, n)}, energy ${q(d.energyKWh, e)} kWh. The cluster's ${cluster} lie at percentile ` +
    `${(d.clusterPercentile.migrations * 100).toFixed(0)} (migrations) and ` +
    `${(d.clusterPercentile.energyKWh * 100).toFixed(0)} (energy) of it.`
  );
}
