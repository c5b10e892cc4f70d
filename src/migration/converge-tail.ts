/**
 * The tail of pre-copy (livemig's engine): once a round has converged (its dirty set fits the downtime limit), one
 * more live round is run while it is expected to shrink the dirty set to at most three quarters, so that the
 * switch-over comes right after a sync whose set is small rather than after the first one that fits.
 *
 * Why: the downtime limit says what is acceptable, not what is best. A set that fits 300 ms at the live rounds' rate
 * (808 pages at 32 MiB/s: ~100 ms) still costs tens of milliseconds paused, while sending it live costs the guest
 * nothing and leaves only what is written meanwhile (a uniform writer at 2000 pages/s: ~200 pages after 100 ms, ~50
 * after the next 25 ms). QEMU reaches the same point by syncing its dirty log more often near the end of a pass
 * (`ram_state_pending_estimate`): its rounds get shorter as the remaining set falls below bandwidth × limit. Here each
 * round is a whole pass over the last sync's pages, so a short round is exactly a pass over a small set.
 *
 * A round is predicted to leave (pages dirtied per ms in the last round) × (ms to send the set at the measured
 * bandwidth); another round pays when that is at most `maxLeftFraction` of the set. A writer whose dirty set does
 * not shrink that fast (a hot set rewritten about as fast as it is sent) stops the tail: the last round must have
 * shrunk the set it was given as much. 3/4 and not 1/2: a writer at 5000 pages/s against 32 MiB/s (8192 pages/s)
 * leaves ~0.6 of each set, and ten such rounds take a 2000-page set (8 MiB, ~40 ms paused) under the floor. Bounded
 * by `maxTailRounds`, `maxRounds`, and a floor under which the stop-and-copy is already short (its bytes go
 * unlimited while the guest is paused). The rounds cost time, not downtime: each is shorter than the one before,
 * all of them together at most 1 / (1 − 3/4) = 4 times the first, which lasts at most the downtime limit.
 */
import type { RoundSample } from './policy.js';

export interface TailLimits {
  /** Below this many wire bytes left, the stop-and-copy is short already: switch over. */
  floorBytes: number;
  /** Tail rounds at most, per migration. */
  maxTailRounds: number;
  /** Another round pays when it is expected to leave at most this fraction of the set (and the last one did). */
  maxLeftFraction: number;
}

/** 256 KiB: 64 whole pages, well under a millisecond of stop-and-copy over loopback. */
export const TAIL_LIMITS: TailLimits = { floorBytes: 256 * 1024, maxTailRounds: 10, maxLeftFraction: 0.75 };

export interface TailInput {
  /** Every round so far, the one that just ended (and converged) last. */
  samples: readonly RoundSample[];
  /** Wire bytes per dirty page and the measured bandwidth (bytes/s), as the convergence check used them. */
  bytesPerPage: number;
  bandwidth: number;
  /** Tail rounds already run in this migration. */
  tailRounds: number;
  /** The migration's max-rounds (0 = none): the tail never goes past it. */
  maxRounds: number;
  limits?: TailLimits;
}

/** Pages the next round is expected to leave dirty: the last round's dirty rate over the time to send its set. */
export function expectedNextDirty(last: RoundSample, bytesPerPage: number, bandwidth: number): number {
  if (last.durationMs <= 0 || bandwidth <= 0) return Number.POSITIVE_INFINITY;
  const sendMs = ((last.dirtyPages * bytesPerPage) / bandwidth) * 1000;
  return (last.dirtyPages / last.durationMs) * sendMs;
}

/** After a converged round: whether one more live round is expected to shrink the dirty set enough. */
export function anotherRoundPays(t: TailInput): boolean {
  const limits = t.limits ?? TAIL_LIMITS;
  const last = t.samples[t.samples.length - 1];
  if (!last || last.dirtyPages === 0) return false;
  if (t.tailRounds >= limits.maxTailRounds) return false;
  if (t.maxRounds > 0 && last.round >= t.maxRounds) return false;
  if (last.dirtyPages * t.bytesPerPage <= limits.floorBytes) return false;
  const f = limits.maxLeftFraction;
  // Round 1 says little here (its pages include never-written ones); after it, the round must have shrunk its set.
  if (last.round > 1 && last.dirtyPages > last.pagesSent * f) return false;
  return expectedNextDirty(last, t.bytesPerPage, t.bandwidth) <= last.dirtyPages * f;
}
