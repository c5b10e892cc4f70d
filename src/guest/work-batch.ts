/**
 * How many steps a vCPU's next batch may run so that the work phase stays inside its allotment (CAP budget ×
 * frequency). Batches are sized for ~0.05–0.2 ms so that the clock is read rarely; but a lightly throttled vCPU is
 * allotted far less per phase (CAP 1 at frequency 0.05: 15 µs of each 30-ms period), and a whole batch ran anyway,
 * so such a vCPU got several times its allotment: a floor of about 1 % of a core (measured), which made the
 * cluster's light guests run well above their trace.
 */

/** Steps for the next batch: at most `batch`, at least 1 (a phase always progresses), fitting `leftMs` at `stepMs`. */
export function fitBatch(batch: number, stepMs: number, leftMs: number): number {
  if (!(stepMs > 0)) return Math.min(batch, 1); // no estimate yet: one step measures it
  return Math.max(1, Math.min(batch, Math.floor(leftMs / stepMs)));
}

/**
 * The per-step time estimate after a batch of `steps` that took `tookMs`: a moving average in which one sample counts
 * at most twice the estimate. A batch during which the thread was descheduled (every few ms on a loaded host) would
 * otherwise inflate the estimate many times over, and the batches shrink to a few steps, paying a clock read each.
 */
export function nextStepMs(stepMs: number, tookMs: number, steps: number): number {
  if (steps <= 0 || !(tookMs >= 0)) return stepMs;
  const sample = tookMs / steps;
  return stepMs > 0 ? 0.75 * stepMs + 0.25 * Math.min(sample, 2 * stepMs) : sample;
}

/** Work per CAP period below which a sleeping vCPU stretches its period: ~10 wake-ups' CPU on this kind of VM. */
export const MIN_PERIOD_WORK_MS = 0.5;
/** The longest stretch, in CAP periods (240 ms): a new CAP or frequency still takes effect within a quarter second. */
export const MAX_STRETCH = 8;

/**
 * How many CAP periods a vCPU whose stall sleeps (`dvfsStall: 'sleep'`) folds into one, so that a period holds at
 * least MIN_PERIOD_WORK_MS of work. A wake-up costs the vCPU's thread 35–60 µs of CPU on a virtual machine (measured:
 * a worker that only waits, 60 wakes/s, 58 µs each), more than a light vCPU's whole allotment (CAP 1 at frequency
 * 0.05: 15 µs per 30-ms period): one or two wake-ups per period were a floor of 0.35–1 % of a core on top of the
 * work. The share (cap % × frequency) is unchanged; only its grain is coarser. 1 for an uncapped vCPU.
 */
export function capStretch(capPercent: number, freq: number, periodMs: number): number {
  if (!(capPercent > 0) || !(freq > 0)) return 1;
  const work = (capPercent / 100) * periodMs * Math.min(1, freq);
  return Math.max(1, Math.min(MAX_STRETCH, Math.ceil(MIN_PERIOD_WORK_MS / work)));
}
