/** The sweep's statistics: Welch's interval and the repetitions a noisy effect needs. */
import { describe, expect, it } from 'vitest';
import {
  claimRows,
  meanSd,
  paired,
  repetitionsFor,
  type SweepPoint,
  sweepPlan,
  sweepRows,
  t95,
  tInterval,
  welch,
} from './power-sweep.js';

const point = (
  p: Partial<SweepPoint> & Pick<SweepPoint, 'sweep' | 'level' | 'mode' | 'deltas'>,
): SweepPoint => ({
  label: `${p.sweep} ${p.level}`,
  during: p.deltas.map(() => 130),
  seconds: p.deltas.map(() => 5),
  joules: p.deltas.map(() => 600),
  utilisation: p.deltas.map(() => 0.5),
  load: 1,
  ...p,
});

describe('power sweep statistics', () => {
  it('Student t quantiles and mean ± sd', () => {
    expect(t95(1)).toBeCloseTo(12.706, 3);
    expect(t95(4)).toBeCloseTo(2.776, 3);
    expect(t95(100)).toBe(1.96);
    const m = meanSd([1, 2, 3, 4]);
    expect(m.mean).toBe(2.5);
    expect(m.sd).toBeCloseTo(Math.sqrt(5 / 3), 12);
  });

  it('resolves a clear difference and says how many repetitions a noisy one needs', () => {
    const clear = welch([10, 10.2, 9.9, 10.1], [5, 5.1, 4.9, 5.2]);
    expect(clear.resolved).toBe(true);
    expect(clear.lo).toBeGreaterThan(4);
    expect(clear.hi).toBeLessThan(6);
    const noisy = welch([1, 3, -1, 2], [0, 2, -2, 1.5]);
    expect(noisy.resolved).toBe(false);
    expect(noisy.lo).toBeLessThan(0);
    expect(noisy.hi).toBeGreaterThan(0);
    // diff 0.875, pooled sd ≈ 1.753: n = 2·(2.8·σ/δ)² ≈ 63 per side by the normal approximation; with the t
    // quantile of 2n − 2 degrees of freedom, 64 (95 % two-sided, 80 % power).
    expect(noisy.diff).toBeCloseTo(0.875, 12);
    expect(noisy.repsNeeded).toBe(64);
  });

  it('rows: the saving of a mode is against no capping at the same point', () => {
    const rows = sweepRows([
      {
        sweep: 'utilisation',
        level: 1,
        label: '100 %',
        mode: 'none',
        deltas: [3, 3.2, 2.8],
        during: [150, 150, 150],
        seconds: [8, 8, 8],
        joules: [1200, 1200, 1200],
        utilisation: [0.9, 0.9, 0.9],
        load: 1,
      },
      {
        sweep: 'utilisation',
        level: 1,
        label: '100 %',
        mode: 'dvfs',
        deltas: [-11, -11.2, -10.8],
        during: [136, 136, 136],
        seconds: [9, 9, 9],
        joules: [1220, 1220, 1220],
        utilisation: [0.9, 0.9, 0.9],
        load: 1,
      },
    ]);
    expect(rows[0]!.saving).toBe('');
    expect(rows[1]!.saving).toMatch(/^14\.0 W \[/);
    expect(rows[1]!.resolved).toBe('yes');
  });

  it('pairs repetitions: a drift shared by both modes cancels, which Welch cannot see', () => {
    // Each repetition's level drifts by ±5 W (the machine's load), the mode saves 1 W ± 0.1 in every repetition.
    const drift = [0, 5, -5, 3, -3];
    const none = drift.map((d) => 2 + d);
    const mode = drift.map((d, i) => 1 + d + (i % 2 ? 0.1 : -0.1));
    const p = paired(none, mode);
    expect(p.n).toBe(5);
    expect(p.resolved).toBe(true);
    expect(p.lo).toBeGreaterThan(0.8);
    expect(p.hi).toBeLessThan(1.2);
    expect(welch(none, mode).resolved).toBe(false);
    // Unequal lengths: Welch.
    expect(paired([1, 2, 3], [0, 1]).diff).toBeCloseTo(welch([1, 2, 3], [0, 1]).diff, 12);
  });

  it('t interval of per-repetition differences and the repetitions that would resolve a noisy one', () => {
    const x = tInterval([1, -1, 2, 0]);
    // mean 0.5, sd √(5/3) ≈ 1.291, t(3) = 3.182: half-width 2.054.
    expect(x.diff).toBe(0.5);
    expect(x.hi - x.diff).toBeCloseTo((3.182 * Math.sqrt(5 / 3)) / 2, 3);
    expect(x.resolved).toBe(false);
    // (2.8 · 1.291 / 0.5)² = 52.3 → 53 (t of 52 degrees of freedom ≈ 1.96: the normal figure).
    expect(x.repsNeeded).toBe(53);
    // Few repetitions: an effect as large as its spread needs 10, not the normal approximation's (2.8)² ≈ 8
    // (t(8) = 2.306: (2.306 + 0.84)/√9 = 1.05 > 1; t(9) = 2.262: 3.10/√10 = 0.98 < 1).
    expect(repetitionsFor(1, 1, (n) => n - 1)).toBe(10);
  });

  it('plans every chosen sweep, with the utilisation levels asked for', () => {
    const all = sweepPlan({ quick: true, realCores: 2 });
    expect(all.map((p) => p.sweep)).toEqual([
      'utilisation',
      'utilisation',
      'contention',
      'contention',
      'ratio',
    ]);
    // 100 % of 2 cores over 4 VMs: CAP 50 each; 40 %: CAP 20.
    expect(all.slice(0, 2).map((p) => p.baseCap)).toEqual([20, 50]);
    expect(all.slice(2, 4).map((p) => p.vms)).toEqual([2, 6]);
    expect(all[4]!.runs.map((r) => r.kind)).toEqual(['twolf-like', 'gap-like']);
    const u = sweepPlan({ quick: true, realCores: 2, sweeps: ['utilisation'], levels: [0.4, 0.7, 1] });
    expect(u.map((p) => p.level)).toEqual([0.4, 0.7, 1]);
    expect(u.every((p) => p.runs.length === 3)).toBe(true);
  });

  it('claims: DVFS saving rising with utilisation, CAP losing its effect, and the gap / twolf ratio', () => {
    const rows = claimRows([
      point({ sweep: 'utilisation', level: 0.4, mode: 'none', deltas: [1, 2, 1.5] }),
      point({ sweep: 'utilisation', level: 0.4, mode: 'dvfs', deltas: [-4, -3, -3.5] }),
      point({ sweep: 'utilisation', level: 0.4, mode: 'cap', deltas: [0, 1, 0.5] }),
      point({ sweep: 'utilisation', level: 1, mode: 'none', deltas: [1, 2, 1.5] }),
      point({ sweep: 'utilisation', level: 1, mode: 'dvfs', deltas: [-12, -11.2, -11.4] }),
      point({ sweep: 'utilisation', level: 1, mode: 'cap', deltas: [-2, -1, -1.5] }),
      point({ sweep: 'contention', level: 2, mode: 'none', deltas: [1, 1.2, 0.8] }),
      point({ sweep: 'contention', level: 2, mode: 'cap', deltas: [-8, -8.5, -7.7] }),
      point({ sweep: 'contention', level: 6, mode: 'none', deltas: [1, 1.2, 0.8] }),
      point({ sweep: 'contention', level: 6, mode: 'cap', deltas: [1, 1.4, 0.4] }),
      point({
        sweep: 'ratio',
        level: 0,
        mode: 'none',
        kind: 'twolf-like',
        deltas: [0, 0, 0],
        seconds: [4, 5, 4],
      }),
      point({
        sweep: 'ratio',
        level: 0,
        mode: 'none',
        kind: 'gap-like',
        deltas: [0, 0, 0],
        seconds: [10, 12.5, 10],
      }),
    ]);
    const byContrast = (re: RegExp) => rows.find((r) => re.test(String(r[1])))!;
    const c1 = byContrast(/at 100 % − at 40 %/);
    expect(c1[0]).toMatch(/^1:/);
    expect(c1[4]).toMatch(/^8\.0 W \[/);
    expect(c1[5]).toBe('supported');
    const c2 = byContrast(/with 2 VMs − with 6 VMs/);
    expect(c2[5]).toBe('supported');
    expect(byContrast(/CAP 15 saving, 6 VMs/)[5]).toMatch(/^unresolved: ≈\d+ repetitions/);
    const ratio = rows.find((r) => r[0] === 'migration time ratio gap / twolf')!;
    expect(ratio[4]).toMatch(/^2\.50 \[2\.50, 2\.50\]$/);
    expect(ratio[5]).toBe('gap takes longer');
  });
});
