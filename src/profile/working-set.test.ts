import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { byPage, distinctPagesPerWindow, hotSet, logSpacedWindows } from './working-set.js';

/** W(k) by brute force: OR the dirty sets of every window of k ticks and count. */
function bruteForce(ticks: number[][], k: number): number {
  let sum = 0;
  for (let i = 0; i + k <= ticks.length; i++) {
    const s = new Set<number>();
    for (let j = i; j < i + k; j++) for (const p of ticks[j]!) s.add(p);
    sum += s.size;
  }
  return sum / (ticks.length - k + 1);
}

const log = (ticks: number[][], pages: number) => ({ ticks: ticks.map((t) => Uint32Array.from(t)), pages });

describe('working-set curve', () => {
  it('known answers: a page rewritten every tick, a cursor writing a new page per tick', () => {
    const hot = byPage(log([[3], [3], [3], [3]], 8));
    expect(distinctPagesPerWindow(hot, 4, [1, 2, 4])).toEqual([1, 1, 1]);
    const seq = byPage(log([[0], [1], [2], [3]], 8));
    expect(distinctPagesPerWindow(seq, 4, [1, 2, 3, 4])).toEqual([1, 2, 3, 4]);
  });

  it('equals the OR of every window, for any dirty log', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uniqueArray(fc.integer({ min: 0, max: 31 }), { maxLength: 12 }), {
          minLength: 1,
          maxLength: 30,
        }),
        (ticks) => {
          const pt = byPage(log(ticks, 32));
          const ks = logSpacedWindows(ticks.length, 10);
          const got = distinctPagesPerWindow(pt, ticks.length, ks);
          for (const [i, k] of ks.entries()) expect(got[i]).toBeCloseTo(bruteForce(ticks, k), 9);
        },
      ),
    );
  });

  it('log-spaced windows run from one tick to all of them', () => {
    const ks = logSpacedWindows(600);
    expect(ks[0]).toBe(1);
    expect(ks[ks.length - 1]).toBe(600);
    expect(new Set(ks).size).toBe(ks.length);
  });

  it('the hot set: the fewest pages that take a share of the dirtying', () => {
    // Page 0 dirty in all 10 ticks, pages 1..10 in one each: 20 events, page 0 takes half.
    const ticks = Array.from({ length: 10 }, (_, i) => [0, i + 1]);
    expect(hotSet(byPage(log(ticks, 16)), [0.5, 1])).toEqual([
      { share: 0.5, pages: 1 },
      { share: 1, pages: 11 },
    ]);
  });
});
