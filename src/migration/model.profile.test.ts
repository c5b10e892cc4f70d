import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  cacheRetention,
  type GuestProfile,
  PROFILE_VERSION,
  unchangedSinceSent,
  workingSetAt,
} from '../profile/index.js';
import { type EngineCosts, predictPrecopy } from './model.js';

const P = 4096;
const MiB = 1024 * 1024;

/** A synthetic profile whose W(t) is `w(ms)`, sampled log-spaced from 1 ms to 100 s. */
function profile(w: (ms: number) => number, o: Partial<GuestProfile> = {}): GuestProfile {
  const points: { ms: number; pages: number }[] = [];
  for (let e = 0; e <= 50; e++) {
    const ms = 10 ** (e / 10);
    points.push({ ms, pages: w(ms) });
  }
  return {
    kind: 'livemig-profile',
    version: PROFILE_VERSION,
    source: { workload: 'synthetic' },
    measuredAt: '2026-01-01T00:00:00.000Z',
    pageSize: P,
    ramPages: 16384,
    durationMs: 100_000,
    tickMs: 1,
    workingSet: points,
    pagesWritten: Math.round(w(100_000)),
    dirtyPagesPerSec: w(1000),
    hotSet: [],
    zeroFraction: 0,
    xbzrle: [],
    ...o,
  };
}

/** An engine with no costs of its own: only the link limits, so the answers are exact. */
const free: EngineCosts = {
  startSec: 0,
  switchoverSec: 0,
  pageSec: 0,
  zeroPageSec: 0,
  pageHeaderBytes: 0,
  linkBandwidth: Number.POSITIVE_INFINITY,
};

describe('predictPrecopy with a profile', () => {
  it('an idle guest: one round of the non-zero pages, then the switch-over costs', () => {
    const p = predictPrecopy({
      ramBytes: 16384 * P,
      dirtyRate: 0,
      bandwidth: 32 * MiB,
      profile: profile(() => 0, { zeroFraction: 0.5 }),
      engine: { ...free, startSec: 0.1, switchoverSec: 0.02 },
    });
    expect(p.rounds).toBe(1);
    expect(p.bytes).toBe(8192 * P);
    expect(p.totalTime).toBeCloseTo(0.1 + 1 + 0.02, 9); // 32 MiB at 32 MiB/s
    expect(p.downtime).toBeCloseTo(0.02, 9);
    expect(p.converged).toBe(true);
  });

  it('a W(t) that saturates at a hot set: the rounds converge to the hot set, and stop there at the round bound', () => {
    const hot = 2000;
    // Saturates within ~50 ms; every round lasts longer, so each finds the whole hot set dirty.
    const p = predictPrecopy({
      ramBytes: 16384 * P,
      dirtyRate: 0,
      bandwidth: 32 * MiB,
      downtimeLimit: 0.001,
      maxRounds: 12,
      profile: profile((ms) => hot * -Math.expm1(-ms / 10)),
      engine: free,
    });
    expect(p.rounds).toBe(12);
    expect(p.switchoverReason).toBe('max-rounds');
    expect(p.converged).toBe(false);
    for (const r of p.perRound!.slice(1)) expect(r.dirtyPages).toBeCloseTo(hot, 0);
    expect(p.stopCopyBytes).toBeCloseTo(hot * P, -2);
    // A downtime limit above the hot set's send time: converges after round 1 (its estimate uses whole pages). Round
    // 1's dirty rate (2000 pages over a 2 s pass) predicts that a round over the set would leave a quarter of it, so
    // the converged tail (converge-tail.ts) runs one; that round finds the whole hot set again and ends the tail.
    const fits = {
      ramBytes: 16384 * P,
      dirtyRate: 0,
      bandwidth: 32 * MiB,
      downtimeLimit: 0.3,
      profile: profile((ms) => hot * -Math.expm1(-ms / 10)),
      engine: { ...free, linkBandwidth: 1024 * MiB },
    };
    const q = predictPrecopy(fits);
    expect(q.converged).toBe(true);
    expect(q.rounds).toBe(2);
    expect(q.perRound![1]!.dirtyPages).toBeCloseTo(hot, 0);
    // Without the tail (--no-converge-tail: classic pre-copy, as QEMU), it switches over right after round 1.
    const classic = predictPrecopy({ ...fits, migration: { convergeTail: false } });
    expect(classic.converged).toBe(true);
    expect(classic.rounds).toBe(1);
    // The stop-and-copy goes unlimited (as the engine's does): at the link's rate, not the limit's.
    expect(q.downtime).toBeCloseTo((hot * P) / (1024 * MiB), 6);
  });

  it('λ ≥ 1 (a guest dirtying new pages faster than the link sends) never converges without a stop rule', () => {
    const rate = 10_000; // pages/s = 39 MiB/s against a 32 MiB/s link
    const input = {
      ramBytes: 16384 * P,
      dirtyRate: rate * P,
      bandwidth: 32 * MiB,
      profile: profile((ms) => Math.min(16384, (rate * ms) / 1000)),
      engine: free,
    };
    const bounded = predictPrecopy({ ...input, maxRounds: 30 });
    expect(bounded.converged).toBe(false);
    expect(bounded.rounds).toBe(30);
    expect(bounded.switchoverReason).toBe('max-rounds');
    const unbounded = predictPrecopy({ ...input, maxRounds: 30, migration: { maxRounds: 0 } });
    expect(unbounded.converged).toBe(false);
    expect(unbounded.switchoverReason).toMatch(/not-converging/);
    // Auto-converge throttles the guest until it does converge.
    const throttled = predictPrecopy({ ...input, migration: { maxRounds: 0, autoConverge: true } });
    expect(throttled.converged).toBe(true);
    expect(Math.max(...throttled.perRound!.map((r) => r.throttle))).toBeGreaterThan(0);
  });

  it('a guest that dirties all of RAM every round switches over once a round makes no progress, as the engine does', () => {
    // Every page dirty within ~10 ms: no round can shrink the set. At 1 GiB/s unlimited, 64 MiB is 62.5 ms.
    const input = {
      ramBytes: 16384 * P,
      dirtyRate: 0,
      bandwidth: 32 * MiB,
      profile: profile((ms) => 16384 * -Math.expm1(-ms)),
      engine: { ...free, pageSec: 1e-6, linkBandwidth: 1024 * MiB },
    };
    const p = predictPrecopy(input);
    expect(p.switchoverReason).toBe('no-progress');
    expect(p.rounds).toBe(2);
    expect(p.downtime).toBeCloseTo(0.0625, 4);
    expect(p.bytes).toBeCloseTo(3 * 64 * MiB, -3);
    // QEMU's avail-switchover-bandwidth set to the live link: the set never fits, the rounds run to max-rounds.
    const live = predictPrecopy({ ...input, migration: { availSwitchoverBandwidth: 32 * MiB } });
    expect(live.switchoverReason).toBe('max-rounds');
    expect(live.rounds).toBe(30);
    // An action chosen for stalls acts instead.
    const pc = predictPrecopy({ ...input, migration: { onStall: 'postcopy', stallRounds: 2 } });
    expect(pc.switchoverReason).toBe('postcopy: stalled');
    expect(pc.rounds).toBe(4);
  });

  it("a preset's stop rules apply: xen switches over after 5 rounds", () => {
    const rate = 10_000;
    const p = predictPrecopy({
      ramBytes: 16384 * P,
      dirtyRate: rate * P,
      bandwidth: 32 * MiB,
      profile: profile((ms) => Math.min(16384, (rate * ms) / 1000)),
      migration: { maxRounds: 5, minDirtyPages: 50, maxBandwidth: 32 * MiB },
      engine: free,
    });
    expect(p.rounds).toBe(5);
  });

  it('XBZRLE: resent pages cost the measured delta on cache hits', () => {
    const w = (ms: number) => Math.min(16384, ms); // 1000 pages/s
    const base = {
      ramBytes: 16384 * P,
      dirtyRate: 1000 * P,
      bandwidth: 32 * MiB,
      downtimeLimit: 0.001,
      maxRounds: 3,
      engine: free,
    };
    const xbz = [{ lagMs: 100, pages: 100, unchanged: 0, overflow: 0, ratio: 0.1 }];
    const raw = predictPrecopy({ ...base, profile: profile(w, { xbzrle: xbz }) });
    const big = predictPrecopy({
      ...base,
      profile: profile(w, { xbzrle: xbz }),
      migration: { xbzrle: true, xbzrleCacheBytes: 1024 * MiB, cacheWays: 2 },
    });
    expect(big.xbzrle!.hitRate).toBeGreaterThan(0.99);
    // A writer that never rewrites a page in a round: half the resent pages were written before round 1 sent them
    // (their copy holds the write), XBZRLE skips them; the rest cost the delta.
    expect(big.xbzrle!.wireRatio).toBeCloseTo(0.1 * 0.5, 2);
    expect(big.bytes - 16384 * P).toBeLessThan((raw.bytes - 16384 * P) * 0.2);
    // A cache of a quarter of RAM keeps at most a quarter of round 1's pages.
    const small = predictPrecopy({
      ...base,
      profile: profile(w, { xbzrle: xbz }),
      migration: { xbzrle: true, xbzrleCacheBytes: 16 * MiB, cacheWays: 2 },
    });
    expect(small.xbzrle!.hitRate).toBeLessThanOrEqual(0.25);
    expect(small.xbzrle!.hitRate).toBeGreaterThan(0.2);
  });
});

describe('profile curves', () => {
  it('cacheRetention: what a set-associative cache keeps of n random pages', () => {
    expect(cacheRetention(1000, 1000, 1)).toBeCloseTo(-Math.expm1(-1), 6); // direct-mapped, load 1
    expect(cacheRetention(100, 1_000_000, 2)).toBeCloseTo(1, 3);
    // 2000 slots for 4000 pages: at most half, less the slots of sets that drew fewer than 2 pages.
    expect(cacheRetention(4000, 1000, 2)).toBeLessThan(0.5);
    expect(cacheRetention(4000, 1000, 2)).toBeGreaterThan(0.45);
    expect(cacheRetention(0, 10, 2)).toBe(1);
  });

  it('workingSetAt interpolates, goes through 0 at 0 and extrapolates the last slope up to RAM', () => {
    const p = {
      ramPages: 1000,
      workingSet: [
        { ms: 10, pages: 10 },
        { ms: 100, pages: 50 },
      ],
    };
    expect(workingSetAt(p, 0)).toBe(0);
    expect(workingSetAt(p, 5)).toBe(5);
    expect(workingSetAt(p, 55)).toBeCloseTo(30, 9);
    expect(workingSetAt(p, 1000)).toBeCloseTo(50 + (40 / 90) * 900, 9);
    expect(workingSetAt(p, 1e9)).toBe(1000);
  });
});

describe('guest speed while migrated', () => {
  it('a guest slowed to half its profiled speed dirties W(T/2) per round', () => {
    const w = (ms: number) => Math.min(16384, ms); // 1000 pages/s
    const input = {
      ramBytes: 16384 * P,
      dirtyRate: 1000 * P,
      bandwidth: 32 * MiB,
      downtimeLimit: 0.001,
      maxRounds: 2,
      profile: profile(w),
      engine: free,
    };
    const full = predictPrecopy(input).perRound![0]!;
    const half = predictPrecopy({ ...input, guestSpeed: 0.5 }).perRound![0]!;
    expect(full.dirtyPages).toBeCloseTo(full.seconds * 1000, 6);
    expect(half.dirtyPages).toBeCloseTo(full.dirtyPages / 2, 6);
    expect(() => predictPrecopy({ ...input, guestSpeed: 0 })).toThrow(/guest speed/);
  });
});

describe("the destination's start", () => {
  it('a migration that ends before the destination guest is up waits for it in the downtime', () => {
    const input = {
      ramBytes: 16384 * P,
      dirtyRate: 0,
      bandwidth: 64 * MiB, // 64 MiB in 1 s
      profile: profile(() => 0),
      engine: free,
    };
    expect(predictPrecopy({ ...input, profile: profile(() => 0, { incomingMs: 400 }) }).downtime).toBe(0);
    const late = predictPrecopy({ ...input, profile: profile(() => 0, { incomingMs: 1500 }) });
    expect(late.downtime).toBeCloseTo(0.5, 9);
    expect(late.totalTime).toBeCloseTo(1.5, 9);
  });
});

describe('the stop-and-copy', () => {
  it('costs its own per-page time when given (the guest is paused), else the rounds’', () => {
    const hot = 2000;
    const input = {
      ramBytes: 16384 * P,
      dirtyRate: 0,
      bandwidth: 32 * MiB,
      profile: profile((ms) => hot * -Math.expm1(-ms / 10)),
    };
    const rounds = predictPrecopy({ ...input, engine: { ...free, pageSec: 100e-6 } });
    expect(rounds.downtime).toBeCloseTo(hot * 100e-6, 6);
    const own = predictPrecopy({ ...input, engine: { ...free, pageSec: 100e-6, stopPageSec: 20e-6 } });
    expect(own.downtime).toBeCloseTo(hot * 20e-6, 6);
  });
});

describe('properties of the profile-fed model', () => {
  const costs = {
    startSec: 0.1,
    switchoverSec: 0.005,
    pageSec: 20e-6,
    zeroPageSec: 0.3e-6,
    pageHeaderBytes: 9,
    linkBandwidth: 1.4e9,
  };
  const arb = fc.record({
    rate: fc.integer({ min: 0, max: 20_000 }), // pages/s
    hot: fc.integer({ min: 1, max: 16384 }), // pages the writer keeps rewriting
    zero: fc.double({ min: 0, max: 0.95, noNaN: true }),
    mib: fc.integer({ min: 4, max: 512 }),
    xbzrle: fc.boolean(),
  });
  const inputOf = (a: { rate: number; hot: number; zero: number; xbzrle: boolean }, mib: number) => ({
    ramBytes: 16384 * P,
    dirtyRate: a.rate * P,
    bandwidth: mib * MiB,
    profile: profile((ms) => a.hot * -Math.expm1((-a.rate * ms) / 1000 / a.hot), {
      zeroFraction: a.zero,
      xbzrle: [{ lagMs: 100, pages: 100, unchanged: 0.1, overflow: 0.05, ratio: 0.2 }],
    }),
    migration: a.xbzrle ? { xbzrle: true } : {},
    engine: costs,
  });

  it('never sends fewer bytes than the non-zero pages of RAM, and never takes less than sending them', () => {
    fc.assert(
      fc.property(arb, (a) => {
        const p = predictPrecopy(inputOf(a, a.mib));
        const nonZero = Math.round(16384 * (1 - a.zero));
        expect(p.bytes).toBeGreaterThanOrEqual(nonZero * P);
        expect(p.totalTime).toBeGreaterThanOrEqual((nonZero * P) / (a.mib * MiB));
        expect(p.downtime).toBeGreaterThanOrEqual(costs.switchoverSec);
      }),
      { numRuns: 300 },
    );
  });

  it('an idle guest finishes no later on a faster link (one round: time falls with bandwidth)', () => {
    fc.assert(
      fc.property(arb, fc.integer({ min: 1, max: 8 }), (a, k) => {
        const idle = { ...a, rate: 0 };
        const slow = predictPrecopy(inputOf(idle, a.mib));
        const fast = predictPrecopy(inputOf(idle, a.mib * k));
        expect(fast.totalTime).toBeLessThanOrEqual(slow.totalTime + 1e-12);
        expect(fast.bytes).toBe(slow.bytes);
      }),
      { numRuns: 200 },
    );
  });

  it('round 1 alone (the whole non-zero RAM) is monotone in bandwidth for any writer', () => {
    fc.assert(
      fc.property(arb, fc.integer({ min: 2, max: 8 }), (a, k) => {
        const r1 = (mib: number) => predictPrecopy(inputOf(a, mib)).perRound![0]!;
        expect(r1(a.mib * k).seconds).toBeLessThanOrEqual(r1(a.mib).seconds + 1e-12);
        expect(r1(a.mib * k).dirtyPages).toBeLessThanOrEqual(r1(a.mib).dirtyPages + 1e-9);
      }),
      { numRuns: 200 },
    );
  });
});

describe('what the profile adds', () => {
  it("a trace guest's recording is on the wire, and the destination's start overlaps its transfer", () => {
    const input = {
      ramBytes: 16384 * P,
      dirtyRate: 0,
      bandwidth: 64 * MiB,
      engine: free,
    };
    const plain = predictPrecopy({ ...input, profile: profile(() => 0, { zeroFraction: 0.9 }) });
    const carried = predictPrecopy({
      ...input,
      profile: profile(() => 0, { zeroFraction: 0.9, carriedBytes: 1 << 20 }),
    });
    expect(carried.bytes - plain.bytes).toBe(1 << 20);
    expect(carried.totalTime).toBeCloseTo(plain.totalTime, 9); // sent in the handshake, before the modelled time
    // Round 1 takes 0.1 s; the destination needs 0.2 s from the handshake, of which 1 MiB at 64 MiB/s (15.6 ms)
    // went before round 1.
    const wait = predictPrecopy({
      ...input,
      profile: profile(() => 0, { zeroFraction: 0.9, carriedBytes: 1 << 20, incomingMs: 200 }),
    });
    const round1 = plain.perRound![0]!.seconds;
    expect(wait.downtime).toBeCloseTo(0.2 - 1 / 64 - round1, 6);
  });

  it("round 1 sends the non-zero pages at the watch's start when the profile has them", () => {
    const p = predictPrecopy({
      ramBytes: 16384 * P,
      dirtyRate: 0,
      bandwidth: 64 * MiB,
      engine: free,
      profile: profile(() => 0, { zeroFraction: 0.5, zeroFractionStart: 0.75 }),
    });
    expect(p.perRound![0]!.pages).toBe(16384);
    expect(p.bytes).toBe(4096 * P);
  });

  it('XBZRLE: a measured cache hit rate replaces the random-placement estimate', () => {
    const w = (ms: number) => Math.min(16384, ms);
    const base = {
      ramBytes: 16384 * P,
      dirtyRate: 1000 * P,
      bandwidth: 32 * MiB,
      engine: free,
      migration: { xbzrle: true, xbzrleCacheBytes: 32 * MiB, cacheWays: 2 },
    };
    const xbz = [{ lagMs: 100, pages: 100, unchanged: 0, overflow: 0, ratio: 0.1 }];
    const estimated = predictPrecopy({ ...base, profile: profile(w, { xbzrle: xbz }) });
    expect(estimated.xbzrle!.hitRate).toBeCloseTo(cacheRetention(16384, 4096, 2), 9);
    const measured = predictPrecopy({
      ...base,
      profile: profile(w, { xbzrle: xbz, cacheHit: [{ sets: 4096, ways: 2, hit: 0.5 }] }),
    });
    expect(measured.xbzrle!.hitRate).toBe(0.5);
  });

  it('unchangedSinceSent: ½ for a writer that never rewrites a page, 0 for a hot set rewritten all the time', () => {
    expect(unchangedSinceSent({ ramPages: 1e9, workingSet: [{ ms: 1, pages: 10 }] }, 1000)).toBeCloseTo(
      0.5,
      9,
    );
    const hot = {
      ramPages: 16384,
      workingSet: [
        { ms: 1, pages: 100 },
        { ms: 1e6, pages: 100 },
      ],
    };
    expect(unchangedSinceSent(hot, 1000)).toBeLessThan(0.01);
    expect(unchangedSinceSent(hot, 0)).toBe(0);
  });
});
