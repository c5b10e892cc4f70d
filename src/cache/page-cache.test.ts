import { GCProfiler } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { MigrationError, UsageError } from '../errors.js';
import { PageCache, setIndex } from './index.js';

const PS = 64;

/** A page's content for a given version: every byte differs between pages and between versions. */
function content(page: number, version = 0, size = PS): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (page * 31 + version * 17 + i) & 0xff;
  return out;
}

/** `count` distinct pages that share the set of `page`. */
function sameSet(cache: PageCache, page: number, count: number): number[] {
  const want = cache.setOf(page);
  const out: number[] = [];
  for (let p = page + 1; out.length < count; p++) if (cache.setOf(p) === want) out.push(p);
  return out;
}

describe('PageCache geometry', () => {
  it('rounds the budget down to a power of two of sets', () => {
    const c = new PageCache({ bytes: 1000 * PS, pageSize: PS }); // 500 sets of 2 ways -> 256 sets
    expect(c.sets).toBe(256);
    expect(c.ways).toBe(2);
    expect(c.capacityBytes).toBe(256 * 2 * PS);
    expect(new PageCache({ bytes: 1024 * PS, pageSize: PS }).sets).toBe(512);
    expect(new PageCache({ bytes: 1023 * PS, pageSize: PS, ways: 1 }).sets).toBe(512);
    expect(new PageCache({ bytes: 256 * 2 ** 20, pageSize: 4096 }).capacityBytes).toBe(256 * 2 ** 20);
    expect(new PageCache({ bytes: 300 * 2 ** 20, pageSize: 4096, ways: 4 }).capacityBytes).toBe(
      256 * 2 ** 20,
    );
  });

  it('keeps at least one set when the budget is smaller than a set', () => {
    const c = new PageCache({ bytes: 0, pageSize: PS, ways: 4 });
    expect(c.sets).toBe(1);
    expect(c.capacityBytes).toBe(4 * PS);
    expect(c.setOf(12345)).toBe(0);
    expect(setIndex(12345, 0, 'multiply-shift')).toBe(0);
  });

  it('rejects impossible options with a UsageError', () => {
    expect(() => new PageCache({ bytes: 4096, pageSize: 0 })).toThrow(UsageError);
    expect(() => new PageCache({ bytes: 4096, pageSize: 64, ways: 0 })).toThrow(UsageError);
    expect(() => new PageCache({ bytes: 4096, pageSize: 64, ways: 1.5 })).toThrow(UsageError);
    expect(() => new PageCache({ bytes: -1, pageSize: 64 })).toThrow(UsageError);
    expect(() => new PageCache({ bytes: Number.NaN, pageSize: 64 })).toThrow(UsageError);
  });

  it('computes the same set as setIndex() for both set functions', () => {
    for (const setHash of ['multiply-shift', 'low-bits'] as const) {
      const c = new PageCache({ bytes: 64 * PS, pageSize: PS, ways: 2, setHash });
      for (const p of [0, 1, 2, 31, 32, 1000, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 7, 2 ** 53 - 1]) {
        expect(c.setOf(p)).toBe(setIndex(p, 5, setHash));
      }
    }
    expect(setIndex(37, 5, 'low-bits')).toBe(5);
  });

  it('spreads a stride of 512 pages over many sets with multiply-shift, few with low bits', () => {
    const sets = (hash: 'multiply-shift' | 'low-bits') => {
      const seen = new Set<number>();
      for (let i = 0; i < 4096; i++) seen.add(setIndex(i * 512, 15, hash));
      return seen.size;
    };
    expect(sets('low-bits')).toBe(64);
    expect(sets('multiply-shift')).toBeGreaterThan(3000);
  });
});

describe('PageCache LRU within a set', () => {
  it('2 ways: A, B, touch A, insert C evicts B', () => {
    const c = new PageCache({ bytes: 2 * PS, pageSize: PS }); // one set
    const [A, B, C] = [10, 20, 30];
    c.insert(A, content(A));
    c.insert(B, content(B));
    expect(c.lookup(A)).toBeGreaterThanOrEqual(0);
    c.insert(C, content(C));
    expect(c.has(A)).toBe(true);
    expect(c.has(B)).toBe(false);
    expect(c.has(C)).toBe(true);
    expect(c.slotView(c.lookup(A))).toEqual(content(A));
    expect(c.slotView(c.lookup(C))).toEqual(content(C));
    expect(c.stats().evictions).toBe(1);
  });

  it('2 ways, no touch: the oldest insert is evicted; has() does not touch', () => {
    const c = new PageCache({ bytes: 2 * PS, pageSize: PS });
    c.insert(1, content(1));
    c.insert(2, content(2));
    expect(c.has(1)).toBe(true); // must not count as a use
    c.insert(3, content(3));
    expect(c.has(1)).toBe(false);
    expect(c.has(2)).toBe(true);
  });

  it('update() counts as a use, re-insert of a cached page overwrites in place', () => {
    const c = new PageCache({ bytes: 2 * PS, pageSize: PS });
    const a = c.insert(1, content(1));
    c.insert(2, content(2));
    c.update(a, content(1, 1));
    c.insert(3, content(3)); // evicts 2, the least recently used
    expect(c.has(2)).toBe(false);
    expect(c.slotView(c.lookup(1))).toEqual(content(1, 1));
    const again = c.insert(3, content(3, 5));
    expect(c.lookup(3)).toBe(again);
    expect(c.slotView(again)).toEqual(content(3, 5));
    expect(c.stats().entries).toBe(2);
    expect(c.stats().evictions).toBe(1);
  });

  it('direct-mapped: a conflicting page replaces the only way; other sets are untouched', () => {
    const c = new PageCache({ bytes: 16 * PS, pageSize: PS, ways: 1 });
    expect(c.sets).toBe(16);
    const [p, q] = [5, sameSet(c, 5, 1)[0]!];
    const other = [...Array(100).keys()].find((x) => c.setOf(x) !== c.setOf(5))!;
    c.insert(other, content(other));
    c.insert(p, content(p));
    c.lookup(p); // touching does not help with one way
    c.insert(q, content(q));
    expect(c.has(p)).toBe(false);
    expect(c.has(q)).toBe(true);
    expect(c.slotView(c.lookup(other))).toEqual(content(other));
  });

  it('4 ways: evicts in LRU order within the set', () => {
    const c = new PageCache({ bytes: 8 * 4 * PS, pageSize: PS, ways: 4 });
    expect(c.sets).toBe(8);
    const [a, b, d, e, f, g] = [7, ...sameSet(c, 7, 5)] as [number, number, number, number, number, number];
    for (const p of [a, b, d, e]) c.insert(p, content(p));
    c.lookup(a);
    c.lookup(d);
    // recency now, oldest first: b, e, a, d
    c.insert(f, content(f));
    expect(c.has(b)).toBe(false);
    c.insert(g, content(g));
    expect(c.has(e)).toBe(false);
    for (const p of [a, d, f, g]) expect(c.slotView(c.lookup(p))).toEqual(content(p));
  });

  it('empty ways fill before anything is evicted, including after invalidate()', () => {
    const c = new PageCache({ bytes: 4 * PS, pageSize: PS, ways: 4 });
    for (const p of [1, 2, 3, 4]) c.insert(p, content(p));
    c.invalidate(2);
    expect(c.has(2)).toBe(false);
    c.insert(5, content(5));
    for (const p of [1, 3, 4, 5]) expect(c.has(p)).toBe(true);
    expect(c.stats().evictions).toBe(0);
    expect(c.stats().entries).toBe(4);
  });
});

describe('PageCache admission (insert with admit = false)', () => {
  it('takes only an empty way, never evicts, and is the first to go when an admitted page needs the way', () => {
    const c = new PageCache({ bytes: 2 * PS, pageSize: PS }); // one set, 2 ways
    const [hot, cold, cold2, hot2] = [1, 2, 3, 4];
    c.insert(hot, content(hot));
    expect(c.insert(cold, content(cold), false)).toBeGreaterThanOrEqual(0); // a free way: kept
    expect(c.insert(cold2, content(cold2), false)).toBe(-1); // set full: not stored, nothing evicted
    expect(c.has(cold2)).toBe(false);
    expect(c.stats()).toMatchObject({ evictions: 0, inserts: 2 });
    // The cold entry was inserted last, yet it is the least recently used: the admitted page replaces it.
    c.insert(hot2, content(hot2));
    expect(c.has(cold)).toBe(false);
    expect(c.has(hot)).toBe(true);
    expect(c.has(hot2)).toBe(true);
  });

  it('a cold entry that hits becomes an ordinary recently used entry', () => {
    const c = new PageCache({ bytes: 2 * PS, pageSize: PS });
    c.insert(1, content(1));
    c.insert(2, content(2), false);
    expect(c.lookup(2)).toBeGreaterThanOrEqual(0); // resent after all: now the most recently used
    c.insert(3, content(3));
    expect(c.has(1)).toBe(false);
    expect(c.slotView(c.lookup(2))).toEqual(content(2));
  });

  it('a cold entry loses to admitted ones when a shrink merges sets', () => {
    const c = new PageCache({ bytes: 4 * PS, pageSize: PS }); // two sets
    const a = 0;
    const b = [...Array(64).keys()].find((p) => c.setOf(p) !== c.setOf(a))!;
    c.insert(a, content(a), false);
    c.insert(b, content(b));
    const other = sameSet(c, b, 1)[0]!;
    c.insert(other, content(other));
    c.resize(2 * PS); // one set, 2 ways, 3 entries: the cold one goes
    expect(c.has(a)).toBe(false);
    expect(c.has(b)).toBe(true);
    expect(c.has(other)).toBe(true);
  });
});

describe('PageCache pinning (hot-last: held pages keep their old copy)', () => {
  it('a pinned entry is never evicted, even as the least recently used; unpin makes it ordinary again', () => {
    const c = new PageCache({ bytes: 2 * PS, pageSize: PS }); // one set, 2 ways
    c.insert(1, content(1));
    c.insert(2, content(2));
    expect(c.pin(1)).toBe(true);
    expect(c.pin(1)).toBe(true); // already pinned
    expect(c.isPinned(1)).toBe(true);
    for (let p = 3; p < 10; p++) c.insert(p, content(p));
    expect(c.has(1)).toBe(true);
    expect(c.slotView(c.lookup(1))).toEqual(content(1));
    c.unpin(1);
    expect(c.isPinned(1)).toBe(false);
    c.lookup(9);
    c.insert(10, content(10));
    expect(c.has(1)).toBe(false);
    expect(c.stats().pinned).toBe(0);
  });

  it('is bounded: ways − 1 per set, half of all slots; an uncached page cannot be pinned', () => {
    const c = new PageCache({ bytes: 16 * PS, pageSize: PS, ways: 4 }); // 4 sets of 4 ways
    expect(c.maxPinnedPerSet).toBe(3);
    expect(c.maxPinned).toBe(8);
    expect(c.pin(1)).toBe(false);
    const set = [0, ...sameSet(c, 0, 3)];
    for (const p of set) c.insert(p, content(p));
    expect(set.map((p) => c.pin(p))).toEqual([true, true, true, false]);
    // A fully pinned set but for one way still takes new pages in that way.
    const more = sameSet(c, set[3]!, 2);
    for (const p of more) c.insert(p, content(p));
    expect(set.slice(0, 3).every((p) => c.has(p))).toBe(true);
    let pinned = 3;
    for (let p = 100; p < 400 && pinned < 20; p++) {
      c.insert(p, content(p));
      if (c.pin(p)) pinned++;
    }
    expect(pinned).toBe(8);
    expect(c.stats().pinned).toBe(8);
  });

  it('direct-mapped: a pinned set refuses other pages instead of evicting', () => {
    const c = new PageCache({ bytes: 4 * PS, pageSize: PS, ways: 1 });
    c.insert(0, content(0));
    expect(c.pin(0)).toBe(true);
    const other = sameSet(c, 0, 1)[0]!;
    expect(c.insert(other, content(other))).toBe(-1);
    expect(c.has(0)).toBe(true);
    expect(c.has(other)).toBe(false);
  });

  it('invalidate and clear drop pins; a re-insert of the pinned page keeps its pin', () => {
    const c = new PageCache({ bytes: 4 * PS, pageSize: PS });
    c.insert(1, content(1));
    c.pin(1);
    c.insert(1, content(1, 2));
    expect(c.isPinned(1)).toBe(true);
    c.invalidate(1);
    expect(c.isPinned(1)).toBe(false);
    expect(c.stats().pinned).toBe(0);
    c.insert(1, content(1));
    c.pin(1);
    c.clear();
    expect(c.stats().pinned).toBe(0);
    c.insert(1, content(1));
    expect(c.isPinned(1)).toBe(false);
  });

  it('a shrink keeps pinned entries before more recently used ones, and undoes pins beyond the new bounds', () => {
    const c = new PageCache({ bytes: 8 * PS, pageSize: PS }); // 4 sets of 2 ways
    const pages = [...Array(64).keys()].slice(0, 8);
    for (const p of pages) c.insert(p, content(p));
    const pinned = pages.filter((p) => c.pin(p));
    expect(pinned.length).toBeGreaterThan(1);
    for (const p of pages) if (!pinned.includes(p)) c.lookup(p); // unpinned ones most recently used
    c.resize(2 * PS); // one set of 2 ways: one pin allowed
    const st = c.stats();
    expect(st.pinned).toBe(1);
    // The pinned pages outranked the recently used ones: both survivors were pinned before the shrink.
    const kept = pages.filter((p) => c.has(p));
    expect(kept.length).toBe(2);
    expect(kept.every((p) => pinned.includes(p))).toBe(true);
    for (const p of kept) expect(c.slotView(c.lookup(p))).toEqual(content(p));
  });
});

describe('PageCache statistics', () => {
  it('counts hits, misses, inserts, evictions, bytes used', () => {
    const c = new PageCache({ bytes: 2 * PS, pageSize: PS });
    expect(c.lookup(1)).toBe(-1);
    c.insert(1, content(1));
    expect(c.lookup(1)).toBeGreaterThanOrEqual(0);
    c.insert(2, content(2));
    c.insert(3, content(3));
    c.has(9);
    expect(c.stats()).toEqual({
      hits: 1,
      misses: 1,
      evictions: 1,
      inserts: 3,
      resizeDrops: 0,
      pinned: 0,
      bytesUsed: 2 * PS,
      capacityBytes: 2 * PS,
      entries: 2,
      sets: 1,
      ways: 2,
    });
    const snapshot = c.stats();
    c.lookup(3);
    expect(snapshot.hits).toBe(1); // a snapshot, not a live object
    c.resetStats();
    expect(c.stats()).toMatchObject({ hits: 0, misses: 0, evictions: 0, inserts: 0, entries: 2 });
    c.clear();
    expect(c.stats()).toMatchObject({ entries: 0, bytesUsed: 0 });
    expect(c.lookup(3)).toBe(-1);
  });

  it('never hits an empty slot, whatever the key', () => {
    const c = new PageCache({ bytes: 4 * PS, pageSize: PS });
    for (const p of [0, -1, Number.NaN, 1.5, 2 ** 60]) expect(c.lookup(p)).toBe(-1);
    expect(c.stats().misses).toBe(5);
  });

  it('rejects misuse with MigrationError BAD_ARGUMENT', () => {
    const c = new PageCache({ bytes: 4 * PS, pageSize: PS });
    const bad = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(MigrationError);
        expect((e as MigrationError).code).toBe('BAD_ARGUMENT');
        return;
      }
      throw new Error('expected a throw');
    };
    bad(() => c.insert(-1, content(0)));
    bad(() => c.insert(1.5, content(0)));
    bad(() => c.insert(2 ** 53, content(0)));
    bad(() => c.insert(1, new Uint8Array(PS - 1)));
    bad(() => c.update(0, content(0))); // empty slot
    const s = c.insert(1, content(1));
    bad(() => c.update(s, new Uint8Array(PS + 1)));
    bad(() => c.update(4, content(0)));
    bad(() => c.slotView(-1));
    bad(() => c.slotView(4));
    bad(() => c.slotView(1.5));
    bad(() => c.pageOf(4));
    expect(c.pageOf(s)).toBe(1);
    // Views are made on first use, then the same object every time (until a resize).
    expect(c.slotView(s)).toBe(c.slotView(s));
    expect(c.slotView(s)).toEqual(content(1));
    expect(c.pageOf(s === 0 ? 1 : 0)).toBe(-1);
  });
});

describe('PageCache resize', () => {
  it('grows without losing or corrupting anything', () => {
    const c = new PageCache({ bytes: 32 * PS, pageSize: PS });
    const kept = [];
    for (let p = 0; p < 200; p++) {
      c.insert(p * 3, content(p * 3, 1));
      if (c.stats().entries === 32) break;
    }
    for (let p = 0; p < 600; p++) if (c.has(p)) kept.push(p);
    c.resize(64 * PS);
    expect(c.sets).toBe(32);
    for (const p of kept) expect(c.slotView(c.lookup(p))).toEqual(content(p, 1));
    expect(c.stats().entries).toBe(kept.length);
    expect(c.stats().resizeDrops).toBe(0);
  });

  it('shrinks keeping the most recently used of merged sets, contents byte-equal', () => {
    const c = new PageCache({ bytes: 64 * PS, pageSize: PS, ways: 2 });
    for (let p = 0; p < 1000; p++) c.insert(p, content(p, 2));
    const before = c.stats().entries;
    c.resize(8 * PS);
    expect(c.sets).toBe(4);
    expect(c.stats().entries).toBe(8);
    expect(c.stats().resizeDrops).toBe(before - 8);
    let hits = 0;
    for (let p = 0; p < 1000; p++) {
      const s = c.lookup(p);
      if (s < 0) continue;
      hits++;
      expect(c.slotView(s)).toEqual(content(p, 2));
    }
    expect(hits).toBe(8); // every survivor was checked
    // The survivors of each set are its two most recently inserted pages.
    for (let set = 0; set < 4; set++) {
      const last2 = [...Array(1000).keys()].filter((p) => c.setOf(p) === set).slice(-2);
      for (const p of last2) expect(c.has(p)).toBe(true);
    }
  });

  it('resize to the same geometry is a no-op that keeps slot views', () => {
    const c = new PageCache({ bytes: 8 * PS, pageSize: PS });
    const s = c.insert(1, content(1));
    const v = c.slotView(s);
    c.resize(9 * PS);
    expect(c.slotView(s)).toBe(v);
  });
});

describe('PageCache allocation', () => {
  it('slotView returns the same preallocated object every time', () => {
    const c = new PageCache({ bytes: 8 * PS, pageSize: PS });
    const s = c.insert(1, content(1));
    expect(c.slotView(s)).toBe(c.slotView(s));
    expect(c.slotView(s).byteLength).toBe(PS);
    expect(c.slotView(s).buffer).toBe(c.slotView(s === 0 ? 1 : 0).buffer);
  });

  it('lookup/insert/update do not allocate in steady state (no scavenge, tiny heap growth over 2e6 accesses)', () => {
    const c = new PageCache({ bytes: 1024 * 4096, pageSize: 4096, ways: 2 });
    const page = new Uint8Array(4096);
    let x = 12345;
    const run = (n: number) => {
      for (let i = 0; i < n; i++) {
        // A 30-bit LCG: its state stays a small integer, so the test loop itself allocates no heap numbers.
        x = (Math.imul(x, 1103515245) + 12345) & 0x3fffffff;
        const p = x >>> 18;
        const s = c.lookup(p);
        if (s >= 0) {
          c.slotView(s);
          c.update(s, page);
        } else {
          c.insert(p, page);
        }
      }
    };
    run(200_000); // warm up: optimise the hot paths
    const profiler = new GCProfiler();
    const before = process.memoryUsage().heapUsed;
    profiler.start();
    run(2_000_000);
    const after = process.memoryUsage().heapUsed;
    const gcs = profiler.stop().statistics;
    // 2e6 accesses allocating even 16 bytes each would be 32 MB: several scavenges (new space is at most 16 MB).
    expect(gcs.filter((g) => g.gcType === 'Scavenge').length).toBeLessThanOrEqual(1);
    expect(after - before).toBeLessThan(2 * 2 ** 20);
    expect(c.stats().hits + c.stats().misses).toBe(2_200_000);
  });
});

describe('PageCache storage', () => {
  it('takes its page storage from `allocate`, again on resize, and keeps contents across it', () => {
    const sizes: number[] = [];
    const cache = new PageCache({
      bytes: 16 * 4096,
      pageSize: 4096,
      ways: 2,
      allocate: (bytes) => {
        sizes.push(bytes);
        return new Uint8Array(bytes);
      },
    });
    const page = new Uint8Array(4096).fill(9);
    cache.insert(5, page);
    cache.resize(64 * 4096);
    expect(sizes).toEqual([16 * 4096, 64 * 4096]);
    const slot = cache.lookup(5);
    expect(slot).toBeGreaterThanOrEqual(0);
    expect(cache.slotView(slot).every((b) => b === 9)).toBe(true);
  });
});
