/** The sweep's statistics: Welch's interval and the repetitions a noisy effect needs. */
import { describe, expect, it } from 'vitest';
import { meanSd, sweepRows, t95, welch } from './power-sweep.js';

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
    // diff 0.875, pooled sd ≈ 1.753: n = 2·(2.8·σ/δ)² ≈ 63 per side (95 % two-sided, 80 % power).
    expect(noisy.diff).toBeCloseTo(0.875, 12);
    expect(noisy.repsNeeded).toBe(63);
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
});
