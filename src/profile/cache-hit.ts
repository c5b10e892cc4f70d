/**
 * The XBZRLE cache's hit rate on this guest's resent pages, measured on its real pages: round 1 puts every non-zero
 * page through the cache in address order, so each set keeps the last `ways` pages that map to it (LRU, sequential
 * inserts), with the engine's own set index. A resent page hits when it is among them. Weighted by how often each
 * page was dirty, as the pages a short round resends are. A contiguous run of pages spreads almost perfectly under
 * multiply-shift, far better than the Poisson estimate of `cacheRetention` (which assumes random placement).
 */
import { setIndex } from '../cache/set-index.js';

export interface CacheHit {
  sets: number;
  ways: number;
  hit: number;
}

/** Ways the profile measures: the engine accepts 1 to 16; these are the ones in use (default 2). */
export const PROFILED_WAYS = [1, 2, 4, 8] as const;

/**
 * Hit rate for every power-of-two number of sets from 1/64 to 4× the non-zero pages' worth of slots and each of
 * PROFILED_WAYS. `nonZero`: ascending page numbers sent in round 1; `weight(p)`: how often page p was dirty (0 for a
 * page never written, which is never resent).
 */
export function measureCacheHits(nonZero: Uint32Array, written: ReadonlyMap<number, number>): CacheHit[] {
  const out: CacheHit[] = [];
  if (nonZero.length === 0 || written.size === 0) return out;
  let total = 0;
  for (const w of written.values()) total += w;
  for (const ways of PROFILED_WAYS) {
    const lo = Math.max(0, Math.floor(Math.log2(nonZero.length / (64 * ways))));
    const hi = Math.min(30, Math.ceil(Math.log2((4 * nonZero.length) / ways)));
    for (let bits = lo; bits <= hi; bits++) {
      const sets = 2 ** bits;
      // The last `ways` pages inserted into each set survive round 1.
      const slots = new Int32Array(sets * ways).fill(-1);
      const next = new Uint32Array(sets);
      for (let i = 0; i < nonZero.length; i++) {
        const s = setIndex(nonZero[i]!, bits, 'multiply-shift');
        slots[s * ways + (next[s]! % ways)] = i;
        next[s]!++;
      }
      const kept = new Set<number>();
      for (const i of slots) if (i >= 0) kept.add(nonZero[i]!);
      let hits = 0;
      for (const [p, w] of written) if (kept.has(p)) hits += w;
      out.push({ sets, ways, hit: hits / total });
    }
  }
  return out;
}
