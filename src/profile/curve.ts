/**
 * Reading a profile: W(t) at any t (interpolated between the measured points, extrapolated past the run with the
 * slope of its last stretch), XBZRLE's delta ratio at any lag, and the XBZRLE cache's hit rate at a size and
 * associativity. Pure; the pre-copy model (src/migration/model.ts) calls these.
 */
import type { GuestProfile } from './schema.js';

type Curve = Pick<GuestProfile, 'workingSet' | 'ramPages'>;

/** Distinct pages dirtied in a window of `ms` milliseconds. */
export function workingSetAt(p: Curve, ms: number): number {
  const w = p.workingSet;
  if (!(ms > 0)) return 0;
  const first = w[0]!;
  if (ms <= first.ms) return (first.pages * ms) / first.ms; // W(0) = 0
  for (let i = 1; i < w.length; i++) {
    const b = w[i]!;
    if (ms <= b.ms) {
      const a = w[i - 1]!;
      return a.pages + ((b.pages - a.pages) * (ms - a.ms)) / (b.ms - a.ms);
    }
  }
  // Past the run: the last stretch's slope (a saturated curve stays flat), never past all of RAM.
  const last = w[w.length - 1]!;
  const prev = w.length > 1 ? w[w.length - 2]! : { ms: 0, pages: 0 };
  const slope = last.ms > prev.ms ? Math.max(0, (last.pages - prev.pages) / (last.ms - prev.ms)) : 0;
  return Math.min(p.ramPages, last.pages + slope * (ms - last.ms));
}

/** XBZRLE on a page resent `ms` after its cached copy was taken: the measured lag nearest in log scale. */
export function xbzrleAt(
  p: Pick<GuestProfile, 'xbzrle'>,
  ms: number,
): { unchanged: number; overflow: number; ratio: number } | undefined {
  let best: GuestProfile['xbzrle'][number] | undefined;
  let dist = Number.POSITIVE_INFINITY;
  for (const x of p.xbzrle) {
    const d = Math.abs(Math.log(x.lagMs) - Math.log(Math.max(1, ms)));
    if (d < dist) {
      dist = d;
      best = x;
    }
  }
  return best;
}

/**
 * Fraction of `pages` distinct pages, inserted into a set-associative cache of `sets` × `ways` slots with a hash
 * that spreads them like random (multiply-shift, src/cache/set-index.ts), that are still cached: each set keeps at
 * most `ways` of the pages that map to it, and the pages per set are Poisson with mean pages/sets. So the hit rate
 * of a page resent later is E[min(ways, X)] · sets / pages, X ~ Poisson(pages/sets).
 */
export function cacheRetention(pages: number, sets: number, ways: number): number {
  if (pages <= 0) return 1;
  if (sets <= 0) return 0;
  const mean = pages / sets;
  // E[min(w, X)] = Σ_{j<w} P(X > j)
  let pj = Math.exp(-mean); // P(X = 0)
  let cdf = pj;
  let e = 0;
  for (let j = 0; j < ways; j++) {
    e += 1 - cdf;
    pj = (pj * mean) / (j + 1);
    cdf += pj;
  }
  return Math.min(1, (e * sets) / pages);
}

/**
 * The profile's measured hit rate of a cache of `sets` × `ways` on its resent pages (`cacheHit`, cache-hit.ts), or
 * undefined when it did not measure that geometry (then `cacheRetention` estimates it). Past the largest measured
 * size the largest one's rate holds (a bigger cache keeps at least as much).
 */
export function measuredCacheHit(
  p: Pick<GuestProfile, 'cacheHit'>,
  sets: number,
  ways: number,
): number | undefined {
  const same = (p.cacheHit ?? []).filter((c) => c.ways === ways);
  const exact = same.find((c) => c.sets === sets);
  if (exact) return exact.hit;
  const largest = same.reduce<(typeof same)[number] | undefined>(
    (a, c) => (!a || c.sets > a.sets ? c : a),
    undefined,
  );
  return largest && sets > largest.sets ? largest.hit : undefined;
}

/**
 * Of the pages a round of `ms` leaves dirty, the share whose writes all came before the round sent them (their cached
 * copy already holds them): resent right after the round, XBZRLE finds them unchanged and skips them. A round sends
 * page p at a fraction u of its length; p is resent with changes iff written in the rest of the round (1 − u)·ms, so
 * the changed ones number W((1 − u)·ms) (the distinct pages of that stretch), and averaged over u:
 * unchanged = 1 − mean_u W(u·ms) / W(ms) — ½ for a writer that never writes a page twice in a round, 0 for a hot set
 * rewritten all the time. (The next round resends a little later than the end of this one, which only adds writes:
 * this is the upper bound, reached at the stop-and-copy.)
 */
export function unchangedSinceSent(p: Curve, ms: number): number {
  const all = workingSetAt(p, ms);
  if (!(all > 0)) return 0;
  const K = 16;
  let sum = 0;
  for (let k = 0; k < K; k++) sum += workingSetAt(p, (ms * (k + 0.5)) / K);
  return Math.min(1, Math.max(0, 1 - sum / K / all));
}
