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
}

function check(input: PrecopyInput): Required<PrecopyInput> {
  const full: Required<PrecopyInput> = {
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
