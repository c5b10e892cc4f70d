/**
 * Page order within a round, and hot-last (--page-order hot-last): least-written pages first, and pages dirty at
 * `hotStreak` syncs in a row held back until the stop-and-copy, where they go once instead of every round.
 *
 * With XBZRLE a page is deferred (held, or skipped as re-dirtied) only once its old copy is in the cache, which is
 * also what the destination holds: so a hot page is sent once early (round 1 sends every page), its resends wait,
 * and the stop-and-copy sends it as a small delta against that copy. A held page's copy is pinned in the cache
 * (bounded: PageCache.pin) so that no other page evicts it before then; a page the cache cannot pin is not held
 * (it goes as a delta each round, which keeps its copy recently used). Without XBZRLE every later send of a page is
 * the whole page anyway, so deferring costs nothing in traffic: pages are deferred from round 1 on.
 *
 * A held page that was not written for a whole round has cooled: it is released into the next round (sent while
 * the guest runs) rather than kept for the stop-and-copy, where it would lengthen the downtime for nothing.
 */
import type { PageCache } from '../../cache/index.js';
import type { DirtyLog } from '../../guest/index.js';
import type { MigrationOptions } from '../options.js';

/** What the scheduler reads of the cache: which pages are cached, and pinning for held pages. */
export type HeldPageCache = Pick<PageCache, 'has' | 'pin' | 'unpin' | 'isPinned'>;

/** A sync's verdict: the pages to send in the next round, the pages held for the stop-and-copy, how many are hot. */
export interface AfterSync {
  /** Pages for the next round, ascending: the sync's dirty pages not held, and held pages that cooled. */
  send: Uint32Array;
  /** Every page held for the stop-and-copy now, ascending (owed: they count in the remaining work). */
  held: Uint32Array;
  /** Pages dirty at two syncs in a row or more (cache sizing reads it). */
  hot: number;
  /** Held pages released in this sync because they were not written for a round. */
  released: number;
}

export class HotLast {
  /** Consecutive syncs at which each page was dirty, and the round of its last dirty sync. */
  private readonly streak: Uint8Array;
  private readonly lastDirtyRound: Uint32Array;
  /** 1 while a page is held for the stop-and-copy. */
  private readonly isHeld: Uint8Array;
  private held: Uint32Array = new Uint32Array(0);
  readonly enabled: boolean;

  constructor(
    pageCount: number,
    private readonly dirtyLog: Pick<DirtyLog, 'writeCounts'>,
    private readonly o: Pick<MigrationOptions, 'pageOrder' | 'hotStreak'>,
    /** The XBZRLE cache, once allocated; undefined without XBZRLE. */
    private readonly cache: () => HeldPageCache | undefined = () => undefined,
  ) {
    this.streak = new Uint8Array(pageCount);
    this.lastDirtyRound = new Uint32Array(pageCount);
    this.isHeld = new Uint8Array(pageCount);
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
   * Whether dirty page `p` may wait for a later send. Without XBZRLE, always (a later send is the same whole page).
   * With XBZRLE only when its old copy is cached: the first send caches it on both sides and every later one is a
   * delta, so the first send is never deferred.
   */
  mayDefer(p: number): boolean {
    const cache = this.cache();
    return cache === undefined || cache.has(p);
  }

  /**
   * Stops holding every held page (just before the pause: final-pass.ts sends them). Their copies stay pinned: one
   * written again during that pass goes in the stop-and-copy, as a delta against it.
   */
  releaseAll(): Uint32Array {
    const held = this.held;
    for (const p of held) this.isHeld[p] = 0;
    this.held = new Uint32Array(0);
    return held;
  }

  /**
   * After a sync (`dirty`: the pages it returned, ascending): updates each page's dirty streak and, with hot-last,
   * holds the pages dirty at `hotStreak` syncs in a row that may wait (pinning their cached copy with XBZRLE), and
   * releases the held pages this sync did not list.
   */
  afterSync(round: number, dirty: Uint32Array): AfterSync {
    let hot = 0;
    const send: number[] = [];
    const newlyHeld: number[] = [];
    const cache = this.enabled ? this.cache() : undefined;
    for (const p of dirty) {
      const s = this.lastDirtyRound[p] === round - 1 && round > 1 ? Math.min(255, this.streak[p]! + 1) : 1;
      this.streak[p] = s;
      this.lastDirtyRound[p] = round;
      if (s >= 2) hot++;
      if (!this.enabled) continue;
      if (this.isHeld[p] === 1) continue; // still hot: stays held (checked with the held list below)
      // With XBZRLE a page is held only with its copy pinned; otherwise it goes as a delta in each round.
      if (s >= this.o.hotStreak && this.mayDefer(p) && (cache === undefined || cache.pin(p))) {
        this.isHeld[p] = 1;
        newlyHeld.push(p);
      } else {
        send.push(p);
      }
    }
    if (!this.enabled) return { send: dirty, held: this.held, hot, released: 0 };
    // Held pages not written since the previous sync have cooled; with XBZRLE, a held page whose pin a cache
    // resize undid is released too (its next send re-caches it if it was dropped).
    const kept: number[] = [];
    const released: number[] = [];
    for (const p of this.held) {
      const cooled = this.lastDirtyRound[p] !== round;
      if (cooled || (cache !== undefined && !cache.isPinned(p))) {
        this.isHeld[p] = 0;
        cache?.unpin(p);
        released.push(p);
      } else {
        kept.push(p);
      }
    }
    this.held = mergeSorted(Uint32Array.from(kept), Uint32Array.from(newlyHeld));
    return {
      send: mergeSorted(Uint32Array.from(send), Uint32Array.from(released)),
      held: this.held,
      hot,
      released: released.length,
    };
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
