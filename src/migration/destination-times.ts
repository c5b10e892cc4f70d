/**
 * The destination's clock over its part of a switch-over: each step's duration in fractional milliseconds
 * (performance.now()), sent back to the source in RESUMED (protocol/bodies.ts validates it there).
 */
import type { DestinationSwitchoverTimes } from './stats.js';

type Step = Exclude<keyof DestinationSwitchoverTimes, 'totalMs'>;

export class SwitchoverClock {
  readonly start = performance.now();
  private last = this.start;
  private readonly times: DestinationSwitchoverTimes = {};

  /** Ends step `step` now (its duration: since the previous mark, or the start). */
  mark(step: Step): void {
    const t = performance.now();
    this.times[step] = (this.times[step] ?? 0) + (t - this.last);
    this.last = t;
  }

  /** Records a step that ended before this clock started (e.g. VCPU_STATE taken → SWITCHOVER taken). */
  before(step: Step, since: number): void {
    if (since > 0 && since <= this.start) this.times[step] = this.start - since;
  }

  /** Records a step measured elsewhere, ahead of this clock, that is part of another (applyMs of stateMs). */
  record(step: Step, ms: number): void {
    if (ms > 0) this.times[step] = ms;
  }

  /** The steps so far and their total. */
  result(): DestinationSwitchoverTimes {
    return { ...this.times, totalMs: this.last - this.start };
  }
}
