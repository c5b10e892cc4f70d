/**
 * How the cluster grants a VM its CPU: c % of a core (its traced utilisation × cpu-scale × its feedback gain) as the
 * guest's CAP (whole percents of each 30-ms period, Xen's unit) × its emulated frequency (a vCPU at frequency f
 * does f of its work and sleeps the rest, so it burns f of what the CAP lets through).
 */

/** Substeps per scheduling interval at which the CAP follows the trace. */
export const SUBSTEPS = 8;

/**
 * Where in the trace (in intervals) substep j of the interval that starts at k sets the CAP: the substep's middle, so
 * that the substeps' mean is the trace's interval mean, which the simulator and the feedback compare with. (At each
 * substep's start the mean leaned 7/16 towards the end sample: measured − traced followed the trace's slope, −0.11 ×
 * it over 1 791 VM-intervals, 2–3 points on a VM whose trace swings by 20–25 from sample to sample.)
 */
export function capStep(k: number, j: number): number {
  return k + (j + 0.5) / SUBSTEPS;
}

/**
 * CAP and frequency for c % of a core: the CAP rounded up, the frequency the rest, so that CAP × frequency = c at
 * any c (below 1 %: CAP 1 at frequency c, floored at 0.001). Whole CAPs dithered over the substeps left each interval
 * up to ±½ CAP ÷ 8 off, and CAP 1 is worth 20–30 points of a VM at cpu-scale 0.05: an sd of about 1.5 points on
 * every VM above about 30 %.
 */
export function capAndFrequency(c: number): { cap: number; frequency: number } {
  if (!(c >= 1)) return { cap: 1, frequency: Math.min(1, Math.max(0.001, c)) };
  const cap = Math.min(100, Math.ceil(c));
  return { cap, frequency: Math.min(1, c / cap) };
}
