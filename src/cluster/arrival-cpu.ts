/**
 * A migrated guest's utilisation over the interval it arrived in. Its CPU over the whole interval is its demand
 * less the migration's toll (paused, slowed, uncapped for a moment on arrival), so the manager used to hold it at its
 * value from the interval before — a stale value, which the next round then planned on: right after a migration, the
 * very round that decides whether to move a VM back, a VM whose trace had fallen from 87 to 71 % still counted at
 * 87 % on its new host. Instead it is now measured on its target from its first CAP there (the guest runs at its
 * trace again) to the interval's end, when that tail is long enough to measure; otherwise it is still held.
 */

/** One power-meter sample's CPU for one guest: the `intervalMs` that ends at `at`. */
export interface GuestCpuSample {
  readonly at: number;
  readonly intervalMs: number;
  readonly cpuMs: number;
}

/** The shortest tail that is measured rather than held: a quarter of the interval (2 of the 8 CAP steps). */
export const MIN_TAIL_SHARE = 0.25;

/**
 * The arrived guest's utilisation (fraction of its VM's MIPS) on its target from `from` (its first CAP there) to
 * `until`, or null when that is shorter than `MIN_TAIL_SHARE` of the interval (the caller holds the last value then).
 * Only the meter's samples that start at or after `from` count, over their own length: the sample the CAP fell in
 * may hold the unthrottled moment before it, which a share by overlap would still count.
 */
export function arrivedUtilisation(
  samples: readonly GuestCpuSample[],
  from: number,
  until: number,
  periodMs: number,
  cpuScale: number,
): number | null {
  let ms = 0;
  let cpu = 0;
  for (const s of samples) {
    if (s.at - s.intervalMs < from || s.at > until || s.intervalMs <= 0) continue;
    ms += s.intervalMs;
    cpu += s.cpuMs;
  }
  if (!(ms >= periodMs * MIN_TAIL_SHARE)) return null;
  return Math.min(1, cpu / ms / cpuScale);
}
