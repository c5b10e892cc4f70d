/**
 * livemig mode's utilisation model: what a monitor reports, not CloudSim's instantaneous sample.
 *
 * CloudSim (`UtilizationModelPlanetLabInMemory`) gives a VM at a scheduling step the trace's sample at that instant,
 * and plans on it. A real data centre's monitor (and `livemig cluster`'s, which reads each guest's CPU time over the
 * interval) reports the interval's mean: a VM whose trace jumps from 40 to 90 % at the step is seen at 65 %, and a
 * THR threshold or an LR fit that the sample trips may not trip on the mean. With `sampling: 'mean'` the value at
 * step k is the mean of the trace over [(k − 1)·I, k·I] — the trace linear between samples (as CloudSim interpolates
 * it), or, with `samplingSteps` S, held in S equal steps at the trace's value at each step's start (a controller
 * that sets a guest's CPU stepwise, as `livemig cluster` does) — and between steps the values are linear, as
 * CloudSim's between samples. Step 0 is the trace's sample (nothing has been measured yet). The accounting (energy,
 * SLA time) follows the same values, as a cluster's accounting follows its monitor.
 */
import { UsageError } from '../../errors.js';
import type { SimOptions } from '../config.js';
import type { SimState } from './state.js';

/**
 * `SimOptions.sampling` with its default: `instant` in cloudsim mode (CloudSim's own, bit for bit), and in livemig
 * mode `mean` on the trace but `instant` on given `utilisation` (already a monitor's values: not averaged twice).
 */
export function samplingOf(o: SimOptions): 'instant' | 'mean' {
  return o.sampling ?? (o.mode === 'livemig' && o.utilisation === undefined ? 'mean' : 'instant');
}

/** `SimOptions.samplingSteps`, checked: 0 (linear) or a whole number of steps. */
export function samplingStepsOf(o: SimOptions): number {
  const n = o.samplingSteps ?? 0;
  if (!Number.isInteger(n) || n < 0 || n > 1_000_000) {
    throw new UsageError(`samplingSteps: ${n} is not 0 (linear) or a whole number of steps per interval`);
  }
  return n;
}

/** The trace's value (fraction of the VM's MIPS) at sample i, the last sample repeated. */
function sampleAt(s: SimState, base: number, i: number): number {
  const k = Math.min(i, s.spv - 1);
  return s.exact ? s.exact[base + k]! : s.samples[base + k]! / 100;
}

/** The monitor's value at step k: sample 0 at k = 0, the interval's mean after. */
export function stepMean(s: SimState, v: number, k: number): number {
  const base = v * s.spv;
  const b = sampleAt(s, base, k);
  if (k <= 0) return b;
  const a = sampleAt(s, base, k - 1);
  return a + (b - a) * s.meanWeight;
}

/**
 * The weight of the interval's end sample in its mean: ½ for a trace linear between samples; (S − 1) / 2S when the
 * demand is held in S steps, each at the trace's value at its start.
 */
export function meanWeight(steps: number): number {
  return steps > 0 ? (steps - 1) / (2 * steps) : 0.5;
}

/** VM v's utilisation at time t as the monitor reports it (linear between steps). */
export function meanUtilisationAt(s: SimState, v: number, t: number): number {
  const I = s.interval;
  if (t % I === 0) return stepMean(s, v, t / I);
  const k1 = Math.floor(t / I);
  const u1 = stepMean(s, v, k1);
  const u2 = stepMean(s, v, k1 + 1);
  return u1 + (u2 - u1) * ((t - k1 * I) / I);
}
