import { describe, expect, it } from 'vitest';
import { PageCache } from '../cache/index.js';
import { measureCacheHits } from './cache-hit.js';
import { cacheRetention, measuredCacheHit } from './curve.js';

const range = (from: number, n: number) => Uint32Array.from({ length: n }, (_, i) => from + i);

describe('measureCacheHits', () => {
  it('a contiguous run of pages fills a cache of as many slots almost fully (multiply-shift spreads it)', () => {
    const nonZero = range(0, 8192);
    const written = new Map<number, number>();
    for (let p = 0; p < 8192; p += 3) written.set(p, 1);
    const hits = measureCacheHits(nonZero, written);
    const h = hits.find((c) => c.ways === 2 && c.sets === 4096)!.hit;
    // Random placement would keep ~81 % (Poisson, mean 2 per set of 2 ways).
    expect(cacheRetention(8192, 4096, 2)).toBeLessThan(0.85);
    expect(h).toBeGreaterThan(0.88);
    // Twice the slots: every page stays.
    expect(hits.find((c) => c.ways === 2 && c.sets === 8192)!.hit).toBeGreaterThan(0.99);
  });

  it('agrees with the engine’s cache: the pages PageCache still holds after inserting round 1 in address order', () => {
    const P = 64;
    // Scattered non-zero pages (a trace's), a third of them written, some more often.
    const nonZero = Uint32Array.from({ length: 3000 }, (_, i) => i * 7 + (i % 5));
    const written = new Map<number, number>();
    nonZero.forEach((p, i) => {
      if (i % 3 === 0) written.set(p, 1 + (i % 4));
    });
    for (const ways of [1, 2, 4]) {
      const sets = 512;
      const cache = new PageCache({ bytes: sets * ways * P, pageSize: P, ways });
      expect(cache.sets).toBe(sets);
      const page = new Uint8Array(P);
      for (const p of nonZero) cache.insert(p, page);
      let hit = 0;
      let total = 0;
      for (const [p, w] of written) {
        total += w;
        if (cache.has(p)) hit += w;
      }
      const measured = measureCacheHits(nonZero, written).find((c) => c.ways === ways && c.sets === sets);
      expect(measured?.hit).toBeCloseTo(hit / total, 9);
    }
  });

  it('a page written but zero at the start (not sent in round 1) is a miss; nothing written: no entries', () => {
    const hits = measureCacheHits(range(0, 100), new Map([[500, 1]]));
    expect(hits.every((c) => c.hit === 0)).toBe(true);
    expect(measureCacheHits(range(0, 100), new Map())).toEqual([]);
  });
});

describe('measuredCacheHit', () => {
  const profile = {
    cacheHit: [
      { sets: 64, ways: 2, hit: 0.5 },
      { sets: 128, ways: 2, hit: 0.9 },
    ],
  };
  it('the measured geometry, the largest one past it, and nothing below or for other ways', () => {
    expect(measuredCacheHit(profile, 64, 2)).toBe(0.5);
    expect(measuredCacheHit(profile, 1024, 2)).toBe(0.9);
    expect(measuredCacheHit(profile, 32, 2)).toBeUndefined();
    expect(measuredCacheHit(profile, 64, 4)).toBeUndefined();
    expect(measuredCacheHit({}, 64, 2)).toBeUndefined();
  });
});
