import { describe, expect, it } from 'vitest';
import { CpuFeedback } from './cpu-feedback.js';

describe('CpuFeedback: a guest granted less CPU than its trace asks gets more next time', () => {
  it('converges on the gain that makes a machine delivering 70 % of the grant deliver the trace', () => {
    const f = new CpuFeedback(1);
    const asked = 0.4;
    for (let k = 0; k < 60; k++) f.update(0, asked, 0.7 * asked * f.gain(0));
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
  it('averages the warm-up rounds (steps 1, ½, ⅓): the gain is the geometric mean of their corrections', () => {
    const f = new CpuFeedback(1);
    const factors = [1.6, 1.4, 1.5];
    for (const [round, x] of factors.entries()) f.update(0, 0.5, 0.5 * x * f.gain(0), 1 / (round + 1));
    expect(f.gain(0)).toBeCloseTo(1 / Math.cbrt(1.6 * 1.4 * 1.5), 9);
  });
  it('takes the floor off: a machine that burns a floor plus a share of the grant delivers the trace at every level', () => {
    // What a guest burns is affine in its grant (1.6 points granted nothing on the quiet LR-MMT-1.2 runs). A gain
    // alone settled on a VM's usual level under-delivered it 1.5 points at 40–70 % and over-delivered below 5 %.
    const floor = 0.016;
    const machine = (granted: number): number => floor + 0.85 * granted;
    const f = new CpuFeedback(1);
    f.setFloor(0, machine(0));
    for (let k = 0; k < 40; k++) f.update(0, 0.2, machine(f.grant(0, 0.2)));
    for (const u of [0.05, 0.2, 0.5, 0.9]) expect(machine(f.grant(0, u))).toBeCloseTo(u, 4);
    expect(f.grant(0, 0.01)).toBe(0);
  });
  it("starts a guest that had nothing to steer by in the warm-up at the measured guests' mean gain", () => {
    // vm6 traced 0 % for 13 intervals, then rose: its gain went 1.00 → 0.86 over 10 intervals (0.8 settled), and it
    // was over-delivered by 1.3 points meanwhile.
    const f = new CpuFeedback(3);
    f.update(0, 0.4, 0.4 / 0.8, 1);
    f.update(1, 0.4, 0.4 / 0.9, 1);
    f.update(2, 0, 0.01, 1);
    f.seedUnmeasured();
    expect(f.gain(2)).toBeCloseTo(Math.sqrt(0.8 * 0.9), 9);
    expect(f.gain(0)).toBeCloseTo(0.8, 9);
    // Its later updates are quarter steps: one 20 % over takes a quarter of it off.
    f.update(2, 0.3, 0.3 * 1.2);
    expect(f.gain(2)).toBeCloseTo(Math.sqrt(0.8 * 0.9) / 1.2 ** 0.25, 9);
  });
  it('adds little noise of its own: on white measurement noise the delivered sd grows by less than 10 %', () => {
    // Each interval's error comes back in the next one as the step times it; at a step of ½ the delivered sd was
    // 1.15 × the machine's own noise.
    const f = new CpuFeedback(1);
    let seed = 7;
    const noise = (): number => {
      // A small deterministic generator (Park–Miller), a sum of four uniforms: about normal, sd 1.
      let s = 0;
      for (let i = 0; i < 4; i++) {
        seed = (seed * 48271) % 2147483647;
        s += seed / 2147483647 - 0.5;
      }
      return s * Math.sqrt(3);
    };
    const sd = (xs: number[]): number => {
      const m = xs.reduce((a, x) => a + x, 0) / xs.length;
      return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / xs.length);
    };
    const own: number[] = [];
    const delivered: number[] = [];
    const asked = 0.5;
    for (let k = 0; k < 20_000; k++) {
      const e = 0.05 * noise();
      const got = asked * f.gain(0) * 0.7 * (1 + e);
      own.push(e);
      delivered.push(got / asked - 1);
      f.update(0, asked, got);
    }
    expect(sd(delivered) / sd(own)).toBeLessThan(1.1);
  });
});
