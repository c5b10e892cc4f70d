import { describe, expect, it } from 'vitest';
import { CpuFeedback } from './cpu-feedback.js';

describe('CpuFeedback: a guest granted less CPU than its trace asks gets more next time', () => {
  it('converges on the gain that makes a machine delivering 70 % of the grant deliver the trace', () => {
    const f = new CpuFeedback(1);
    const asked = 0.4;
    for (let k = 0; k < 20; k++) f.update(0, asked, 0.7 * asked * f.gain(0));
    expect(f.gain(0)).toBeCloseTo(1 / 0.7, 3);
  });
  it('ignores intervals too small to measure or with nothing delivered, stays within bounds, and can be off', () => {
    const f = new CpuFeedback(2);
    f.update(0, 0.01, 0.001);
    f.update(0, 0.5, 0);
    expect(f.gain(0)).toBe(1);
    for (let k = 0; k < 50; k++) f.update(1, 0.5, 0.01);
    expect(f.gain(1)).toBe(4);
    const off = new CpuFeedback(1, false);
    off.update(0, 0.5, 0.25);
    expect(off.gain(0)).toBe(1);
  });
  it('corrects the whole error in one full step (the warm-up before t = 0)', () => {
    const f = new CpuFeedback(1);
    f.update(0, 0.5, 0.75, 1);
    expect(f.gain(0)).toBeCloseTo(2 / 3, 6);
  });
});
