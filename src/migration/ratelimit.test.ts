import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MigrationError, UsageError } from '../errors.js';
import { MIN_SLEEP_MS, TokenBucket } from './ratelimit.js';

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

/** A fake monotonic clock whose sleep advances it, so consume() can be tested without waiting. */
function fakeClock() {
  const c = {
    t: 1000,
    slept: [] as number[],
    now: () => c.t,
    sleep: async (ms: number) => {
      c.slept.push(ms);
      c.t += ms;
    },
  };
  return c;
}

describe('TokenBucket on a fake clock', () => {
  it('consume() waits exactly what take() asks, through the injected sleep', async () => {
    const c = fakeClock();
    const b = new TokenBucket(1_000_000, 250_000, c.now, c.sleep);
    await b.consume(250_000); // the burst: no wait
    expect(c.slept).toEqual([]);
    await b.consume(100_000);
    expect(c.slept).toHaveLength(1);
    expect(c.slept[0]).toBeCloseTo(100);
    // 10 MB more at 1 MB/s: 10 s of sleeping in total, bucket empty at the end.
    for (let i = 0; i < 100; i++) await b.consume(100_000);
    expect(c.slept.reduce((a, x) => a + x, 0)).toBeCloseTo(10_100, 6);
    expect(b.take(1)).toBeGreaterThan(0);
  });

  it('consume(): small waits sleep MIN_SLEEP_MS, so a stream of small frames takes a timer per few frames, not per frame', async () => {
    const c = fakeClock();
    const rate = 32 * 1024 * 1024; // 32 MiB/s: a 64 KiB frame is 2 ms of it
    const b = new TokenBucket(rate, undefined, c.now, c.sleep);
    const frame = 64 * 1024;
    const asked: number[] = [];
    const sent: number[] = [];
    const n = 500;
    for (let i = 0; i < n; i++) {
      asked.push(c.t);
      await b.consume(frame);
      sent.push(c.t);
    }
    // Before: one sleep per frame past the burst (about 495). Now: one per MIN_SLEEP_MS of the rate (4 frames).
    expect(c.slept.length).toBeLessThan(n / 3);
    expect(Math.min(...c.slept)).toBeGreaterThanOrEqual(MIN_SLEEP_MS - 1e-9);
    // The limit still holds over every interval, and the stream takes at most one MIN_SLEEP_MS longer than it must.
    for (let i = 0; i < n; i += 7) {
      for (let j = i; j < n; j += 11) {
        const bytes = (j - i + 1) * frame;
        expect(bytes).toBeLessThanOrEqual((b.burst + (rate * (sent[j]! - asked[i]!)) / 1000) * (1 + 1e-9));
      }
    }
    const least = ((n * frame - b.burst) * 1000) / rate;
    expect(c.t - 1000).toBeGreaterThanOrEqual(least - 1e-6);
    expect(c.t - 1000).toBeLessThanOrEqual(least + MIN_SLEEP_MS);
  });

  it('heldMs: the time sends really waited, overlapping waits once, none while unlimited', async () => {
    let t = 0;
    const sleeping: (() => void)[] = [];
    const sleep = () => new Promise<void>((resolve) => sleeping.push(resolve));
    const b = new TokenBucket(1_000_000, 100_000, () => t, sleep);
    await b.consume(100_000); // the burst: no wait
    expect(b.heldMs).toBe(0);
    // Two senders sharing the bucket (multifd): 100 and 200 ms of debt, waiting at the same time.
    const first = b.consume(100_000);
    const second = b.consume(100_000);
    t = 40;
    expect(b.heldMs).toBe(40); // a wait under way counts
    t = 130; // the first sleep ran 30 ms late: what counts is how long it really lasted
    sleeping[0]!();
    await first;
    expect(b.heldMs).toBe(130);
    t = 200;
    sleeping[1]!();
    await second;
    expect(b.heldMs).toBe(200); // not 130 + 200
    t = 1000; // idle: nothing held
    expect(b.heldMs).toBe(200);
    const free = new TokenBucket(0, undefined, () => t, sleep);
    await free.consume(1e9);
    expect(free.heldMs).toBe(0);
  });

  it('refills at the rate while idle, up to the burst only', () => {
    const c = fakeClock();
    const b = new TokenBucket(1_000_000, 300_000, c.now);
    b.take(300_000);
    c.t += 100; // 100 KB back
    expect(b.take(100_000)).toBe(0);
    expect(b.take(1000)).toBeCloseTo(1);
    c.t += 3_600_000; // an hour idle fills the bucket, not more
    expect(b.take(300_000)).toBe(0);
    expect(b.take(100_000)).toBeCloseTo(100);
  });

  it('default burst: 10 ms of the rate, at least 256 KiB; it follows setRate, an explicit one stays', () => {
    expect(new TokenBucket(1e9).burst).toBe(1e7);
    expect(new TokenBucket(1e6).burst).toBe(256 * 1024);
    const implicit = new TokenBucket(1e6);
    implicit.setRate(1e10);
    expect(implicit.burst).toBe(1e8);
    expect(implicit.rate).toBe(1e10);
    const fixed = new TokenBucket(1e6, 5000);
    fixed.setRate(1e10);
    expect(fixed.burst).toBe(5000);
  });

  it('lifting the limit with 0 and setting one again starts from a full bucket', () => {
    const c = fakeClock();
    const b = new TokenBucket(1000, 1000, c.now);
    expect(b.take(5000)).toBeCloseTo(4000);
    b.setRate(0);
    expect(b.take(1e12)).toBe(0);
    b.setRate(1000);
    expect(b.take(1000)).toBe(0);
    expect(b.take(500)).toBeCloseTo(500);
  });

  it('never lets more than burst + rate × T out in any interval of T, whatever the sends and pauses', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1e9 }),
        fc.option(fc.integer({ min: 1, max: 1e7 }), { nil: undefined }),
        fc.array(fc.record({ bytes: fc.integer({ min: 0, max: 2e7 }), idleMs: fc.nat(2000) }), {
          maxLength: 40,
        }),
        (rate, burstBytes, sends) => {
          const c = fakeClock();
          const start = c.t;
          const b = new TokenBucket(rate, burstBytes, c.now);
          const asked: number[] = []; // when each send called take()
          const released: number[] = []; // when it went out, after the wait
          for (const s of sends) {
            c.t += s.idleMs;
            asked.push(c.t);
            c.t += b.take(s.bytes);
            released.push(c.t);
          }
          // Sends i..j were all asked for at or after asked[i] and were out by released[j]. (A single send larger
          // than the burst is one unit: it waits until the bucket has paid for it.)
          for (let i = 0; i < sends.length; i++) {
            let sum = 0;
            for (let j = i; j < sends.length; j++) {
              sum += sends[j]!.bytes;
              const allowance = b.burst + (rate * (released[j]! - asked[i]!)) / 1000;
              expect(sum).toBeLessThanOrEqual(allowance * (1 + 1e-9) + 1e-6);
            }
          }
          // And it is not stricter than it must be: with no idle time the sends take exactly the minimum.
          const total = sends.reduce((a, s) => a + s.bytes, 0);
          if (sends.every((s) => s.idleMs === 0)) {
            expect(c.t - start).toBeCloseTo(Math.max(0, ((total - b.burst) * 1000) / rate), 3);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects a negative or non-numeric rate or burst, and negative sends', () => {
    expect(() => new TokenBucket(-1)).toThrow(UsageError);
    expect(() => new TokenBucket(Number.NaN)).toThrow(/max-bandwidth/);
    expect(() => new TokenBucket(1000, 0)).toThrow(UsageError);
    expect(() => new TokenBucket(1000).setRate(Number.POSITIVE_INFINITY)).toThrow(UsageError);
    expect(() => new TokenBucket(1000).take(-1)).toThrow(MigrationError);
  });
});
