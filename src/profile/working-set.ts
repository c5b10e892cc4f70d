/**
 * The working-set curve W(t) from one run: the dirty log is synced at fine steps (ticks), and the distinct pages
 * dirtied in a window of k consecutive ticks is the union (OR) of their dirty sets. Every window of every length is
 * measured from the same run: for a page dirty at ticks t₁ < … < t_m, the windows [i, i+k) that contain one of them
 * are the union of the intervals [t_j − k + 1, t_j], so W(k) = Σ_pages |∪_j [t_j−k+1, t_j] ∩ [0, N−k]| / (N−k+1),
 * the mean over all N−k+1 window positions — O(events) per window length, no bitmap per window.
 */

/** The dirty pages of each tick, in tick order (each list ascending or not: order within a tick does not matter). */
export interface TickLog {
  /** Pages found dirty at each sync (the pages written since the previous sync). */
  readonly ticks: readonly Uint32Array[];
  /** Pages of RAM (page numbers are below it). */
  readonly pages: number;
}

/** Pages dirty in each tick, grouped by page: the ticks at which page p was dirty are ticks[start[p]..start[p+1]). */
export interface PageTicks {
  readonly start: Uint32Array;
  readonly ticks: Uint32Array;
}

export function byPage(log: TickLog): PageTicks {
  const start = new Uint32Array(log.pages + 1);
  for (const t of log.ticks) for (let i = 0; i < t.length; i++) start[t[i]! + 1]!++;
  for (let p = 0; p < log.pages; p++) start[p + 1]! += start[p]!;
  const fill = start.slice(0, log.pages);
  const ticks = new Uint32Array(start[log.pages]!);
  // Ticks are visited in order, so each page's list comes out ascending.
  log.ticks.forEach((t, k) => {
    for (let i = 0; i < t.length; i++) ticks[fill[t[i]!]!++] = k;
  });
  return { start, ticks };
}

/**
 * Mean distinct pages dirtied in a window of `k` consecutive ticks, for each k given (1 ≤ k ≤ number of ticks).
 */
export function distinctPagesPerWindow(pt: PageTicks, tickCount: number, ks: readonly number[]): number[] {
  const pages = pt.start.length - 1;
  return ks.map((k) => {
    if (!(Number.isInteger(k) && k >= 1 && k <= tickCount)) {
      throw new RangeError(`window of ${k} ticks: need an integer from 1 to ${tickCount}`);
    }
    const last = tickCount - k; // last window start
    let covered = 0;
    for (let p = 0; p < pages; p++) {
      const a = pt.start[p]!;
      const b = pt.start[p + 1]!;
      let reach = -1; // last window start counted for this page
      for (let j = a; j < b; j++) {
        const t = pt.ticks[j]!;
        const lo = Math.max(t - k + 1, reach + 1, 0);
        const hi = Math.min(t, last);
        if (hi >= lo) {
          covered += hi - lo + 1;
          reach = hi;
        }
      }
    }
    return covered / (last + 1);
  });
}

/** About `perDecade` window lengths per factor of 10, log-spaced from 1 tick to all ticks, distinct integers. */
export function logSpacedWindows(tickCount: number, perDecade = 6): number[] {
  const out = new Set<number>();
  const steps = Math.ceil(Math.log10(Math.max(1, tickCount)) * perDecade);
  for (let i = 0; i <= steps; i++) out.add(Math.min(tickCount, Math.round(10 ** (i / perDecade))));
  out.add(tickCount);
  return [...out].filter((k) => k >= 1).sort((a, b) => a - b);
}

/** How often each page was written: the fewest pages that take `share` of all the dirty ticks, per share. */
export function hotSet(pt: PageTicks, shares: readonly number[]): { share: number; pages: number }[] {
  const pages = pt.start.length - 1;
  const counts: number[] = [];
  for (let p = 0; p < pages; p++) {
    const n = pt.start[p + 1]! - pt.start[p]!;
    if (n > 0) counts.push(n);
  }
  counts.sort((a, b) => b - a);
  const total = counts.reduce((a, b) => a + b, 0);
  return shares.map((share) => {
    let acc = 0;
    let n = 0;
    while (n < counts.length && acc < share * total) acc += counts[n++]!;
    return { share, pages: n };
  });
}
