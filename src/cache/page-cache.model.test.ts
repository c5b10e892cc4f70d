/**
 * Model test: random sequences of cache operations, including resizes, against a plain Map-based N-way LRU cache
 * that uses the same set function. Every observable result (hit or miss, the bytes of a hit, statistics) must agree.
 * Inserts include cache admission's cold inserts (insert(page, data, false)).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PageCache, type SetHash, setIndex } from './index.js';

const PS = 8;

function content(page: number, version: number): Uint8Array {
  const out = new Uint8Array(PS);
  for (let i = 0; i < PS; i++) out[i] = (page * 13 + version * 7 + i * 29) & 0xff;
  out[0] = page & 0xff;
  out[1] = version & 0xff;
  return out;
}

/** The reference: every entry in one Map, sets and LRU computed by brute force. */
class ModelCache {
  readonly entries = new Map<number, { data: Uint8Array; stamp: number }>();
  clock = 0;
  coldClock = 0;
  hits = 0;
  misses = 0;
  evictions = 0;
  inserts = 0;
  resizeDrops = 0;
  constructor(
    readonly ways: number,
    public setBits: number,
    readonly hash: SetHash,
  ) {}
  private set(page: number): number {
    return setIndex(page, this.setBits, this.hash);
  }
  lookup(page: number): Uint8Array | undefined {
    const e = this.entries.get(page);
    if (e) {
      e.stamp = ++this.clock;
      this.hits++;
    } else this.misses++;
    return e?.data;
  }
  update(page: number, data: Uint8Array): void {
    this.entries.set(page, { data, stamp: ++this.clock });
  }
  /** admit = false: only a free way, never an eviction, stamped below every admitted entry. False if not stored. */
  insert(page: number, data: Uint8Array, admit = true): boolean {
    if (!this.entries.has(page)) {
      const same = [...this.entries].filter(([p]) => this.set(p) === this.set(page));
      if (same.length >= this.ways) {
        if (!admit) return false;
        const lru = same.reduce((a, b) => (b[1].stamp < a[1].stamp ? b : a));
        this.entries.delete(lru[0]);
        this.evictions++;
      }
    }
    this.inserts++;
    this.entries.set(page, { data, stamp: admit ? ++this.clock : ++this.coldClock - 2 ** 52 });
    return true;
  }
  resize(setBits: number): void {
    this.setBits = setBits;
    const bySet = new Map<number, [number, { data: Uint8Array; stamp: number }][]>();
    for (const e of this.entries) {
      const s = this.set(e[0]);
      bySet.set(s, [...(bySet.get(s) ?? []), e]);
    }
    for (const members of bySet.values()) {
      members.sort((a, b) => b[1].stamp - a[1].stamp);
      for (const [p] of members.slice(this.ways)) {
        this.entries.delete(p);
        this.resizeDrops++;
      }
    }
  }
}

type Op =
  | { t: 'lookup'; page: number }
  | { t: 'resend'; page: number; version: number } // the engine's pattern: lookup, then update or insert
  | { t: 'insert'; page: number; version: number }
  | { t: 'insertCold'; page: number; version: number } // cache admission: a page not expected back
  | { t: 'has'; page: number }
  | { t: 'invalidate'; page: number }
  | { t: 'resize'; setBits: number; extra: number }
  | { t: 'clear' };

const page = fc.oneof(
  { weight: 9, arbitrary: fc.integer({ min: 0, max: 48 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }) },
);
const version = fc.integer({ min: 0, max: 255 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('lookup' as const), page }) },
  { weight: 6, arbitrary: fc.record({ t: fc.constant('resend' as const), page, version }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('insert' as const), page, version }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('insertCold' as const), page, version }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('has' as const), page }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('invalidate' as const), page }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('resize' as const),
      setBits: fc.integer({ min: 0, max: 4 }),
      extra: fc.integer({ min: 0, max: 1000 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ t: 'clear' as const }) },
);

describe('PageCache against a Map-based N-way LRU model', () => {
  it('agrees on every hit, miss, content and statistic, through resizes', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1, 2, 3, 4, 8),
        fc.constantFrom<SetHash>('multiply-shift', 'low-bits'),
        fc.integer({ min: 0, max: 4 }),
        fc.array(op, { minLength: 1, maxLength: 300 }),
        (ways, hash, setBits, ops) => {
          const setBytes = ways * PS;
          const cache = new PageCache({ bytes: 2 ** setBits * setBytes, pageSize: PS, ways, setHash: hash });
          const model = new ModelCache(ways, setBits, hash);
          for (const o of ops) {
            switch (o.t) {
              case 'lookup': {
                const s = cache.lookup(o.page);
                const want = model.lookup(o.page);
                expect(s >= 0).toBe(want !== undefined);
                if (want) expect(cache.slotView(s)).toEqual(want);
                if (want) expect(cache.pageOf(s)).toBe(o.page);
                break;
              }
              case 'resend': {
                const s = cache.lookup(o.page);
                const want = model.lookup(o.page);
                expect(s >= 0).toBe(want !== undefined);
                const data = content(o.page, o.version);
                if (s >= 0) {
                  expect(cache.slotView(s)).toEqual(want);
                  cache.update(s, data);
                  model.update(o.page, data);
                } else {
                  cache.insert(o.page, data);
                  model.insert(o.page, data);
                }
                break;
              }
              case 'insert': {
                const data = content(o.page, o.version);
                const s = cache.insert(o.page, data);
                model.insert(o.page, data);
                expect(cache.pageOf(s)).toBe(o.page);
                break;
              }
              case 'insertCold': {
                const data = content(o.page, o.version);
                const s = cache.insert(o.page, data, false);
                expect(s >= 0).toBe(model.insert(o.page, data, false));
                if (s >= 0) expect(cache.pageOf(s)).toBe(o.page);
                break;
              }
              case 'has':
                expect(cache.has(o.page)).toBe(model.entries.has(o.page));
                break;
              case 'invalidate':
                cache.invalidate(o.page);
                model.entries.delete(o.page);
                break;
              case 'resize':
                // Any budget that rounds down to 2^setBits sets.
                cache.resize(2 ** o.setBits * setBytes + (o.extra % (2 ** o.setBits * setBytes)));
                model.resize(o.setBits);
                expect(cache.sets).toBe(2 ** o.setBits);
                break;
              case 'clear':
                cache.clear();
                model.entries.clear();
                break;
            }
            expect(cache.stats()).toEqual({
              hits: model.hits,
              misses: model.misses,
              evictions: model.evictions,
              inserts: model.inserts,
              resizeDrops: model.resizeDrops,
              pinned: 0,
              bytesUsed: model.entries.size * PS,
              capacityBytes: 2 ** model.setBits * setBytes,
              entries: model.entries.size,
              sets: 2 ** model.setBits,
              ways,
            });
          }
          // Finally every cached page holds exactly the model's bytes, and nothing else is cached.
          for (const [p, e] of model.entries) {
            expect(cache.has(p)).toBe(true);
            expect(cache.slotView(cache.lookup(p))).toEqual(e.data);
          }
          for (let p = 0; p <= 48; p++) expect(cache.has(p)).toBe(model.entries.has(p));
        },
      ),
      { numRuns: 300 },
    );
  });
});
