/**
 * Pre-copy performance model: predicted rounds, total time, downtime and bytes of a live migration, without running
 * one. Used by the data-centre simulator to price migrations, and by anyone who wants a quick estimate.
 *
 * The model (Liu et al., "Performance and energy modeling for live migration of virtual machines", HPDC 2011;
 * Akoush et al., "Predicting the performance of virtual machine migration", MASCOTS 2010):
 *
 * ```
 *   round 0 sends the whole RAM:          V₀ = M,                       T₀ = V₀ / B
 *   round i sends what was dirtied in i−1: V_i = min(D · T_{i−1}, W),    T_i = c · V_i / B
 *   with no working-set cap:               V_i = M · λ^i,  λ = c · D / B   (a geometric series)
 *   stop-and-copy when c · V_n / B ≤ downtime limit, or at the max-rounds bound, or when V_i stops shrinking
 *   total time   = Σ_{i<n} T_i + downtime,   downtime = c · V_n / B + resume overhead
 *   bytes sent   = M + c · Σ_{i≥1} V_i
 * ```
 *
 * M = RAM bytes, D = dirty rate (bytes/s), W = writable working set (bytes that are rewritten; caps what one round can
 * dirty), B = bandwidth (bytes/s), c = compression ratio of re-sent pages (XBZRLE: wire bytes ÷ page bytes, 1 = off).
 * Round 0 is never compressed: XBZRLE only helps pages that were sent before. With W = ∞ the totals have the closed
 * form of `precopyClosedForm`: T = (M/B)·(1 − λ^{n+1})/(1 − λ), which converges iff λ < 1.
 *
 * `dirtySet: 'uniform'` replaces D·T by the pages a writer that picks pages uniformly from W really leaves dirty:
 * W·(1 − e^(−D·T/W)) — writes that land on a page already dirty in the round add nothing. Near λ = 1 that is the
 * difference between "never converges" and converging in a few rounds (docs/experiments.md, model).
 */

// The pure parts of src/profile only: the simulator imports this model and needs no guest machinery.
import {
  cacheRetention,
  measuredCacheHit,
  unchangedSinceSent,
  workingSetAt,
  xbzrleAt,
} from '../profile/curve.js';
import type { GuestProfile } from '../profile/schema.js';
import { TAIL_LIMITS } from './converge-tail.js';
import { DEFAULT_OPTIONS, type MigrationOptions } from './options.js';
import { measuredBandwidth, type RoundSample, switchoverBandwidth, throttleToCap } from './policy.js';
import { decideRound, initialRoundState } from './round-decision.js';

export interface PrecopyInput {
  /** VM RAM in bytes. */
  readonly ramBytes: number;
  /** Page dirty rate in bytes per second (pages/s × page size). */
  readonly dirtyRate: number;
  /** Writable working set in bytes: the most one round can find dirty. Defaults to the whole RAM. */
  readonly workingSetBytes?: number;
  /** Bandwidth available to the migration, bytes per second. */
  readonly bandwidth: number;
  /** Wire bytes per re-sent page byte (XBZRLE, 0 < c ≤ 1). Default 1 (no compression). */
  readonly compressionRatio?: number;
  /** Maximum acceptable downtime in seconds (QEMU's default: 0.3 s). */
  readonly downtimeLimit?: number;
  /** Bound on iterative rounds (round 0 included) before forcing stop-and-copy. Default 30 (Xen's bound). */
  readonly maxRounds?: number;
  /** Fixed cost of the switch-over itself (CPU state, device state, resume), seconds. Default 0. */
  readonly resumeOverhead?: number;
  /**
   * How writes become dirty bytes in a round of T seconds: `linear` (default, the papers' model) D·T capped at W;
   * `uniform` W·(1 − e^(−D·T/W)), the distinct pages of a writer choosing uniformly within W.
   */
  readonly dirtySet?: 'linear' | 'uniform';
  /**
   * A measured guest profile (`livemig profile`): when given, the rounds follow the engine (see `predictFromProfile`)
   * and the dirty rate, working set and compression above are not used: W(t), the zero pages and the XBZRLE deltas
   * come from the profile.
   */
  readonly profile?: GuestProfile;
  /** With a profile: the migration's options (stop rules, XBZRLE cache, auto-converge); defaults from the fields above. */
  readonly migration?: Partial<MigrationOptions>;
  /** With a profile: this engine's fixed and per-page costs (defaults: `DEFAULT_ENGINE_COSTS`). */
  readonly engine?: Partial<EngineCosts>;
  /**
   * With a profile: the share (0, 1] of its profiled speed the guest keeps while it is migrated (its vCPUs share
   * the host with the migration). Default 1; the engine reports the real figure as `guest.slowdown` = 1 − this.
   */
  readonly guestSpeed?: number;
  /**
   * With a profile: when the switch-over may happen. `round-end` (default, this engine): after a round, by the stop
   * rules. `qemu`: QEMU's rule, as soon as what is pending fits the downtime limit, also in the middle of a round.
   */
  readonly switchover?: 'round-end' | 'qemu';
}

/** What the engine itself costs, apart from the guest and the link (measured: docs/model.md). */
export interface EngineCosts {
  /** Fixed time from the start of pre-copy to its first page (the guest's rate is sampled for 100 ms), s. */
  startSec: number;
  /** Fixed cost of the switch-over: vCPU state, digest, READY/GO/RESUMED round trips, resuming the guest, s. */
  switchoverSec: number;
  /** Source time per non-zero page sent (copy, CRC, encode, frame, write): bounds the rate when the link does not, s. */
  pageSec: number;
  /**
   * Time per page of the stop-and-copy, s (the guest is paused, so the source does not share the host with it);
   * defaults to `pageSec`.
   */
  stopPageSec?: number;
  /** Source time per zero page found in round 1 (skipped in runs), s. */
  zeroPageSec: number;
  /** Wire bytes per page besides its payload (page header, frame overhead). */
  pageHeaderBytes: number;
  /** What the link carries with the limit lifted (the stop-and-copy runs unlimited), bytes/s. */
  linkBandwidth: number;
}

/**
 * Defaults: measured by `livemig experiment model --quick` (before its grid) on the 2-core development machine at a
 * load average of ~20 (other jobs running): the per-page cost is the machine's speed and moves with its load.
 * `livemig predict --calibrate` measures them on the machine it runs on.
 */
export const DEFAULT_ENGINE_COSTS: EngineCosts = {
  startSec: 0.11,
  switchoverSec: 0.011,
  pageSec: 96e-6,
  zeroPageSec: 0.3e-6,
  pageHeaderBytes: 9,
  linkBandwidth: 1.4e9,
};

/** One round of a profile-fed prediction. */
export interface PredictedRound {
  round: number;
  pages: number;
  bytes: number;
  seconds: number;
  /** Pages dirtied while it ran (the next round's work). */
  dirtyPages: number;
  /** Auto-converge throttle during the round, percent. */
  throttle: number;
}

export interface PrecopyPrediction {
  /** Iterative rounds, round 0 (the full copy) included; the stop-and-copy round is not counted. */
  readonly rounds: number;
  /** Seconds from start to resume on the destination. */
  readonly totalTime: number;
  /** Seconds the VM is paused. */
  readonly downtime: number;
  /** Bytes on the wire. */
  readonly bytes: number;
  /** Bytes sent during the stop-and-copy round. */
  readonly stopCopyBytes: number;
  /** True if the downtime limit was met; false if the round bound or non-convergence forced the switch-over. */
  readonly converged: boolean;
  /** λ = c·D/B, the per-round shrink ratio; ≥ 1 means pre-copy cannot converge without a working-set cap. */
  readonly ratio: number;
  /** With a profile: each pre-copy round, and why pre-copy ended (as the engine's switchoverReason). */
  readonly perRound?: readonly PredictedRound[];
  readonly switchoverReason?: string;
  /** With a profile and XBZRLE: the cache hit rate and wire bytes per resent page byte the model used. */
  readonly xbzrle?: { hitRate: number; wireRatio: number };
}

type Classic = Required<Omit<PrecopyInput, 'profile' | 'migration' | 'engine' | 'guestSpeed' | 'switchover'>>;

function check(input: PrecopyInput): Classic {
  const full: Classic = {
    workingSetBytes: input.ramBytes,
    compressionRatio: 1,
    downtimeLimit: 0.3,
    maxRounds: 30,
    resumeOverhead: 0,
    dirtySet: 'linear',
    ...input,
  };
  const bad = (what: string) => new RangeError(`pre-copy model: ${what}`);
  if (!(full.ramBytes >= 0)) throw bad(`RAM must be ≥ 0 bytes (got ${full.ramBytes})`);
  if (!(full.dirtyRate >= 0)) throw bad(`dirty rate must be ≥ 0 (got ${full.dirtyRate})`);
  if (!(full.bandwidth > 0)) throw bad(`bandwidth must be > 0 (got ${full.bandwidth})`);
  if (!(full.compressionRatio > 0 && full.compressionRatio <= 1)) {
    throw bad(`compression ratio must be in (0, 1] (got ${full.compressionRatio})`);
  }
  if (!(full.workingSetBytes >= 0)) throw bad(`working set must be ≥ 0 (got ${full.workingSetBytes})`);
  if (!(full.downtimeLimit >= 0)) throw bad(`downtime limit must be ≥ 0 (got ${full.downtimeLimit})`);
  if (full.dirtySet !== 'linear' && full.dirtySet !== 'uniform') {
    throw bad(`dirty set must be "linear" or "uniform" (got ${String(full.dirtySet)})`);
  }
  if (!(Number.isInteger(full.maxRounds) && full.maxRounds >= 1)) {
    throw bad(`max rounds must be an integer ≥ 1 (got ${full.maxRounds})`);
  }
  return full;
}

/** Iterates the rounds of the model above. Pure; O(rounds). */
export function predictPrecopy(input: PrecopyInput): PrecopyPrediction {
  if (input.profile) return predictFromProfile(input);
  const p = check(input);
  const c = p.compressionRatio;
  const B = p.bandwidth;
  const W = Math.min(p.workingSetBytes, p.ramBytes);
  const ratio = (c * p.dirtyRate) / B;
  const dirtied = (t: number): number =>
    p.dirtySet === 'uniform' && W > 0
      ? W * -Math.expm1((-p.dirtyRate * t) / W)
      : Math.min(p.dirtyRate * t, W);

  const sent = p.ramBytes; // V₀, uncompressed
  let roundTime = sent / B; // T₀
  let time = roundTime;
  let bytes = sent;
  let rounds = 1;
  let pending = dirtied(roundTime); // dirtied while round 0 ran
  let converged = c * (pending / B) <= p.downtimeLimit;
  while (!converged && rounds < p.maxRounds) {
    const wire = c * pending;
    roundTime = wire / B;
    const next = dirtied(roundTime);
    if (next >= pending) break; // not shrinking: more rounds would only add traffic
    time += roundTime;
    bytes += wire;
    rounds++;
    pending = next;
    converged = (c * pending) / B <= p.downtimeLimit;
  }
  const stopCopyBytes = c * pending;
  const downtime = stopCopyBytes / B + p.resumeOverhead;
  return {
    rounds,
    totalTime: time + downtime,
    downtime,
    bytes: bytes + stopCopyBytes,
    stopCopyBytes,
    converged,
    ratio,
  };
}

/**
 * Closed form of the model for n iterative rounds with no working-set cap and no downtime check:
 * wire bytes = M·(1 + Σ_{i=1..n} λ^i) = M·(1 + λ(1 − λ^n)/(1 − λ)), total time = wire bytes / B,
 * downtime = M·λ^n / B (the last term, sent while paused).
 */
export function precopyClosedForm(input: {
  ramBytes: number;
  dirtyRate: number;
  bandwidth: number;
  compressionRatio?: number;
  rounds: number;
}): { totalTime: number; downtime: number; bytes: number } {
  const c = input.compressionRatio ?? 1;
  const lambda = (c * input.dirtyRate) / input.bandwidth;
  const n = input.rounds;
  // Σ_{i=1..n} λ^i = λ(1 − λ^n)/(1 − λ), or n when λ = 1.
  const series = lambda === 1 ? n : (lambda * (1 - lambda ** n)) / (1 - lambda);
  const bytes = input.ramBytes * (1 + series);
  return {
    bytes,
    totalTime: bytes / input.bandwidth,
    downtime: (input.ramBytes * lambda ** n) / input.bandwidth,
  };
}

/**
 * The migration time CloudSim charges: the whole RAM over half the target host's bandwidth, no dirty pages
 * (`RAM / (BW / 2)`; with RAM in MB and BW in kbit/s that is `ram / (bw / 16000)` seconds).
 */
export function cloudsimMigrationTime(ramMb: number, bwKbps: number): number {
  return ramMb / (bwKbps / (2 * 8000));
}

/** Rounds after which the model stops iterating a migration no stop rule ends (the engine would run on). */
const MODEL_ROUND_BOUND = 1000;

/**
 * QEMU's switch-over rule, checked as it sends rather than at the end of a round (migration_iteration_run): it
 * switches over as soon as the bytes still pending — the rest of this round plus the pages dirtied again after
 * they were sent — would go within the downtime limit at the bandwidth it measures. A round sends `wire` bytes in
 * `T` s; `t` into it, R·t are sent and W(t) pages were dirtied, the sent share R·t/wire of them pending again.
 * Returns the first such t (scanned in 1/256 steps of the round), or undefined when the round ends first.
 */
function qemuSwitchover(x: {
  wire: number;
  T: number;
  speed: number;
  limitSec: number;
  prof: GuestProfile;
  perResent: (ms: number) => number;
  /** QEMU's avail-switchover-bandwidth, bytes/s; 0 = the measured rate. */
  avail: number;
}): { t: number; sentBytes: number; pendingBytes: number } | undefined {
  const R = x.wire / x.T;
  const threshold = (x.avail > 0 ? x.avail : R) * x.limitSec;
  const steps = 256;
  for (let k = 0; k <= steps; k++) {
    const t = (x.T * k) / steps;
    const sent = R * t;
    const again =
      workingSetAt(x.prof, t * 1000 * x.speed) * (sent / x.wire) * x.perResent(Math.max(1, t * 1000));
    const pending = x.wire - sent + again;
    if (pending <= threshold) return { t, sentBytes: sent, pendingBytes: pending };
  }
  return undefined;
}

/**
 * The pre-copy model fed with a measured guest profile, round by round as the engine runs them
 * (src/migration/source/), with the engine's own per-round decision (src/migration/round-decision.ts: the stop
 * rules, auto-converge, the downtime ramp, the double-downtime rule) so every preset's rules apply as they do for real:
 *
 * ```
 *   round 1 sends every page; non-zero pages go whole, zero pages are skipped:  V₁ = (1 − z)·N·(P + h)
 *   a round of p pages and V wire bytes lasts     T = max(V / B, p·c_page + zeros·c_zero, V / L)
 *   the pages it leaves dirty                      D = W(T · s · g)  (s = the CAP auto-converge leaves the guest,
 *                                                                      g = the guest's speed while migrated)
 *   the next round resends them                    V' = D · b(T)     (b: wire bytes per resent page)
 *   stop when decideRound says so, with the engine's estimate: D · (bytes per page so far) / (rate so far), and
 *     after a round that did not shrink D, the same at the unlimited rate (bytes so far / Σ (T − time held by B))
 *   downtime = max(D·c_page, V_D / L) + switch-over cost + max(0, destination start − carried/B − time so far)
 *   total = start cost + Σ T + downtime
 * ```
 *
 * W = the profile's working-set curve (distinct pages dirtied in a window of T), z = its zero fraction, P = page
 * size, h = per-page header bytes, B = the bandwidth limit, L = the unlimited link rate, c_page/c_zero = the source's
 * time per page (`EngineCosts`). With XBZRLE, b(T) = hit·(1 − u(T))·(delta at lag T) + (1 − hit)·(P + h), where hit
 * is the share of resent pages the cache of the configured size and ways still holds after round 1 (the profile's
 * measured `cacheHit`, else `cacheRetention`), u(T) the share XBZRLE finds unchanged because they were written before
 * the round sent them (`unchangedSinceSent`), and the delta (its unchanged, overflow and encoded shares) is the
 * profile's at the lag nearest T. z is the zero fraction at the profile's start; a trace guest's recording
 * (`carriedBytes`) is added to the bytes.
 */
export function predictFromProfile(input: PrecopyInput): PrecopyPrediction {
  const prof = input.profile;
  if (!prof) throw new RangeError('pre-copy model: predictFromProfile needs a profile');
  const e: EngineCosts = { ...DEFAULT_ENGINE_COSTS, ...input.engine };
  const o: MigrationOptions = {
    ...DEFAULT_OPTIONS,
    downtimeLimitMs: (input.downtimeLimit ?? 0.3) * 1000,
    maxRounds: input.maxRounds ?? 30,
    maxBandwidth: Number.isFinite(input.bandwidth) ? input.bandwidth : 0,
    ...input.migration,
  };
  if (!(o.maxBandwidth >= 0))
    throw new RangeError(`pre-copy model: bandwidth must be ≥ 0 (got ${o.maxBandwidth})`);
  const guestSpeed = input.guestSpeed ?? 1;
  if (!(guestSpeed > 0 && guestSpeed <= 1)) {
    throw new RangeError(`pre-copy model: guest speed must be in (0, 1] (got ${guestSpeed})`);
  }
  const P = prof.pageSize;
  const N = prof.ramPages;
  const B = o.maxBandwidth > 0 ? o.maxBandwidth : Number.POSITIVE_INFINITY;
  // Round 1 starts right after the watch: the zero pages then, for a guest that fills memory as it runs.
  const nonZero = Math.round(N * (1 - (prof.zeroFractionStart ?? prof.zeroFraction ?? 0)));
  // A trace guest's recording goes in the handshake, at the link's rate, before round 1 (not in the time modelled
  // here, which starts after the handshake, but on the wire and while the destination starts its guest).
  const carried = prof.carriedBytes ?? 0;
  const carriedSec = carried / Math.min(B, e.linkBandwidth);
  const whole = P + e.pageHeaderBytes;

  // XBZRLE: the share of resent pages whose copy is still cached after round 1 put every non-zero page through it.
  let hit = 0;
  if (o.xbzrle) {
    const bytes = o.cacheSizing === 'dynamic' ? Math.min(o.xbzrleCacheMaxBytes, N * P) : o.xbzrleCacheBytes;
    const sets = 2 ** Math.floor(Math.log2(Math.max(1, Math.floor(bytes / (P * o.cacheWays)))));
    // Measured on the guest's own pages when the profile has this geometry; else random placement (Poisson).
    hit =
      (o.cacheSizing === 'static' ? measuredCacheHit(prof, sets, o.cacheWays) : undefined) ??
      cacheRetention(nonZero, sets, o.cacheWays);
  }
  /** Wire bytes per resent page whose previous copy was sent `ms` ago; and the share of such pages that travel. */
  const perResent = (ms: number): number => {
    if (!o.xbzrle) return whole;
    const d = xbzrleAt(prof, ms) ?? { unchanged: 0, overflow: 0, ratio: 1 };
    // Unchanged: written before the round sent them (their copy holds the write), or rewritten with the same bytes.
    const changed = (1 - unchangedSinceSent(prof, ms)) * (1 - d.unchanged);
    const over = d.unchanged < 1 ? d.overflow / (1 - d.unchanged) : 0;
    const delta = changed * (over * whole + (1 - over) * (d.ratio * P + e.pageHeaderBytes));
    return hit * delta + (1 - hit) * whole;
  };
  /** A round's time without the bandwidth limit: the source's work or the link, whichever is slower. */
  const unlimitedSec = (pages: number, zeros: number, wire: number): number =>
    Math.max(pages * e.pageSec + zeros * e.zeroPageSec, wire / e.linkBandwidth);
  const roundSec = (pages: number, zeros: number, wire: number): number =>
    Math.max(wire / B, unlimitedSec(pages, zeros, wire));

  const samples: RoundSample[] = [];
  const perRound: PredictedRound[] = [];
  let state = initialRoundState(o);
  let pages = N;
  let wire = nonZero * whole;
  let T = roundSec(nonZero, N - nonZero, wire);
  // What the limit held back (the engine measures it on its token bucket: the no-progress rule's rate).
  let held = T - unlimitedSec(nonZero, N - nonZero, wire);
  let time = e.startSec;
  let bytes = carried;
  let liveBytes = 0;
  let livePages = 0;
  let best = Number.POSITIVE_INFINITY;
  let progressAt = time;
  let lastWireRatio = whole / P;
  for (let round = 1; ; round++) {
    const throttle = state.throttle;
    const speed = (throttle > 0 ? throttleToCap(throttle) / 100 : 1) * guestSpeed;
    if (input.switchover === 'qemu' && T > 0 && wire > 0) {
      const limitSec = state.downtimeLimitMs / 1000;
      const early = qemuSwitchover({
        wire,
        T,
        speed,
        limitSec,
        prof,
        perResent,
        avail: o.availSwitchoverBandwidth,
      });
      if (early) {
        // The stop-and-copy is not rate-limited: the pending bytes go at the engine's own speed.
        const pendingPages = early.pendingBytes / whole;
        const downtime =
          Math.max(pendingPages * (e.stopPageSec ?? e.pageSec), early.pendingBytes / e.linkBandwidth) +
          e.switchoverSec;
        perRound.push({ round, pages, bytes: early.sentBytes, seconds: early.t, dirtyPages: 0, throttle });
        return {
          rounds: round,
          totalTime: time + early.t + downtime,
          downtime,
          bytes: bytes + early.sentBytes + early.pendingBytes,
          stopCopyBytes: early.pendingBytes,
          converged: true,
          ratio: Number.isFinite(B) ? (lastWireRatio * prof.dirtyPagesPerSec * P) / B : 0,
          perRound,
          switchoverReason: 'downtime-limit (QEMU: pending bytes fit the limit at the measured bandwidth)',
          ...(o.xbzrle ? { xbzrle: { hitRate: hit, wireRatio: lastWireRatio } } : {}),
        };
      }
    }
    time += T;
    bytes += wire;
    const dirty = Math.min(N, workingSetAt(prof, T * 1000 * speed));
    const sample: RoundSample = {
      round,
      pagesSent: pages,
      bytesSent: wire,
      durationMs: T * 1000,
      dirtyPages: dirty,
      heldMs: held * 1000,
    };
    samples.push(sample);
    perRound.push({ round, pages, bytes: wire, seconds: T, dirtyPages: dirty, throttle });
    if (round > 1) {
      liveBytes += wire;
      livePages += pages;
    }
    if (dirty < best) {
      best = dirty;
      progressAt = time;
    }
    const outcome = decideRound(
      state,
      {
        samples,
        pageSize: P,
        estimate: {
          bandwidth: measuredBandwidth(samples, o.maxBandwidth),
          // QEMU has no such rule (it uses avail-switchover-bandwidth only as given, in the check above).
          ...(input.switchover === 'qemu'
            ? {}
            : { switchoverBandwidth: switchoverBandwidth(samples, o.availSwitchoverBandwidth) }),
          bytesPerPage: livePages > 0 ? Math.max(64, liveBytes / livePages) : P,
          elapsedMs: time * 1000,
          msSinceProgress: (time - progressAt) * 1000,
        },
        autoConverge: 'engine',
        tail: o.convergeTail ? TAIL_LIMITS : undefined, // as the engine runs it (source/precopy.ts)
      },
      o,
    );
    const decision =
      round >= MODEL_ROUND_BOUND
        ? ({ action: 'abort', reason: 'not-converging' } as const)
        : outcome.decision;
    const resent = perResent(T * 1000);
    lastWireRatio = resent / P;
    if (decision.action !== 'next-round') {
      // Stop-and-copy (or the post-copy hand-over, or an abort: priced as a stop-and-copy, flagged in the reason).
      const stopCopyBytes = dirty * resent;
      // The switch-over also waits for the destination's guest to be up if pre-copy ended first (a trace loads).
      const waitDestination = Math.max(0, (prof.incomingMs ?? 0) / 1000 - carriedSec - time);
      const downtime =
        Math.max(dirty * (e.stopPageSec ?? e.pageSec), stopCopyBytes / e.linkBandwidth) +
        e.switchoverSec +
        waitDestination;
      const reason =
        decision.action === 'switchover' ? decision.reason : `${decision.action}: ${decision.reason}`;
      return {
        rounds: round,
        totalTime: time + downtime,
        downtime,
        bytes: bytes + stopCopyBytes,
        stopCopyBytes,
        converged: decision.action === 'switchover' && decision.reason !== 'max-rounds',
        ratio: Number.isFinite(B) ? (lastWireRatio * prof.dirtyPagesPerSec * P) / B : 0,
        perRound,
        switchoverReason: reason,
        ...(o.xbzrle ? { xbzrle: { hitRate: hit, wireRatio: lastWireRatio } } : {}),
      };
    }
    state = outcome.state;
    pages = dirty;
    wire = dirty * resent;
    T = roundSec(dirty, 0, wire);
    held = T - unlimitedSec(dirty, 0, wire);
  }
}
