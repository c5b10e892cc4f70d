/**
 * Which hosts PABFD looks at. Every empty, switched-off host of one type costs the same and is equally suitable, so
 * only the first such host per type can win (ties keep the first): the others are skipped without changing the
 * answer. With `placementCandidates` > 0 the active hosts are sampled instead (an approximation for huge runs).
 */
import type { SimState } from './state.js';

/** Switched off and holding nothing (CloudSim: measured utilisation 0 too). */
export function isEmpty(s: SimState, h: number): boolean {
  return s.hostVms[h]!.length === 0 && (s.fix.idleVms || s.measuredU[h] === 0);
}

/**
 * Hosts PABFD has to look at, in index order: the active ones plus one representative empty host per type (if
 * `includeEmpty`). `placementCandidates` < 0 is the reference mode: every non-excluded host, no pruning.
 */
export function candidateSet(s: SimState, excluded: Uint8Array, includeEmpty: boolean): Candidates {
  const active: number[] = [];
  for (let h = 0; h < s.H; h++) {
    if (excluded[h] === 1) continue;
    if (!isEmpty(s, h)) active.push(h);
  }
  const k = s.options.placementCandidates ?? 0;
  if (k < 0) {
    // Reference mode: every non-excluded host, no pruning (tests check the pruned modes against it).
    const all: number[] = [];
    for (let h = 0; h < s.H; h++) if (excluded[h] === 0 && (includeEmpty || !isEmpty(s, h))) all.push(h);
    return new Candidates(s, all, excluded, false, 0);
  }
  return new Candidates(s, active, excluded, includeEmpty, k);
}

/**
 * The hosts one planning phase considers. Exact mode: every active host plus one representative empty host per type,
 * kept sorted by index (so ties resolve as in a full scan). Sampled mode: `k` random active hosts per placement plus
 * the representatives. When a placement wakes a representative, the next empty host of its type takes its place.
 */
export class Candidates {
  private readonly exact: number[] = [];
  private readonly reps: number[] = [];
  private readonly cursor: Int32Array;

  constructor(
    private readonly state: SimState,
    private readonly pool: number[],
    private readonly excluded: Uint8Array,
    private readonly includeEmpty: boolean,
    private readonly k: number,
  ) {
    this.cursor = new Int32Array(state.typeHosts.length);
    if (includeEmpty) for (let t = 0; t < state.typeHosts.length; t++) this.advance(t);
    if (k <= 0) {
      this.exact = [...pool, ...this.reps.filter((h) => h >= 0)].sort((a, b) => a - b);
    }
  }

  /** Moves type t's representative to its first empty, non-excluded host (or -1). */
  private advance(t: number): void {
    const hs = this.state.typeHosts[t]!;
    let i = this.cursor[t]!;
    while (i < hs.length && (this.excluded[hs[i]!] === 1 || !isEmpty(this.state, hs[i]!))) i++;
    this.cursor[t] = i;
    this.reps[t] = i < hs.length ? hs[i]! : -1;
  }

  list(): ArrayLike<number> {
    if (this.k <= 0) return this.exact;
    const out: number[] = [];
    for (const r of this.reps) if (r >= 0) out.push(r);
    if (this.pool.length <= this.k) out.push(...this.pool);
    else for (let i = 0; i < this.k; i++) out.push(this.pool[this.state.rng.int(this.pool.length)]!);
    return out; // order does not matter: findHost breaks ties by host index
  }

  /** Host h just received its first VM. */
  woke(h: number): void {
    const t = this.state.hostType[h]!;
    if (!this.includeEmpty || this.reps[t] !== h) return;
    this.advance(t);
    if (this.k > 0) {
      this.pool.push(h);
      return;
    }
    const next = this.reps[t]!;
    if (next >= 0) {
      let lo = 0;
      let hi = this.exact.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.exact[mid]! < next) lo = mid + 1;
        else hi = mid;
      }
      this.exact.splice(lo, 0, next);
    }
  }
}
