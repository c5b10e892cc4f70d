/**
 * Downtime as a distribution over many migrations: median and tail, beside the yardstick of a production fleet.
 * Google's live-migration fleet (Ruprecht et al., "VM Live Migration At Scale", VEE 2018) reports a median blackout
 * of about 50 ms and a 99th percentile of about 300 ms; reports over many migrations (soak, experiments,
 * bench:downtime) print theirs beside it.
 */
import { percentile } from './stats.js';

export const PRODUCTION_ANCHOR = {
  source: "Google's production fleet (Ruprecht et al., VEE 2018)",
  medianMs: 50,
  p99Ms: 300,
} as const;

export interface DowntimeDistribution {
  count: number;
  medianMs: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Median, p90, p99 and max of the given downtimes (ms); all zero for none. */
export function downtimeDistribution(downtimesMs: readonly number[]): DowntimeDistribution {
  const d = downtimesMs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return {
    count: d.length,
    medianMs: percentile(d, 50),
    p90Ms: percentile(d, 90),
    p99Ms: percentile(d, 99),
    maxMs: d.at(-1) ?? 0,
  };
}

const ms = (x: number) => (x >= 10 ? x.toFixed(1) : x.toFixed(2));

/** One line: the distribution, and the production anchor beside it (with how many times below it we are). */
export function describeDowntime(d: DowntimeDistribution, what = 'migrations'): string {
  if (d.count === 0) return `downtime: no completed ${what} to measure`;
  const a = PRODUCTION_ANCHOR;
  const ratio = (ours: number, theirs: number) => (ours > 0 ? ` (${(theirs / ours).toFixed(1)}× below)` : '');
  return (
    `downtime over ${d.count} ${what}: median ${ms(d.medianMs)} ms, p99 ${ms(d.p99Ms)} ms, max ${ms(d.maxMs)} ms — ` +
    `${a.source}: ${a.medianMs} ms median, ${a.p99Ms} ms p99 blackout` +
    (d.medianMs <= a.medianMs && d.p99Ms <= a.p99Ms
      ? `; median${ratio(d.medianMs, a.medianMs)}, p99${ratio(d.p99Ms, a.p99Ms)}`
      : '; above the anchor')
  );
}
