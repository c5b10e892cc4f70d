/**
 * Page order within a round, and hot-last (--page-order hot-last): least-written pages first, and pages dirty at
 * `hotStreak` syncs in a row held back until stop-and-copy, where they go once instead of every round.
 */
import type { DirtyLog } from '../../guest/index.js';
import type { MigrationOptions } from '../options.js';

export class HotLast {
  /** Consecutive syncs at which each page was dirty, and the round of its last dirty sync. */
  private readonly streak: Uint8Array;
  private readonly lastDirtyRound: Uint32Array;
  private readonly enabled: boolean;

  constructor(
    pageCount: number,
    private readonly dirtyLog: DirtyLog,
    private readonly o: MigrationOptions,
  ) {
    this.streak = new Uint8Array(pageCount);
    this.lastDirtyRound = new Uint32Array(pageCount);
    this.enabled = o.pageOrder === 'hot-last';
  }

  /** Orders a round's pages: address order, or (hot-last) least-written first so hot pages go as late as possible. */
  order(pages: Uint32Array): Uint32Array {
    if (!this.enabled) return pages;
    const counts = this.dirtyLog.writeCounts();
    // Never-written pages keep address order and go first; the rest are sorted by write count.
    const cold: number[] = [];
    const warm: number[] = [];
    for (const p of pages) (counts[p] === 0 ? cold : warm).push(p);
    warm.sort((a, b) => counts[a]! - counts[b]! || a - b);
    const out = new Uint32Array(pages.length);
    out.set(cold);
    out.set(warm, cold.length);
    return out;
  }

  /**
   * After a sync: updates each page's dirty streak and, with hot-last, holds back the pages dirty at `hotStreak`
   * syncs in a row (they go in the stop-and-copy). Returns the pages to send next and those held back.
   */
  afterSync(round: number, dirty: Uint32Array): { send: Uint32Array; held: Uint32Array; hot: number } {
    let hot = 0;
    const hotLast = this.enabled;
    const send: number[] = [];
    const held: number[] = [];
    for (const p of dirty) {
      const s = this.lastDirtyRound[p] === round - 1 && round > 1 ? Math.min(255, this.streak[p]! + 1) : 1;
      this.streak[p] = s;
      this.lastDirtyRound[p] = round;
      if (s >= 2) hot++;
      if (hotLast && s >= this.o.hotStreak) held.push(p);
      else send.push(p);
    }
    return { send: hotLast ? Uint32Array.from(send) : dirty, held: Uint32Array.from(held), hot };
  }
}

/** Union of two ascending page lists, ascending, without duplicates. */
export function mergeSorted(a: Uint32Array, b: Uint32Array): Uint32Array {
  const out = new Uint32Array(a.length + b.length);
  let i = 0;
  let j = 0;
  let n = 0;
  while (i < a.length || j < b.length) {
    const x = i < a.length ? a[i]! : Number.POSITIVE_INFINITY;
    const y = j < b.length ? b[j]! : Number.POSITIVE_INFINITY;
    const v = Math.min(x, y);
    if (x === v) i++;
    if (y === v) j++;
    if (n === 0 || out[n - 1] !== v) out[n++] = v;
  }
  return out.subarray(0, n);
}
