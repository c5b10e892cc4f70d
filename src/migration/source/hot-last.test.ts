/**
 * The hot-last scheduler (hot-last.ts): which pages are held, that a hot page is sent once early with XBZRLE, that
 * held pages are pinned in the cache and released when they cool, and (property) that a pre-copy driven by it leaves
 * the destination equal to the source with every held page a cache hit at the stop-and-copy.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PageCache } from '../../cache/index.js';
import { keepPinned } from './cache-sizing.js';
import { HotLast, mergeSorted } from './hot-last.js';

const PS = 8;
const on = { pageOrder: 'hot-last', hotStreak: 2 } as const;

function counts(n: number): { writeCounts(): Uint32Array } {
  const c = new Uint32Array(n);
  return { writeCounts: () => c };
}

function page(p: number, version: number): Uint8Array {
  const out = new Uint8Array(PS);
  out[0] = p & 0xff;
  out[1] = version & 0xff;
  out[2] = (version >> 8) & 0xff;
  return out;
}

const list = (...p: number[]) => Uint32Array.from(p);

describe('HotLast without XBZRLE', () => {
  it('holds a page dirty at two syncs in a row, keeps it while it stays hot, releases it when it cools', () => {
    const h = new HotLast(16, counts(16), on);
    let r = h.afterSync(1, list(1, 2, 3));
    expect([...r.send]).toEqual([1, 2, 3]);
    expect([...r.held]).toEqual([]);
    r = h.afterSync(2, list(2, 3, 5));
    expect([...r.send]).toEqual([5]);
    expect([...r.held]).toEqual([2, 3]);
    expect(r.hot).toBe(2);
    // 2 written again: stays held; 3 not written for a round: released into the next round (still owed).
    r = h.afterSync(3, list(2, 7));
    expect([...r.held]).toEqual([2]);
    expect([...r.send]).toEqual([3, 7]);
    expect(r.released).toBe(1);
    // 2 cooled in its turn; 3's streak, broken by one clean sync, starts again at 1.
    r = h.afterSync(4, list(3));
    expect([...r.send]).toEqual([2, 3]);
    expect([...r.held]).toEqual([]);
  });

  it('defers every re-dirtied page (a later send is the same whole page)', () => {
    const h = new HotLast(8, counts(8), on);
    expect(h.mayDefer(0)).toBe(true);
    expect(h.mayDefer(7)).toBe(true);
  });

  it('address order holds nothing and sends every dirty page', () => {
    const h = new HotLast(8, counts(8), { pageOrder: 'address', hotStreak: 2 });
    h.afterSync(1, list(1, 2));
    const r = h.afterSync(2, list(1, 2));
    expect([...r.send]).toEqual([1, 2]);
    expect(r.held.length).toBe(0);
    expect(r.hot).toBe(2);
  });

  it('orders never-written pages first in address order, then by write count', () => {
    const c = counts(6);
    c.writeCounts().set([0, 5, 0, 1, 9, 1]);
    const h = new HotLast(6, c, on);
    expect([...h.order(list(0, 1, 2, 3, 4, 5))]).toEqual([0, 2, 3, 5, 1, 4]);
  });
});

describe('HotLast with XBZRLE', () => {
  it('never defers a page whose old copy is not cached: its first send is what the stop-and-copy deltas against', () => {
    const cache = new PageCache({ bytes: 64 * PS, pageSize: PS });
    const h = new HotLast(64, counts(64), on, () => cache);
    expect(h.mayDefer(4)).toBe(false);
    // Hot at two syncs in a row but never sent: goes in the next round, not held.
    h.afterSync(1, list(4));
    let r = h.afterSync(2, list(4));
    expect([...r.send]).toEqual([4]);
    expect(r.held.length).toBe(0);
    // Sent (cached): from now on it may wait, and when hot it is held with its copy pinned.
    cache.insert(4, page(4, 1));
    expect(h.mayDefer(4)).toBe(true);
    r = h.afterSync(3, list(4));
    expect([...r.held]).toEqual([4]);
    expect(r.send.length).toBe(0);
    expect(cache.isPinned(4)).toBe(true);
    // Cooled: released and unpinned.
    r = h.afterSync(4, list());
    expect([...r.send]).toEqual([4]);
    expect(cache.isPinned(4)).toBe(false);
  });

  it('does not hold a hot page the cache cannot pin (bound reached): it goes as a delta each round', () => {
    // One set of 2 ways: at most one pinned entry.
    const cache = new PageCache({ bytes: 2 * PS, pageSize: PS });
    const h = new HotLast(8, counts(8), on, () => cache);
    cache.insert(1, page(1, 1));
    cache.insert(2, page(2, 1));
    h.afterSync(1, list(1, 2));
    const r = h.afterSync(2, list(1, 2));
    expect([...r.held]).toEqual([1]);
    expect([...r.send]).toEqual([2]);
  });

  it('releases a held page whose pin a cache resize undid', () => {
    const cache = new PageCache({ bytes: 8 * PS, pageSize: PS, ways: 2 });
    const h = new HotLast(64, counts(64), on, () => cache);
    for (let p = 0; p < 8; p++) cache.insert(p, page(p, 1));
    const all = list(0, 1, 2, 3, 4, 5, 6, 7);
    h.afterSync(1, all);
    const held = h.afterSync(2, all).held;
    expect(held.length).toBeGreaterThan(0);
    cache.resize(2 * PS); // one set left: at most one pin survives
    const r = h.afterSync(3, all);
    expect(r.held.length).toBe(1);
    expect(cache.stats().pinned).toBe(1);
    expect(r.send.length + r.held.length).toBe(8);
  });
});

describe('dynamic cache sizing keeps the held pages pinned', () => {
  it('never shrinks below twice the pinned copies (a power of two, within the budget)', () => {
    expect(keepPinned(1 << 20, 0, 4096, 1 << 30)).toBe(1 << 20);
    expect(keepPinned(1 << 20, 1000, 4096, 1 << 30)).toBe(8 << 20); // 2 × 1000 pages → 8 MiB
    expect(keepPinned(16 << 20, 1000, 4096, 1 << 30)).toBe(16 << 20);
    expect(keepPinned(1 << 20, 1000, 4096, 4 << 20)).toBe(4 << 20);
    // The floor keeps every pin: a cache of that size allows as many as half its slots.
    const bytes = keepPinned(64 * PS, 100, PS, 1 << 30);
    expect(new PageCache({ bytes, pageSize: PS }).maxPinned).toBeGreaterThanOrEqual(100);
  });
});

/**
 * A pre-copy driven by HotLast, as precopy.ts and page-encoder.ts drive it: pages are versions; a write bumps a
 * version, marks the page dirty and counts it; a send copies the version to the destination through an XBZRLE
 * cache (hit = delta) or whole. Writes interleave with sends at random points.
 */
function simulate(
  pageCount: number,
  writes: number[][],
  xbzrle: boolean,
  cacheSlots: number,
  tail: number[] = [],
): { ok: boolean; heldMissesAtStop: number; deferredUncached: number; sentWhileHeld: number; held: number } {
  const ram = new Uint32Array(pageCount);
  const dest = new Int32Array(pageCount).fill(-1);
  const dirty = new Set<number>();
  const c = counts(pageCount);
  const cache = xbzrle ? new PageCache({ bytes: cacheSlots * PS, pageSize: PS }) : undefined;
  const h = new HotLast(pageCount, c, on, () => cache);
  let heldMissesAtStop = 0;
  let deferredUncached = 0;
  let sentWhileHeld = 0;
  let maxHeld = 0;
  const write = (p: number) => {
    ram[p] = ram[p]! + 1;
    dirty.add(p);
    c.writeCounts()[p] = c.writeCounts()[p]! + 1;
  };
  const sync = () => {
    const out = Uint32Array.from([...dirty].sort((a, b) => a - b));
    dirty.clear();
    return out;
  };
  const send = (p: number) => {
    if (cache) {
      const slot = cache.lookup(p);
      if (slot >= 0) cache.update(slot, page(p, ram[p]!));
      else cache.insert(p, page(p, ram[p]!));
    }
    dest[p] = ram[p]!;
  };
  let pages: Uint32Array = Uint32Array.from({ length: pageCount }, (_, i) => i);
  let held: Uint32Array = new Uint32Array(0);
  for (let round = 1; round <= writes.length; round++) {
    const ws = writes[round - 1]!;
    const ordered = h.order(pages);
    const heldNow = new Set(held);
    for (let i = 0; i < ordered.length; i++) {
      // This round's writes spread over its sends.
      for (
        let k = Math.floor((i * ws.length) / ordered.length);
        k < Math.floor(((i + 1) * ws.length) / ordered.length);
        k++
      )
        write(ws[k]!);
      const p = ordered[i]!;
      if (heldNow.has(p)) sentWhileHeld++;
      if (dirty.has(p) && h.mayDefer(p)) {
        if (cache && !cache.has(p)) deferredUncached++;
        continue; // re-dirtied: the next sync lists it
      }
      send(p);
    }
    if (ordered.length === 0) for (const p of ws) write(p);
    const next = h.afterSync(round, sync());
    held = next.held;
    maxHeld = Math.max(maxHeld, held.length);
    pages = next.send;
  }
  // Switch-over. With XBZRLE the pages still owed (the last round's and the held ones) go in a last pass before the
  // pause (final-pass.ts), skipping those written again first, while the guest still writes (`tail`); the
  // stop-and-copy then has what is left (nothing after the pass) and the last sync.
  const heldAtDecision = held;
  if (cache) {
    held = h.releaseAll();
    const owed = mergeSorted(pages, held);
    // Only pages with a cached copy go in the pass; the others wait for the stop-and-copy.
    const ordered = h.order(owed.filter((p) => cache.has(p)));
    const without = owed.filter((p) => !cache.has(p));
    for (let i = 0; i < ordered.length; i++) {
      if (i < tail.length) write(tail[i]!);
      const p = ordered[i]!;
      if (dirty.has(p) && h.mayDefer(p)) continue;
      send(p);
    }
    held = new Uint32Array(0);
    pages = without;
  }
  for (const p of tail) write(p);
  const last = mergeSorted(mergeSorted(pages, held), sync());
  // Every page held at the decision that the stop-and-copy sends finds its old copy: a delta.
  for (const p of last) {
    if (cache && heldAtDecision.includes(p) && !cache.has(p)) heldMissesAtStop++;
    send(p);
  }
  let ok = true;
  for (let p = 0; p < pageCount; p++) if (dest[p] !== ram[p]) ok = false;
  return { ok, heldMissesAtStop, deferredUncached, sentWhileHeld, held: maxHeld };
}

describe('HotLast pre-copy (property)', () => {
  const arb = fc.integer({ min: 4, max: 48 }).chain((n) =>
    fc.tuple(
      fc.constant(n),
      fc.array(fc.array(fc.integer({ min: 0, max: n - 1 }), { maxLength: 3 * n }), {
        minLength: 1,
        maxLength: 8,
      }),
      fc.boolean(),
      fc.constantFrom(2, 4, 16, 64),
      fc.array(fc.integer({ min: 0, max: n - 1 }), { maxLength: n }),
    ),
  );

  it('the destination ends equal to the source; held pages are never sent live and (XBZRLE) are cache hits at the stop-and-copy', () => {
    fc.assert(
      fc.property(arb, ([n, writes, xbzrle, slots, tail]) => {
        const r = simulate(n, writes, xbzrle, slots, tail);
        expect(r.ok).toBe(true);
        expect(r.sentWhileHeld).toBe(0);
        expect(r.deferredUncached).toBe(0);
        expect(r.heldMissesAtStop).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('holds hot pages on a skewed writer (the scheduler is not vacuous)', () => {
    // Pages 0–3 written in every round: hot from round 2 on.
    const writes = Array.from({ length: 5 }, () => [0, 1, 2, 3, 0, 1, 2, 3]);
    expect(simulate(32, writes, false, 0).held).toBeGreaterThan(0);
    expect(simulate(32, writes, true, 64).held).toBeGreaterThan(0);
  });
});
