/**
 * Pre-copy policies as pure functions over round statistics, shared by the engine and the simulator:
 * when to switch over, when pre-copy is not converging or has stalled, and how auto-converge throttles the guest.
 */
import type { MigrationOptions, NonConvergenceAction } from './options.js';

/** What one finished round looked like, as the source measured it. */
export interface RoundSample {
  round: number;
  pagesSent: number;
  bytesSent: number;
  durationMs: number;
  /** Pages found dirty by the sync at the end of the round (the next round's work). */
  dirtyPages: number;
  /** Of `durationMs`, the time the bandwidth limit held sends back (0 or absent: none, or not measured). */
  heldMs?: number;
}

export interface ConvergenceState {
  rounds: RoundSample[];
  /** Measured bandwidth, bytes/s (from what was really sent). */
  bandwidth: number;
  /** Average wire bytes per page sent so far in live rounds (after compression / XBZRLE). */
  bytesPerPage: number;
  pageSize: number;
  /** Current throttle in percent of time held back (0 = none). */
  throttle: number;
  /** Consecutive rounds in which dirtying outran the trigger threshold (auto-converge's counter). */
  throttleTriggers: number;
  downtimeLimitMs: number;
  elapsedMs: number;
  msSinceProgress: number;
  /**
   * The stop-and-copy's own rate, bytes/s (`switchoverBandwidth`): given only where the no-progress rule applies
   * (round-decision.ts says where). A round without progress whose set fits the limit at it switches over.
   */
  switchoverBandwidth?: number;
}

export type Decision =
  | { action: 'next-round' }
  | { action: 'switchover'; reason: 'converged' | 'no-progress' | 'max-rounds' | 'min-dirty-pages' }
  | { action: 'postcopy'; reason: 'hybrid-rounds' | 'not-converging' | 'stalled' }
  | { action: 'abort'; reason: 'not-converging' | 'stalled' | 'timeout' | 'progress-timeout' };

/** Expected downtime if we paused now: remaining dirty bytes on the wire ÷ measured bandwidth. */
export function expectedDowntimeMs(dirtyPages: number, bytesPerPage: number, bandwidth: number): number {
  if (dirtyPages === 0) return 0;
  if (bandwidth <= 0) return Number.POSITIVE_INFINITY;
  return ((dirtyPages * bytesPerPage) / bandwidth) * 1000;
}

/** Dirty rate of a round, pages per second. */
export function dirtyRate(sample: RoundSample): number {
  return sample.durationMs > 0 ? (sample.dirtyPages * 1000) / sample.durationMs : 0;
}

/**
 * Measured bandwidth, bytes/s: what was really sent in the last three rounds (round 1 alone at the start), no more
 * than --max-bandwidth when one is set (`maxBandwidth` > 0). The engine and the model both decide with it.
 */
export function measuredBandwidth(samples: readonly RoundSample[], maxBandwidth: number): number {
  let bytes = 0;
  let ms = 0;
  for (const x of samples.slice(-3)) {
    bytes += x.bytesSent;
    ms += x.durationMs;
  }
  const rate = ms > 0 ? (bytes * 1000) / ms : 0;
  return maxBandwidth > 0 ? Math.min(rate, maxBandwidth) : rate;
}

/**
 * The stop-and-copy's rate, bytes/s: QEMU's avail-switchover-bandwidth when the user gives one (`avail` > 0), else
 * the engine's estimate of its own unlimited rate: what the last three rounds sent over their time less the time
 * the bandwidth limit held sends back. The guest is paused then and the limit lifted, so the live rounds' rate under
 * --max-bandwidth says nothing about it; the time the source spent on its sends does. Under load that time grows,
 * so the estimate falls with it (it errs towards more rounds, not a longer pause). 0 when nothing was measured.
 */
export function switchoverBandwidth(samples: readonly RoundSample[], avail: number): number {
  if (avail > 0) return avail;
  let bytes = 0;
  let ms = 0;
  for (const x of samples.slice(-3)) {
    bytes += x.bytesSent;
    ms += Math.max(0, x.durationMs - (x.heldMs ?? 0));
  }
  return ms > 0 ? (bytes * 1000) / ms : 0;
}

/** The round that just ended did not shrink the dirty set left by the one before (round 1 says nothing). */
export function madeNoProgress(samples: readonly RoundSample[]): boolean {
  const last = samples[samples.length - 1];
  const prev = samples[samples.length - 2];
  return !!last && !!prev && last.round > 1 && last.dirtyPages >= prev.dirtyPages;
}

/**
 * Less than this share taken off the dirty set by a round is no progress for the no-progress switch-over: at that
 * pace halving the set takes 11 rounds or more. Why not "did not shrink at all": a writer at its fixed point leaves
 * sets that differ by noise (a few tens of pages in thousands), so whether a round shrank its set at all is a coin
 * toss there, which no model can predict, while the mean shrink falls under 1/16 within a round or two of it.
 */
export const NO_PROGRESS_SHRINK = 1 / 16;

/** The round that just ended shrank the set left by the one before by less than NO_PROGRESS_SHRINK (not round 1). */
export function madeLittleProgress(samples: readonly RoundSample[]): boolean {
  const last = samples[samples.length - 1];
  const prev = samples[samples.length - 2];
  return !!last && !!prev && last.round > 1 && last.dirtyPages > prev.dirtyPages * (1 - NO_PROGRESS_SHRINK);
}

/** True when, for the last `rounds` rounds, pages were dirtied at least as fast as they were sent. */
export function isNotConverging(samples: readonly RoundSample[], rounds: number): boolean {
  if (samples.length < rounds + 1) return false; // round 1 (the bulk copy) says nothing about convergence
  for (let i = samples.length - rounds; i < samples.length; i++) {
    const s = samples[i]!;
    if (s.dirtyPages < s.pagesSent) return false;
  }
  return true;
}

/** True when the remaining dirty set has not shrunk below its best for `rounds` rounds. */
export function isStalled(samples: readonly RoundSample[], rounds: number): boolean {
  if (samples.length < rounds + 2) return false;
  const best = Math.min(...samples.slice(1, samples.length - rounds).map((s) => s.dirtyPages));
  return samples.slice(samples.length - rounds).every((s) => s.dirtyPages >= best);
}

/**
 * QEMU's auto-converge rule: if the bytes dirtied in the last round exceed `throttleTriggerThreshold`% of the bytes
 * sent in it, for two syncs in a row, raise the throttle (first to `throttleInitial`, then by `throttleIncrement`,
 * up to `throttleMax`). Returns the new throttle and trigger counter.
 */
export function autoConvergeStep(
  sample: RoundSample,
  pageSize: number,
  throttle: number,
  triggers: number,
  o: Pick<
    MigrationOptions,
    'throttleInitial' | 'throttleIncrement' | 'throttleMax' | 'throttleTriggerThreshold'
  >,
): { throttle: number; triggers: number } {
  if (sample.round < 2) return { throttle, triggers };
  const dirtied = sample.dirtyPages * pageSize;
  const sent = sample.pagesSent * pageSize;
  if (dirtied <= (sent * o.throttleTriggerThreshold) / 100) return { throttle, triggers: 0 };
  const t = triggers + 1;
  if (t < 2) return { throttle, triggers: t };
  const next = throttle === 0 ? o.throttleInitial : Math.min(o.throttleMax, throttle + o.throttleIncrement);
  return { throttle: next, triggers: 0 };
}

/** Maps QEMU's throttle (percent held back) onto a credit-scheduler CAP (percent of one CPU it may run). */
export function throttleToCap(throttle: number): number {
  return throttle <= 0 ? 0 : Math.max(1, 100 - throttle);
}

/**
 * The rate the convergence check assumes for the stop-and-copy: QEMU's avail-switchover-bandwidth when set, which
 * replaces the engine's own figure (`measured`), else that figure.
 */
export function stopAndCopyRate(
  o: Pick<MigrationOptions, 'availSwitchoverBandwidth'>,
  measured: number,
): number {
  return o.availSwitchoverBandwidth > 0 ? o.availSwitchoverBandwidth : measured;
}

/** The pre-copy decision after a round. Pure: the engine acts on the result. */
export function decideAfterRound(s: ConvergenceState, o: MigrationOptions): Decision {
  const last = s.rounds[s.rounds.length - 1];
  if (!last) return { action: 'next-round' };
  if (o.timeoutMs > 0 && s.elapsedMs >= o.timeoutMs) return { action: 'abort', reason: 'timeout' };
  if (o.progressTimeoutMs > 0 && s.msSinceProgress >= o.progressTimeoutMs) {
    return { action: 'abort', reason: 'progress-timeout' };
  }
  const expected = expectedDowntimeMs(last.dirtyPages, s.bytesPerPage, stopAndCopyRate(o, s.bandwidth));
  if (expected <= s.downtimeLimitMs) return { action: 'switchover', reason: 'converged' };
  // A round that (nearly) did not shrink the set says more rounds will not either: pause now if the set fits the limit at
  // the stop-and-copy's own rate, rather than resend it until max-rounds and pause with the same set then.
  if (
    s.switchoverBandwidth !== undefined &&
    madeLittleProgress(s.rounds) &&
    expectedDowntimeMs(last.dirtyPages, s.bytesPerPage, stopAndCopyRate(o, s.switchoverBandwidth)) <=
      s.downtimeLimitMs
  ) {
    return { action: 'switchover', reason: 'no-progress' };
  }
  return stopRules(s.rounds, o);
}

/**
 * The stop rules after the convergence check: min-dirty-pages, hybrid's round count, max-rounds, then the
 * non-convergence and stall actions. The QEMU bridge decides with these alone (QEMU checks convergence itself).
 */
export function stopRules(rounds: readonly RoundSample[], o: MigrationOptions): Decision {
  const last = rounds[rounds.length - 1];
  if (!last) return { action: 'next-round' };
  if (o.minDirtyPages > 0 && last.dirtyPages < o.minDirtyPages)
    return { action: 'switchover', reason: 'min-dirty-pages' };
  if (o.strategy === 'hybrid' && last.round >= o.postcopyAfterRounds) {
    return { action: 'postcopy', reason: 'hybrid-rounds' };
  }
  if (o.maxRounds > 0 && last.round >= o.maxRounds) return { action: 'switchover', reason: 'max-rounds' };
  const act = (
    action: NonConvergenceAction | 'double-downtime',
    reason: 'not-converging' | 'stalled',
  ): Decision => {
    if (action === 'postcopy') return { action: 'postcopy', reason };
    if (action === 'abort') return { action: 'abort', reason };
    return { action: 'next-round' }; // continue, auto-converge and double-downtime are handled by the engine
  };
  if (isNotConverging(rounds, o.nonConvergenceRounds)) {
    const d = act(o.onNonConvergence, 'not-converging');
    if (d.action !== 'next-round') return d;
  }
  if (isStalled(rounds, o.stallRounds)) {
    const d = act(o.onStall, 'stalled');
    if (d.action !== 'next-round') return d;
  }
  return { action: 'next-round' };
}

/** What the source measured about the XBZRLE cache in the round that just ended. */
export interface CacheRoundSample {
  /** Cache hits and misses among the pages resent in the round. */
  hits: number;
  misses: number;
  /** Page bytes that went as XBZRLE and the bytes they were encoded into. */
  xbzrlePageBytes: number;
  xbzrleEncodedBytes: number;
  overflows: number;
  /** Pages dirty at the end of the round that were also dirty at the end of the previous one: the hot set. */
  hotPages: number;
  /** Pages dirty at the end of the round (the next round's resend set). */
  dirtyPages: number;
}

/**
 * Where dynamic XBZRLE cache sizing starts: the budget, or the guest's RAM if that is smaller (a cache larger than
 * RAM never hits more). Round 1 passes every page through the cache, and a copy evicted then cannot hit when the
 * page is resent: growing later does not bring it back. Measured (docs/experiments.md, cache-size): starting at
 * 1/16 of the static size and growing sent 24–65% more bytes than the best static size, which was the whole RAM.
 * So the budget is committed while round 1 fills the cache, and `nextCacheSize` gives back what the resends do not
 * use once hits show what they are.
 */
export function initialCacheSize(o: {
  pageSize: number;
  ways: number;
  ramBytes: number;
  maxBytes: number;
}): number {
  const minBytes = o.pageSize * 64 * o.ways;
  const ram = 2 ** Math.ceil(Math.log2(Math.max(o.pageSize, o.ramBytes)));
  return Math.min(o.maxBytes, Math.max(minBytes, ram));
}

/**
 * Dynamic XBZRLE cache sizing (Svärd et al.'s future work): size the cache to the pages that keep coming back,
 * grow while misses on resent pages are common and XBZRLE pays, shrink when it does not pay or the hot set is
 * smaller than the cache — but only once some resent page has hit: before that (round 1, all misses are
 * first sends) nothing says which copies will be used, and a shrink keeps the most recently inserted copies,
 * not the ones that will be resent. Sizes are powers of two of pages (the cache rounds to a power of two of sets).
 */
export function nextCacheSize(
  current: number,
  s: CacheRoundSample,
  o: { pageSize: number; minBytes: number; maxBytes: number },
): number {
  const clamp = (b: number) => Math.max(o.minBytes, Math.min(o.maxBytes, b));
  const pow2 = (b: number) => 2 ** Math.ceil(Math.log2(Math.max(o.pageSize, b)));
  const lookups = s.hits + s.misses;
  // XBZRLE does not pay on this workload (deltas as big as pages, or overflows): keep the cache small.
  const ratio = s.xbzrlePageBytes > 0 ? s.xbzrleEncodedBytes / s.xbzrlePageBytes : 0;
  const overflowRate = lookups > 0 ? s.overflows / lookups : 0;
  if (s.xbzrlePageBytes > 0 && (ratio > 0.75 || overflowRate > 0.5)) return clamp(pow2(current / 2));
  // Target: the hot set (or, before it is known, the resend set) with a quarter of headroom — and never less than the
  // pages resent this round (hits + misses once anything hit): with uniform writers most resends are not hot, any
  // page sent may come back, and a cache cut to the hot set misses them (measured: 172 ms downtime against 23 ms).
  const resent = s.hits > 0 ? lookups : 0;
  const wanted = pow2(Math.max(s.hotPages > 0 ? s.hotPages : s.dirtyPages, resent) * o.pageSize * 1.25);
  const missRate = lookups > 0 ? s.misses / lookups : 1;
  if (wanted > current && missRate > 0.1) return clamp(Math.min(wanted, current * 4));
  if (wanted < current / 2 && s.hits > 0) return clamp(Math.max(wanted, current / 2));
  return clamp(current);
}

/**
 * Cache admission (livemig's addition; QEMU caches every page it sends): a page earns a cache slot only if it is
 * likely to be resent — it was written in the window before migration (`warm`), has been written since migration
 * started (`writtenSince`), or is dirty again in the log as it is sent (`dirtyNow`: it *will* be resent). A cold page
 * that is never resent would only take the slot of one that is.
 */
export function admitToCache(page: { warm: boolean; writtenSince: number; dirtyNow: boolean }): boolean {
  return page.dirtyNow || page.warm || page.writtenSince > 0;
}

/**
 * Where dynamic sizing starts with admission: the pages written in the window before migration (the warm set) with
 * a margin of 2 (the set keeps growing while round 1 runs), within [minBytes, maxBytes].
 */
export function initialAdmittedCacheSize(o: {
  pageSize: number;
  warmPages: number;
  minBytes: number;
  maxBytes: number;
}): number {
  const wanted = 2 ** Math.ceil(Math.log2(Math.max(o.pageSize, o.warmPages * o.pageSize * 2)));
  return Math.max(o.minBytes, Math.min(o.maxBytes, wanted));
}

/**
 * Growth during round 1 with admission, from two kinds of evidence. (1) The admitted pages (copies the resends will
 * need) must fit in 3/4 of the slots, beyond which a 2-way cache evicts them for one another. (2) Every page written
 * since migration started is resent in round 2, and a copy not cached by then costs a whole page. Once a quarter of
 * round 1 is sent, the written pages are projected to the round's end at the rate new ones appeared over the last
 * eighth of the round or more (`earlier`): a skewed writer's rate falls as its hot set is covered, a uniform
 * writer's does not. A quarter of headroom on top. A uniform writer's next pages cannot be told apart, so only a
 * cache that holds them all (free slots take the pages not admitted) catches its resends: this rule is what lets
 * the cache reach that size before round 1 has passed those pages by.
 */
export function admittedCacheGrowth(
  current: number,
  s: {
    admittedPages: number;
    /** Pages written since migration started, and the fraction of round 1 sent, now and at an earlier check. */
    writtenPages: number;
    progress: number;
    earlier: { writtenPages: number; progress: number };
  },
  o: { pageSize: number; maxBytes: number },
): number {
  const pow2 = (b: number) => 2 ** Math.ceil(Math.log2(Math.max(o.pageSize, b)));
  let wanted = s.admittedPages * o.pageSize > current * 0.75 ? current * 2 : current;
  const span = s.progress - s.earlier.progress;
  if (s.progress >= 0.25 && span >= 0.125) {
    const rate = Math.max(0, s.writtenPages - s.earlier.writtenPages) / span;
    const projected = s.writtenPages + rate * Math.max(0, 1 - s.progress);
    wanted = Math.max(wanted, pow2(projected * 1.25 * o.pageSize));
  }
  return wanted > current ? Math.max(current, Math.min(o.maxBytes, wanted)) : current;
}
