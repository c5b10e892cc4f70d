import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  i7920DvfsModel,
  linearPowerModel,
  SPECPOWER_TABLES,
  specPowerModel,
  specPowerServer,
} from './models.js';

describe('SPECpower models (CloudSim interpolation)', () => {
  const g4 = specPowerServer('hpProLiantMl110G4');
  const g5 = specPowerServer('hpProLiantMl110G5');

  it('returns the table values at every 10 % point', () => {
    for (const [server, table] of Object.entries(SPECPOWER_TABLES)) {
      const m = specPowerModel(server, table);
      for (let i = 0; i <= 10; i++) expect(m.power(i / 10)).toBeCloseTo(table[i]!, 9);
    }
  });

  it('interpolates linearly between neighbouring points', () => {
    // G4: 50 % → 102 W, 60 % → 106 W; 55 % is half-way.
    expect(g4.power(0.55)).toBeCloseTo(104, 9);
    // G5: 0 % → 93.7 W, 10 % → 97 W; 2.5 % is a quarter of the way.
    expect(g5.power(0.025)).toBeCloseTo(93.7 + 3.3 / 4, 9);
    expect(g5.power(0.93)).toBeCloseTo(133 + 0.3 * 2, 9);
  });

  it('treats 0 % as idle (the model does not switch hosts off) and reports max/idle', () => {
    expect(g4.power(0)).toBe(86);
    expect(g4.idlePower).toBe(86);
    expect(g5.maxPower).toBe(135);
  });

  it('rejects utilisation outside [0, 1] like CloudSim', () => {
    expect(() => g4.power(1.0001)).toThrow(RangeError);
    expect(() => g4.power(-0.01)).toThrow(RangeError);
    expect(() => g4.power(Number.NaN)).toThrow(RangeError);
  });

  it('is monotone and bounded by the table ends', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (a, b) => {
          const [lo, hi] = a <= b ? [a, b] : [b, a];
          expect(g5.power(lo)).toBeLessThanOrEqual(g5.power(hi) + 1e-9);
          expect(g5.power(lo)).toBeGreaterThanOrEqual(93.7 - 1e-9);
          expect(g5.power(hi)).toBeLessThanOrEqual(135 + 1e-9);
        },
      ),
    );
  });

  it('gives the NPA benchmark: 400 G4 + 400 G5 at full load = 100.8 kW', () => {
    expect(400 * g4.power(1) + 400 * g5.power(1)).toBeCloseTo(100_800, 6);
  });
});

describe('linear model', () => {
  it('is idle + (max − idle)·u', () => {
    const m = linearPowerModel(100, 250);
    expect(m.power(0)).toBe(100);
    expect(m.power(0.4)).toBeCloseTo(160, 9);
    expect(m.power(1)).toBe(250);
    expect(() => linearPowerModel(300, 200)).toThrow(RangeError);
  });
});

describe('DVFS model calibrated to the seed i7-920', () => {
  const m = i7920DvfsModel();

  it('has 4 cores and 9 DVFS states from 1.6 to 2.67 GHz', () => {
    expect(m.cores).toBe(4);
    expect(m.states).toHaveLength(9);
    expect(m.states[0]!.ghz).toBeCloseTo(1.6, 2);
    expect(m.states[8]!.ghz).toBeCloseTo(2.67, 2);
  });

  it('draws ≈150 W busy at the top state and ≈135.6 W busy at 1.7 GHz', () => {
    expect(m.powerAt(1, 8)).toBeCloseTo(150, 6);
    expect(m.maxPower).toBeCloseTo(150, 6);
    expect(m.powerAt(1, m.stateFor(1.7))).toBeCloseTo(135.6, 6);
    expect(m.states[m.stateFor(1.7)]!.ghz).toBeCloseTo(1.733, 2);
  });

  it('follows C·V²·f: dynamic power scales with V² and f, static power is paid when idle', () => {
    const dyn = (s: number) => m.powerAt(1, s) - m.staticPower;
    const a = m.states[2]!;
    const b = m.states[7]!;
    expect(dyn(7) / dyn(2)).toBeCloseTo((b.volts ** 2 * b.ghz) / (a.volts ** 2 * a.ghz), 9);
    expect(m.powerAt(0, 5)).toBeCloseTo(m.staticPower, 9);
    expect(m.staticPower).toBeGreaterThan(0);
    expect(m.powerAt(0.5, 8)).toBeCloseTo((m.staticPower + 150) / 2, 9);
  });

  it('is below TDP-plus-platform and saves more at higher load', () => {
    const saving = (u: number) => m.powerAt(u, 8) - m.powerAt(u, 1);
    expect(saving(1)).toBeGreaterThan(saving(0.5));
    expect(saving(0)).toBeCloseTo(0, 9);
    expect(() => m.powerAt(0.5, 9)).toThrow(RangeError);
  });
});
