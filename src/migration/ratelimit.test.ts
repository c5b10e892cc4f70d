import { describe, expect, it } from 'vitest';
import { TokenBucket } from './ratelimit.js';

describe('TokenBucket', () => {
  it('lets the burst pass, then spaces sends at the rate (fake clock)', () => {
    let t = 0;
    const b = new TokenBucket(1_000_000, 100_000, () => t);
    expect(b.take(100_000)).toBe(0);
    expect(b.take(50_000)).toBeCloseTo(50); // 50 KB in debt at 1 MB/s
    t += 50;
    expect(b.take(0)).toBe(0);
    // Over a long run the average is the rate: 10 MB takes 10 s of waiting in total.
    let waited = 0;
    for (let i = 0; i < 100; i++) {
      const w = b.take(100_000);
      waited = Math.max(waited, w);
      t += w;
    }
    expect(t).toBeGreaterThan(9_800);
    expect(t).toBeLessThan(10_200);
  });
  it('unlimited when the rate is 0', () => {
    const b = new TokenBucket(0);
    expect(b.take(1e12)).toBe(0);
  });
  it('setRate changes the pace', () => {
    const t = 0;
    const b = new TokenBucket(1000, 1000, () => t);
    b.take(1000);
    b.setRate(2000);
    expect(b.take(1000)).toBeCloseTo(500);
  });
});
