import { describe, expect, it } from 'vitest';
import { DEFAULT_OPTIONS, presetOptions, resolveOptions } from './options.js';
import {
  admitToCache,
  admittedCacheGrowth,
  autoConvergeStep,
  type CacheRoundSample,
  type ConvergenceState,
  decideAfterRound,
  expectedDowntimeMs,
  initialAdmittedCacheSize,
  initialCacheSize,
  isNotConverging,
  isStalled,
  madeLittleProgress,
  madeNoProgress,
  measuredBandwidth,
  nextCacheSize,
  type RoundSample,
  switchoverBandwidth,
  throttleToCap,
} from './policy.js';

const round = (r: number, pagesSent: number, dirtyPages: number, durationMs = 1000): RoundSample => ({
  round: r,
  pagesSent,
  bytesSent: pagesSent * 4096,
  durationMs,
  dirtyPages,
});

function state(rounds: RoundSample[], over: Partial<ConvergenceState> = {}): ConvergenceState {
  return {
    rounds,
    bandwidth: 100 * 4096,
    bytesPerPage: 4096,
    pageSize: 4096,
    throttle: 0,
    throttleTriggers: 0,
    downtimeLimitMs: 300,
    elapsedMs: 0,
    msSinceProgress: 0,
    ...over,
  };
}

describe('convergence policy', () => {
  it('expected downtime is dirty bytes over bandwidth', () => {
    expect(expectedDowntimeMs(100, 4096, 4096 * 1000)).toBeCloseTo(100);
    expect(expectedDowntimeMs(0, 4096, 0)).toBe(0);
    expect(expectedDowntimeMs(1, 4096, 0)).toBe(Number.POSITIVE_INFINITY);
  });

  it('switches over when the expected downtime fits the limit', () => {
    // 100 pages/s bandwidth: 20 dirty pages = 200 ms < 300 ms
    expect(decideAfterRound(state([round(1, 1000, 20)]), DEFAULT_OPTIONS)).toEqual({
      action: 'switchover',
      reason: 'converged',
    });
    expect(decideAfterRound(state([round(1, 1000, 50)]), DEFAULT_OPTIONS).action).toBe('next-round');
  });

  it('stops at max rounds and at Xen-style minimum dirty pages', () => {
    const rounds = Array.from({ length: 30 }, (_, i) => round(i + 1, 1000, 900));
    expect(decideAfterRound(state(rounds), DEFAULT_OPTIONS)).toEqual({
      action: 'switchover',
      reason: 'max-rounds',
    });
    const xen = resolveOptions({}, 'xen', 1 << 30);
    expect(decideAfterRound(state([round(1, 1000, 49)], { bandwidth: 1 }), xen)).toEqual({
      action: 'switchover',
      reason: 'min-dirty-pages',
    });
  });

  it('detects non-convergence and acts as configured', () => {
    const rounds = [round(1, 1000, 800), round(2, 800, 900), round(3, 900, 950), round(4, 950, 990)];
    expect(isNotConverging(rounds, 3)).toBe(true);
    expect(isNotConverging(rounds.slice(0, 3), 3)).toBe(false);
    expect(decideAfterRound(state(rounds), { ...DEFAULT_OPTIONS, onNonConvergence: 'abort' })).toEqual({
      action: 'abort',
      reason: 'not-converging',
    });
    expect(decideAfterRound(state(rounds), { ...DEFAULT_OPTIONS, onNonConvergence: 'postcopy' })).toEqual({
      action: 'postcopy',
      reason: 'not-converging',
    });
    expect(decideAfterRound(state(rounds), DEFAULT_OPTIONS).action).toBe('next-round');
  });

  it('detects a stall: the dirty set stops shrinking', () => {
    const rounds = [round(1, 1000, 500), round(2, 500, 300), round(3, 300, 310), round(4, 310, 305)];
    expect(isStalled(rounds, 2)).toBe(true);
    expect(isStalled([...rounds.slice(0, 3), round(4, 310, 200)], 2)).toBe(false);
  });

  it('hybrid switches to post-copy after its pre-copy rounds', () => {
    const o = { ...DEFAULT_OPTIONS, strategy: 'hybrid' as const, postcopyAfterRounds: 2 };
    expect(decideAfterRound(state([round(1, 1000, 900)]), o).action).toBe('next-round');
    expect(decideAfterRound(state([round(1, 1000, 900), round(2, 900, 900)]), o)).toEqual({
      action: 'postcopy',
      reason: 'hybrid-rounds',
    });
  });

  it('timeouts abort', () => {
    expect(
      decideAfterRound(state([round(1, 1, 900)], { elapsedMs: 10 }), { ...DEFAULT_OPTIONS, timeoutMs: 5 }),
    ).toEqual({ action: 'abort', reason: 'timeout' });
  });
});

describe('auto-converge (QEMU rules)', () => {
  const o = DEFAULT_OPTIONS;
  it('throttles after two triggering syncs, then steps by the increment up to the max', () => {
    const hot = round(2, 100, 80); // dirtied 80% of what was sent > 50%
    let s = autoConvergeStep(hot, 4096, 0, 0, o);
    expect(s).toEqual({ throttle: 0, triggers: 1 });
    s = autoConvergeStep(hot, 4096, s.throttle, s.triggers, o);
    expect(s.throttle).toBe(20);
    s = autoConvergeStep(hot, 4096, s.throttle, 1, o);
    expect(s.throttle).toBe(30);
    expect(autoConvergeStep(hot, 4096, 95, 1, o).throttle).toBe(99);
    expect(autoConvergeStep(round(2, 100, 10), 4096, 30, 1, o)).toEqual({ throttle: 30, triggers: 0 });
  });
  it('maps throttle to a CAP', () => {
    expect(throttleToCap(0)).toBe(0);
    expect(throttleToCap(20)).toBe(80);
    expect(throttleToCap(99)).toBe(1);
  });
});

describe('options', () => {
  it('validates with messages naming the option', () => {
    expect(() => resolveOptions({ downtimeLimitMs: -1 }, undefined, 1 << 20)).toThrow(/downtimeLimitMs/);
    expect(() => resolveOptions({ throttleInitial: 90, throttleMax: 50 }, undefined, 1 << 20)).toThrow(
      /throttleInitial/,
    );
  });
  it('presets apply their rules and explicit options win', () => {
    expect(resolveOptions({}, 'proxmox', 1000 * 4096).xbzrleCacheBytes).toBe((400 * 1024) / 1);
    expect(resolveOptions({ downtimeLimitMs: 42 }, 'proxmox', 1 << 30).downtimeLimitMs).toBe(42);
    expect(presetOptions('kubevirt', 2 * 1024 ** 3).timeoutMs).toBe(300_000);
    expect(presetOptions('xen', 1).maxRounds).toBe(5);
  });
});

describe('dynamic XBZRLE cache sizing', () => {
  const o = { pageSize: 4096, minBytes: 1 << 20, maxBytes: 64 << 20 };
  const sample = (over: Partial<CacheRoundSample>): CacheRoundSample => ({
    hits: 0,
    misses: 1000,
    xbzrlePageBytes: 0,
    xbzrleEncodedBytes: 0,
    overflows: 0,
    hotPages: 2000,
    dirtyPages: 3000,
    ...over,
  });
  it('grows towards the hot set while misses are common, at most 4× per round, within the budget', () => {
    expect(nextCacheSize(1 << 20, sample({}), o)).toBe(4 << 20);
    expect(nextCacheSize(4 << 20, sample({}), o)).toBe(16 << 20); // 2000 pages × 1.25 → 10 MB → 16 MiB
    expect(nextCacheSize(1 << 20, sample({ hotPages: 100_000 }), { ...o, maxBytes: 2 << 20 })).toBe(2 << 20);
  });
  it('holds its size when it already covers the hot set and hits', () => {
    expect(nextCacheSize(16 << 20, sample({ hits: 990, misses: 10 }), o)).toBe(16 << 20);
  });
  it('shrinks when the hot set is much smaller, or when XBZRLE does not pay', () => {
    expect(nextCacheSize(64 << 20, sample({ hotPages: 100, hits: 100, misses: 0 }), o)).toBe(32 << 20);
    expect(
      nextCacheSize(16 << 20, sample({ xbzrlePageBytes: 1000 * 4096, xbzrleEncodedBytes: 900 * 4096 }), o),
    ).toBe(8 << 20);
    expect(nextCacheSize(1 << 20, sample({ xbzrlePageBytes: 4096, xbzrleEncodedBytes: 4000 }), o)).toBe(
      1 << 20,
    );
  });
  it('does not shrink before any resent page has hit (round 1: every lookup is a first send)', () => {
    // After round 1 the copies of the pages about to be resent are in the cache; a shrink would keep the most
    // recently inserted copies instead, and the resends would miss.
    expect(nextCacheSize(64 << 20, sample({ hotPages: 0, dirtyPages: 100, hits: 0, misses: 16384 }), o)).toBe(
      64 << 20,
    );
    expect(nextCacheSize(64 << 20, sample({ hotPages: 0, dirtyPages: 100, hits: 50, misses: 0 }), o)).toBe(
      32 << 20,
    );
  });
  it('keeps room for every page resent this round, not only the hot ones (uniform writers)', () => {
    // 4700 resent pages × 4 KiB × 1.25 → 32 MiB wanted: a 64 MiB cache holds, although only 200 pages are hot.
    const uniform = sample({ hotPages: 200, dirtyPages: 1000, hits: 4000, misses: 700 });
    expect(nextCacheSize(64 << 20, uniform, o)).toBe(64 << 20);
    expect(nextCacheSize(128 << 20, uniform, { ...o, maxBytes: 128 << 20 })).toBe(64 << 20);
  });
  it('starts at the budget, or at the RAM when that is smaller, never below 64 pages per way', () => {
    const base = { pageSize: 4096, ways: 2 };
    expect(initialCacheSize({ ...base, ramBytes: 1 << 30, maxBytes: 256 << 20 })).toBe(256 << 20);
    expect(initialCacheSize({ ...base, ramBytes: 64 << 20, maxBytes: 256 << 20 })).toBe(64 << 20);
    expect(initialCacheSize({ ...base, ramBytes: 48 << 20, maxBytes: 256 << 20 })).toBe(64 << 20); // power of two
    expect(initialCacheSize({ ...base, ramBytes: 4096, maxBytes: 256 << 20 })).toBe(4096 * 64 * 2);
  });
});

describe('XBZRLE cache admission (dynamic sizing that starts small)', () => {
  const o = { pageSize: 4096, maxBytes: 64 << 20 };
  it('admits a page written recently, written since migration started, or dirty again as it is sent', () => {
    expect(admitToCache({ warm: false, writtenSince: 0, dirtyNow: false })).toBe(false);
    expect(admitToCache({ warm: true, writtenSince: 0, dirtyNow: false })).toBe(true);
    expect(admitToCache({ warm: false, writtenSince: 3, dirtyNow: false })).toBe(true);
    expect(admitToCache({ warm: false, writtenSince: 0, dirtyNow: true })).toBe(true);
  });
  it('starts at the warm set with a margin of 2, a power of two, within [min, max]', () => {
    const base = { pageSize: 4096, minBytes: 512 << 10, maxBytes: 64 << 20 };
    expect(initialAdmittedCacheSize({ ...base, warmPages: 2500 })).toBe(32 << 20); // 20 MB → 32 MiB
    expect(initialAdmittedCacheSize({ ...base, warmPages: 0 })).toBe(512 << 10);
    expect(initialAdmittedCacheSize({ ...base, warmPages: 100_000 })).toBe(64 << 20);
  });
  const at = (progress: number, writtenPages: number, earlier: [number, number], admittedPages = 0) => ({
    admittedPages,
    writtenPages,
    progress,
    earlier: { progress: earlier[0], writtenPages: earlier[1] },
  });
  it('doubles when admitted pages fill more than 3/4 of the slots', () => {
    expect(admittedCacheGrowth(4 << 20, at(0.1, 0, [0, 0], 768), o)).toBe(4 << 20); // 3 MiB of 4: fits
    expect(admittedCacheGrowth(4 << 20, at(0.1, 0, [0, 0], 769), o)).toBe(8 << 20);
    expect(admittedCacheGrowth(64 << 20, at(0.1, 0, [0, 0], 100_000), o)).toBe(64 << 20); // the budget
  });
  it('projects the written pages to the end of round 1 at their recent rate, once a quarter is sent', () => {
    // Uniform writer: 2000 written at 25%, 1000 at 12.5% → 8000 at the end × 1.25 → 40 MB → 64 MiB.
    expect(admittedCacheGrowth(16 << 20, at(0.25, 2000, [0.125, 1000]), o)).toBe(64 << 20);
    // Skewed writer: new pages appear slowly now (1700 vs 1500) → 2900 × 1.25 → 14 MB: 16 MiB is enough.
    expect(admittedCacheGrowth(16 << 20, at(0.25, 1700, [0.125, 1500]), o)).toBe(16 << 20);
    // Too early, or too short a span to measure a rate: no projection.
    expect(admittedCacheGrowth(1 << 20, at(0.2, 2000, [0.075, 0]), o)).toBe(1 << 20);
    expect(admittedCacheGrowth(1 << 20, at(0.25, 2000, [0.2, 0]), o)).toBe(1 << 20);
  });
  it('never shrinks and never exceeds the budget', () => {
    expect(admittedCacheGrowth(32 << 20, at(0.5, 10, [0.25, 5]), o)).toBe(32 << 20);
    expect(admittedCacheGrowth(16 << 20, at(0.25, 50_000, [0, 0]), { ...o, maxBytes: 48 << 20 })).toBe(
      48 << 20,
    );
  });
});

describe('measuredBandwidth', () => {
  it('is what the last three rounds sent over their time, capped by --max-bandwidth when set', () => {
    expect(measuredBandwidth([], 0)).toBe(0);
    expect(measuredBandwidth([round(1, 100, 0, 500)], 0)).toBe(819_200);
    // Round 1 (1000 pages in 1 s) is older than the last three: 3 × 10 pages × 4096 B in 3 × 100 ms.
    const rounds = [round(1, 1000, 0), round(2, 10, 0, 100), round(3, 10, 0, 100), round(4, 10, 0, 100)];
    expect(measuredBandwidth(rounds, 0)).toBe(409_600);
    expect(measuredBandwidth(rounds, 100_000)).toBe(100_000);
    expect(measuredBandwidth(rounds, 1e9)).toBe(409_600);
  });
});

describe('switchoverBandwidth (the stop-and-copy rate)', () => {
  it("is the last three rounds' bytes over their time less what the limit held back, or the user's", () => {
    const held = (r: RoundSample, heldMs: number): RoundSample => ({ ...r, heldMs });
    expect(switchoverBandwidth([], 0)).toBe(0);
    // 100 pages in 1 s of which the limit held 900 ms: 100 ms of work, 4 096 000 B/s without the limit.
    expect(switchoverBandwidth([held(round(1, 100, 100), 900)], 0)).toBe(4_096_000);
    // Not measured (the QEMU bridge, a limit-free run): the round's own rate.
    expect(switchoverBandwidth([round(1, 100, 100)], 0)).toBe(409_600);
    // Round 1 is older than the last three: 3 × 10 pages in 3 × (100 − 50) ms.
    const rounds = [round(1, 1000, 0), ...[2, 3, 4].map((i) => held(round(i, 10, 10, 100), 50))];
    expect(switchoverBandwidth(rounds, 0)).toBe(819_200);
    // QEMU's avail-switchover-bandwidth, when given, is the rate.
    expect(switchoverBandwidth(rounds, 5)).toBe(5);
  });

  it('decideAfterRound switches over after a round without progress whose set fits at that rate', () => {
    const rounds = [round(1, 1000, 900), round(2, 900, 900)];
    // 900 pages: 9 s at the live 100 pages/s, 90 ms at 10 000 pages/s.
    expect(decideAfterRound(state(rounds), DEFAULT_OPTIONS)).toEqual({ action: 'next-round' });
    expect(decideAfterRound(state(rounds, { switchoverBandwidth: 10_000 * 4096 }), DEFAULT_OPTIONS)).toEqual({
      action: 'switchover',
      reason: 'no-progress',
    });
    // Progress (a sixteenth of the set or more): the rounds go on. Less is no progress, as none at all.
    const shrinking = [round(1, 1000, 900), round(2, 900, 843)];
    expect(madeLittleProgress(shrinking)).toBe(false);
    expect(madeLittleProgress([round(1, 1000, 900), round(2, 900, 844)])).toBe(true);
    expect(madeNoProgress([round(1, 1000, 900), round(2, 900, 844)])).toBe(false);
    expect(
      decideAfterRound(state(shrinking, { switchoverBandwidth: 10_000 * 4096 }), DEFAULT_OPTIONS),
    ).toEqual({
      action: 'next-round',
    });
  });
});
