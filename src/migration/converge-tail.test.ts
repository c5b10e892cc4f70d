import { afterEach, describe, expect, it, vi } from 'vitest';
import { anotherRoundPays, expectedNextDirty, TAIL_LIMITS, type TailInput } from './converge-tail.js';
import { resolveOptions } from './options.js';
import type { RoundSample } from './policy.js';
import { decideRound, initialRoundState, type RoundEstimate } from './round-decision.js';
import { runSource } from './source/index.js';
import { destroyTestGuests, FakeDestination, sourceRun, testGuest } from './testing/index.js';

const MiB = 1024 * 1024;
const PAGE = 4096;
/** 32 MiB/s: 8192 whole pages a second. */
const BW = 32 * MiB;

const sample = (round: number, pagesSent: number, durationMs: number, dirtyPages: number): RoundSample => ({
  round,
  pagesSent,
  bytesSent: pagesSent * PAGE,
  durationMs,
  dirtyPages,
});

const tail = (samples: RoundSample[], over: Partial<TailInput> = {}): boolean =>
  anotherRoundPays({ samples, bytesPerPage: PAGE, bandwidth: BW, tailRounds: 0, maxRounds: 0, ...over });

describe('the converged tail: another live round while it shrinks the dirty set to 3/4 or less', () => {
  // The engines experiment's whole-page config: 3517 pages in 427 ms left 808 dirty (2000 pages/s written).
  const round2 = sample(2, 3517, 427, 808);

  it('predicts the next set from the last round’s dirty rate and the time to send this one', () => {
    // 808 pages at 8192 pages/s: 98.6 ms; at 808/427 pages per ms: ~187 pages.
    expect(expectedNextDirty(round2, PAGE, BW)).toBeCloseTo((808 / 427) * ((808 / 8192) * 1000), 6);
  });

  it('a uniform writer at a quarter of the link rate: another round, then another, down to the floor', () => {
    expect(tail([sample(1, 65536, 2024, 3517), round2])).toBe(true);
    // ~190 pages after a 99 ms round: 760 KiB, still above the 256 KiB floor, and it shrinks by 4.
    expect(tail([round2, sample(3, 808, 99, 190)])).toBe(true);
    // 50 pages = 200 KiB: the stop-and-copy is short already.
    expect(tail([sample(3, 808, 99, 190), sample(4, 190, 24, 50)])).toBe(false);
  });

  it('a writer at 5000 pages/s (0.6 of each set left): the tail goes on', () => {
    // 2100 pages after a 427 ms round of 3500: 4.9 pages/ms over the 256 ms the next round takes: ~1260 ≤ 1575.
    expect(tail([sample(2, 8000, 977, 3500), sample(3, 3500, 427, 2100)])).toBe(true);
  });

  it('a set that does not shrink to 3/4 (a hot set rewritten about as fast as it is sent): no tail', () => {
    expect(tail([sample(1, 65536, 2000, 3000), sample(2, 3000, 370, 2500)])).toBe(false);
    // Predicted not to: 2000 pages at 8192/s take 244 ms, at 10 pages/ms that is 2440 left.
    expect(tail([sample(1, 65536, 200, 2000)])).toBe(false);
  });

  it('bounded: the tail-round cap, max-rounds, an empty set', () => {
    const s = [sample(1, 65536, 2024, 3517), round2];
    expect(tail(s, { tailRounds: TAIL_LIMITS.maxTailRounds })).toBe(false);
    expect(tail(s, { maxRounds: 2 })).toBe(false);
    expect(tail(s, { maxRounds: 3 })).toBe(true);
    expect(tail([sample(2, 100, 10, 0)])).toBe(false);
  });

  it('decideRound: a converged round goes on only with `tail`, counts it, and says why', () => {
    const o = resolveOptions({ maxRounds: 0, maxBandwidth: BW }, undefined, 256 * MiB);
    const estimate: RoundEstimate = { bandwidth: BW, bytesPerPage: PAGE, elapsedMs: 0, msSinceProgress: 0 };
    const samples = [sample(1, 65536, 2024, 3517), round2];
    const input = { samples, pageSize: PAGE, estimate, autoConverge: 'engine' as const };
    // Without the tail (the QEMU bridge, the model): 98.6 ms expected ≤ 300 ms, switch over now.
    expect(decideRound(initialRoundState(o), input, o).decision).toEqual({
      action: 'switchover',
      reason: 'converged',
    });
    const out = decideRound(initialRoundState(o), { ...input, tail: TAIL_LIMITS }, o);
    expect(out.decision).toEqual({ action: 'next-round' });
    expect(out.state.tailRounds).toBe(1);
    expect(out.events.join('\n')).toMatch(
      /converged with 808 dirty pages; another live round is expected to leave about 187, so it runs before/,
    );
    // At the cap, it switches over.
    const capped = { ...out.state, tailRounds: TAIL_LIMITS.maxTailRounds };
    expect(decideRound(capped, { ...input, tail: TAIL_LIMITS }, o).decision.action).toBe('switchover');
  });
});

describe('the engine runs the tail (real source, scripted dirty log)', () => {
  afterEach(async () => {
    vi.restoreAllMocks();
    await destroyTestGuests();
  });

  it('a converged round that leaves 300 pages is followed by one over them; the stop-and-copy gets what that one left', async () => {
    // A paused guest whose RAM is not zero (round 1 sends every page), and a dirty log that reports, after round 1,
    // 300 pages and after round 2, 40: the rates cancel out of the prediction (300 × 300 / 1024 pages ≈ 88 ≤ 150),
    // so the test does not depend on how fast this machine sends.
    const guest = await testGuest();
    const data = new Uint8Array(PAGE).fill(7);
    for (let p = 0; p < guest.ram.pageCount; p++) guest.ram.writePage(p, data);
    const pages = (from: number, n: number) => Uint32Array.from({ length: n }, (_, i) => from + i);
    const script = [new Uint32Array(0), pages(100, 300), pages(200, 40)];
    vi.spyOn(guest.dirtyLog, 'sync').mockImplementation(() => script.shift() ?? new Uint32Array(0));
    const d = new FakeDestination({});
    try {
      const report = await runSource(sourceRun(guest, d.connect(), { maxRounds: 5 }));
      expect(report.status).toBe('completed');
      expect(report.verified).toBe(true);
      expect(report.rounds).toBe(2);
      expect(report.perRound.map((r) => r.pagesSent)).toEqual([guest.ram.pageCount, 300]);
      expect(report.dirtyPages).toBe(40); // before the tail: 300, sent while paused
      expect(report.events.join('\n')).toMatch(/converged with 300 dirty pages; another live round/);
      expect(report.switchoverReason).toBe('converged');
    } finally {
      d.close();
    }
  });
});
