import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_OPTIONS, type MigrationOptions, resolveOptions } from './options.js';
import type { RoundSample } from './policy.js';
import {
  decideRound,
  initialRoundState,
  MAX_DOWNTIME_LIMIT_MS,
  type RoundEstimate,
  type RoundOutcome,
  type RoundState,
} from './round-decision.js';

const round = (r: number, pagesSent: number, dirtyPages: number): RoundSample => ({
  round: r,
  pagesSent,
  bytesSent: pagesSent * 4096,
  durationMs: 1000,
  dirtyPages,
});

/** Far from converging: 100 pages/s of bandwidth against a 300 ms limit. */
const slow: RoundEstimate = { bandwidth: 100 * 4096, bytesPerPage: 4096, elapsedMs: 0, msSinceProgress: 0 };
/** Never converging: one byte/s, so even one dirty page is 4096 s of downtime, past every limit reachable. */
const never: RoundEstimate = { ...slow, bandwidth: 1 };

/** Feeds the rounds one by one, as an engine does, and collects every outcome. */
function drive(
  dirty: readonly number[],
  over: Partial<MigrationOptions>,
  mode: 'engine' | 'qemu' = 'engine',
  estimate: RoundEstimate = slow,
): { outcomes: RoundOutcome[]; state: RoundState } {
  const o = resolveOptions({ maxRounds: 0, ...over }, undefined, 0);
  let state = initialRoundState(o);
  const samples: RoundSample[] = [];
  const outcomes: RoundOutcome[] = [];
  let sent = 10_000;
  for (const [i, d] of dirty.entries()) {
    samples.push(round(i + 1, sent, d));
    sent = d;
    const out = decideRound(
      state,
      {
        samples,
        pageSize: 4096,
        autoConverge: mode === 'engine' ? 'engine' : 'hypervisor',
        ...(mode === 'engine' ? { estimate } : {}),
      },
      o,
    );
    outcomes.push(out);
    state = out.state;
    if (out.decision.action !== 'next-round') break;
  }
  return { outcomes, state };
}

const events = (outs: RoundOutcome[]) => outs.flatMap((o) => o.events);

describe('round decision', () => {
  it('keeps the event lines both engines printed', () => {
    const { outcomes } = drive([500, 600, 600, 600, 600, 600, 600], {
      onStall: 'double-downtime',
      stallRounds: 3,
    });
    const ev = events(outcomes);
    expect(ev).toContain('no progress in round 2: downtime limit doubled to 600 ms');
    expect(ev).toContain(
      'not converging: the guest dirtied pages as fast as they were sent for 3 rounds (action: continue)',
    );
    expect(ev).toContain('stalled: no progress for 3 rounds (action: double-downtime)');
    // Each detection is reported once.
    expect(ev.filter((e) => e.startsWith('stalled')).length).toBe(1);
    expect(outcomes.filter((o) => o.stalled).length).toBe(1);
  });

  it('acts on stalls and non-convergence as policy.ts says: post-copy, abort', () => {
    const stall = drive([500, 600, 600, 600, 600], { onStall: 'postcopy', stallRounds: 2 }).outcomes.at(-1)!;
    expect(stall.decision).toEqual({ action: 'postcopy', reason: 'stalled' });
    const nc = drive([500, 600, 600, 600, 600], { onNonConvergence: 'abort' }).outcomes.at(-1)!;
    expect(nc.decision).toEqual({ action: 'abort', reason: 'not-converging' });
  });

  it('without an estimate (QEMU decides convergence) it never says converged, but the stop rules stand', () => {
    const { outcomes } = drive([1, 1, 1], { maxRounds: 2 }, 'qemu');
    expect(outcomes[0]!.decision.action).toBe('next-round');
    expect(outcomes[1]!.decision).toEqual({ action: 'switchover', reason: 'max-rounds' });
    // The same round with the engine's estimate: 1 page at 100 pages/s is 10 ms, under the 300 ms limit.
    expect(drive([1], {}).outcomes[0]!.decision).toEqual({ action: 'switchover', reason: 'converged' });
  });

  it('auto-converge steps only where the engine throttles', () => {
    const hot = [5000, 6000, 7000, 8000, 9000];
    const engine = drive(hot, { autoConverge: true, throttleInitial: 20, throttleIncrement: 10 });
    expect(engine.outcomes.flatMap((o) => (o.throttle ? [o.throttle.throttle] : []))).toEqual([20, 30]);
    expect(events(engine.outcomes)).toContain('auto-converge: throttle 20% (CAP 80)');
    const qemu = drive(hot, { autoConverge: true }, 'qemu');
    expect(qemu.outcomes.some((o) => o.throttle)).toBe(false);
  });

  it('the downtime ramp raises by STEP on rounds without progress, up to MAX, and lists each raise', () => {
    const ramp = { startMs: 150, stepMs: 150, maxMs: 500 };
    const { outcomes, state } = drive([900, 900, 800, 900, 900, 900, 900], { downtimeRamp: ramp });
    const raises = outcomes.flatMap((o) => (o.downtime ? [o.downtime] : []));
    expect(raises).toEqual([
      { round: 2, fromMs: 150, toMs: 300, cause: 'ramp' },
      { round: 4, fromMs: 300, toMs: 450, cause: 'ramp' },
      { round: 5, fromMs: 450, toMs: 500, cause: 'ramp' },
    ]);
    expect(state.downtimeLimitMs).toBe(500);
    expect(events(outcomes)).toContain(
      'downtime ramp: no progress in round 2: downtime limit raised from 150 to 300 ms',
    );
    expect(events(outcomes)).toContain(
      'downtime ramp: no progress in round 5: downtime limit raised from 450 to 500 ms (the ramp is at its maximum)',
    );
  });

  it('the ramp comes before any other stall action; they act once it is at MAX', () => {
    const o: Partial<MigrationOptions> = {
      downtimeRamp: { startMs: 100, stepMs: 100, maxMs: 400 },
      onStall: 'postcopy',
      stallRounds: 1,
      autoConverge: true,
    };
    const { outcomes } = drive([900, 900, 900, 900, 900, 900, 900], o);
    const firstRamp = outcomes.findIndex((x) => x.downtime?.cause === 'ramp');
    const atMax = outcomes.findIndex((x) => x.downtime?.toMs === 400);
    expect(firstRamp).toBe(1);
    expect(atMax).toBe(3);
    // Nothing but the ramp until it is at MAX: no stall, no throttle, no post-copy.
    for (const x of outcomes.slice(0, atMax + 1)) {
      expect(x.decision.action).toBe('next-round');
      expect(x.throttle).toBeUndefined();
      expect(x.stalled).toBe(false);
      expect(x.rampHolds).toBe(true); // the engine's dirty limit waits too
    }
    expect(outcomes.at(-1)!.rampHolds).toBe(false);
    expect(outcomes.at(-1)!.decision).toEqual({ action: 'postcopy', reason: 'stalled' });
    expect(outcomes.length).toBe(atMax + 2);
  });

  it('the ramp does not hold timeouts or the stop rules', () => {
    const o = resolveOptions(
      { downtimeRamp: { startMs: 10, stepMs: 10, maxMs: 1000 }, timeoutMs: 5 },
      undefined,
      0,
    );
    const out = decideRound(
      initialRoundState(o),
      {
        samples: [round(1, 100, 90)],
        pageSize: 4096,
        estimate: { ...slow, elapsedMs: 10 },
        autoConverge: 'engine',
      },
      o,
    );
    expect(out.decision).toEqual({ action: 'abort', reason: 'timeout' });
    expect(
      drive([900, 900, 900], {
        downtimeRamp: { startMs: 1, stepMs: 1, maxMs: 99 },
        maxRounds: 3,
      }).outcomes.at(-1)!.decision,
    ).toEqual({ action: 'switchover', reason: 'max-rounds' });
  });

  it('a ramp starts at START; an explicit different --downtime-limit is refused, START > MAX too', () => {
    const ramp = { startMs: 150, stepMs: 150, maxMs: 1050 };
    expect(resolveOptions({ downtimeRamp: ramp }, 'proxmox', 1 << 30).downtimeLimitMs).toBe(150);
    expect(() => resolveOptions({ downtimeRamp: ramp, downtimeLimitMs: 300 }, undefined, 0)).toThrow(
      /downtimeRamp/,
    );
    expect(() => resolveOptions({ downtimeRamp: { ...ramp, startMs: 2000 } }, undefined, 0)).toThrow(
      /START must not exceed MAX/,
    );
  });

  const dirtySeries = fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 40 });

  it('property: doubling never takes the limit past its maximum, and only on rounds without progress', () => {
    fc.assert(
      fc.property(dirtySeries, fc.integer({ min: 1, max: 3_600_000 }), (dirty, start) => {
        const { outcomes } = drive(
          dirty,
          { onStall: 'double-downtime', downtimeLimitMs: start },
          'engine',
          never,
        );
        let limit = start;
        for (const [i, x] of outcomes.entries()) {
          if (x.downtime) {
            expect(x.downtime.cause).toBe('double-downtime');
            expect(x.downtime.fromMs).toBe(limit);
            expect(x.downtime.toMs).toBeLessThanOrEqual(Math.max(MAX_DOWNTIME_LIMIT_MS, start));
            expect(x.downtime.toMs).toBeGreaterThan(limit);
            expect(i).toBeGreaterThan(0);
            expect(dirty[i]!).toBeGreaterThanOrEqual(dirty[i - 1]!);
            limit = x.downtime.toMs;
          }
          expect(x.state.downtimeLimitMs).toBe(limit);
        }
      }),
    );
  });

  it('property: no stall is declared before stallRounds + 2 rounds, nor non-convergence before rounds + 1', () => {
    fc.assert(
      fc.property(
        dirtySeries,
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 10 }),
        (dirty, sr, nr) => {
          const { outcomes } = drive(dirty, { stallRounds: sr, nonConvergenceRounds: nr }, 'engine', never);
          for (const [i, x] of outcomes.entries()) {
            if (x.stalled) expect(i + 1).toBeGreaterThanOrEqual(sr + 2);
            if (x.events.some((e) => e.startsWith('not converging')))
              expect(i + 1).toBeGreaterThanOrEqual(nr + 1);
          }
        },
      ),
    );
  });

  it('property: the ramp rises by at most STEP per round, never past MAX, and holds every other stall action', () => {
    const rampArb = fc
      .tuple(
        fc.integer({ min: 1, max: 5000 }),
        fc.integer({ min: 1, max: 5000 }),
        fc.integer({ min: 0, max: 20_000 }),
      )
      .map(([startMs, stepMs, extra]) => ({ startMs, stepMs, maxMs: startMs + extra }));
    const actions = fc.constantFrom(
      ...(['continue', 'auto-converge', 'postcopy', 'abort', 'double-downtime'] as const),
    );
    fc.assert(
      fc.property(dirtySeries, rampArb, actions, (dirty, ramp, onStall) => {
        const { outcomes } = drive(
          dirty,
          { downtimeRamp: ramp, onStall, stallRounds: 1, onNonConvergence: 'abort' },
          'engine',
          never,
        );
        let limit = ramp.startMs;
        for (const x of outcomes) {
          const holding = limit < ramp.maxMs;
          if (holding) {
            // Converging still ends the migration; no stall or non-convergence action does.
            expect(['next-round', 'switchover:converged']).toContain(
              x.decision.action === 'switchover' ? `switchover:${x.decision.reason}` : x.decision.action,
            );
            expect(x.throttle).toBeUndefined();
            expect(x.stalled).toBe(false);
            if (x.downtime) {
              expect(x.downtime.cause).toBe('ramp');
              expect(x.downtime.toMs - x.downtime.fromMs).toBeLessThanOrEqual(ramp.stepMs);
              expect(x.downtime.toMs).toBeLessThanOrEqual(ramp.maxMs);
            }
          } else if (x.downtime) {
            expect(x.downtime.cause).toBe('double-downtime');
          }
          limit = x.state.downtimeLimitMs;
        }
      }),
    );
  });

  it('a round without progress switches over when its set fits the limit at the stop-and-copy rate', () => {
    // 10 000 pages/s unlimited: 900 pages are 90 ms, under the 300 ms limit; at the live 100 pages/s they are 9 s.
    const fast: RoundEstimate = { ...slow, switchoverBandwidth: 10_000 * 4096 };
    const { outcomes } = drive([900, 900, 900], {}, 'engine', fast);
    expect(outcomes.map((x) => x.decision)).toEqual([
      { action: 'next-round' }, // round 1 says nothing about progress
      { action: 'switchover', reason: 'no-progress' },
    ]);
    expect(events(outcomes)).toContain(
      "no progress in round 2: its 900 dirty pages fit the 300 ms limit at the stop-and-copy's own rate " +
        '(39 MiB/s), and more rounds would only resend them',
    );
    // While rounds shrink the set, they go on (they leave less to pause with).
    expect(
      drive([900, 800, 700, 600], {}, 'engine', fast).outcomes.every(
        (x) => x.decision.action === 'next-round',
      ),
    ).toBe(true);
    // A set over the limit at that rate too: the rounds go on to max-rounds, as before.
    expect(drive([5000, 5000, 5000], { maxRounds: 3 }, 'engine', fast).outcomes.at(-1)!.decision).toEqual({
      action: 'switchover',
      reason: 'max-rounds',
    });
    // QEMU decides convergence itself: never there.
    expect(drive([900, 900, 900], { maxRounds: 3 }, 'qemu').outcomes.at(-1)!.decision).toEqual({
      action: 'switchover',
      reason: 'max-rounds',
    });
  });

  it('the no-progress switch-over leaves rounds without progress to what the user asked to act on them', () => {
    const fast: RoundEstimate = { ...slow, switchoverBandwidth: 10_000 * 4096 };
    const asked: Partial<MigrationOptions>[] = [
      { onStall: 'double-downtime' },
      { onStall: 'postcopy', stallRounds: 5 },
      { onStall: 'abort', stallRounds: 5 },
      { onStall: 'auto-converge' },
      { onNonConvergence: 'postcopy', nonConvergenceRounds: 5 },
      { autoConverge: true },
      { dirtyLimit: true },
      { downtimeRamp: { startMs: 300, stepMs: 100, maxMs: 1000 } },
      { strategy: 'hybrid', postcopyAfterRounds: 10 },
    ];
    for (const o of asked) {
      const { outcomes } = drive([900, 900], o, 'engine', fast);
      expect({ o, decision: outcomes[1]!.decision }).toEqual({ o, decision: { action: 'next-round' } });
    }
    // The ramp at its MAX lets the others act as without it: the rule too.
    const ramp = { startMs: 100, stepMs: 200, maxMs: 300 };
    expect(drive([900, 900, 900], { downtimeRamp: ramp }, 'engine', fast).outcomes.at(-1)!.decision).toEqual({
      action: 'switchover',
      reason: 'no-progress',
    });
  });

  it("availSwitchoverBandwidth is QEMU's: it replaces the measured bandwidth in the convergence check", () => {
    const fast: RoundEstimate = { ...slow, switchoverBandwidth: 10_000 * 4096 };
    // 900 pages at 10 000 pages/s fit 300 ms: converged at round 1, as QEMU would.
    expect(drive([900], { availSwitchoverBandwidth: 10_000 * 4096 }).outcomes[0]!.decision).toEqual({
      action: 'switchover',
      reason: 'converged',
    });
    // Set to the live link, it brings back the rounds without progress running to max-rounds.
    const live = drive(
      [900, 900, 900],
      { availSwitchoverBandwidth: 100 * 4096, maxRounds: 3 },
      'engine',
      fast,
    );
    expect(live.outcomes.at(-1)!.decision).toEqual({ action: 'switchover', reason: 'max-rounds' });
  });

  it('DEFAULT_OPTIONS has no ramp', () => {
    expect(DEFAULT_OPTIONS.downtimeRamp).toBeNull();
  });
});
