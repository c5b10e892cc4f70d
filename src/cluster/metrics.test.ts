import { describe, expect, it } from 'vitest';
import { MetricsAccumulator } from './metrics.js';

describe('MetricsAccumulator (the simulator livemig-mode accounting on measured values)', () => {
  const watts = [(u: number) => 100 + 100 * u, (u: number) => 100 + 100 * u];
  it('bills on hosts by the trapezoid, nothing for off hosts, and counts shutdowns as the simulator does', () => {
    const m = new MetricsAccumulator(2, [true, false]);
    expect(m.shutdowns).toBe(1); // host 1 empty at t = 0
    m.interval(300, watts, [0.5, 0], [0.7, 0], [700, 0], [1000, 1000], [false, false]);
    expect(m.energyWs).toBeCloseTo(((150 + 170) / 2) * 300);
    expect(m.shutdowns).toBe(2);
    expect(m.activeTime).toBe(300);
    m.interval(300, watts, [0.7, 0], [0.9, 0], [1200, 0], [1000, 1000], [false, false]);
    expect(m.energyWs).toBeCloseTo(((150 + 170) / 2) * 300); // off: no energy, no SLA time
    const r = m.result([]);
    expect(r.slatah).toBe(0);
    expect(r.energyKWh).toBeCloseTo(48_000 / 3.6e6);
  });
  it('counts SLA violation time when demand exceeds the host', () => {
    const m = new MetricsAccumulator(1, [true]);
    m.interval(300, watts.slice(0, 1), [1], [1], [1500], [1000], [true]);
    m.interval(300, watts.slice(0, 1), [1], [0.5], [500], [1000], [true]);
    expect(m.result([]).slatah).toBe(0.5);
  });
  it('bills a host switched on by an incoming migration from the interval it starts in', () => {
    const m = new MetricsAccumulator(2, [true, false]);
    m.switchedOn(1);
    m.interval(300, watts, [0.5, 0], [0.5, 0.2], [500, 200], [1000, 1000], [true, true]);
    expect(m.energyWs).toBeCloseTo(150 * 300 + ((100 + 120) / 2) * 300);
    expect(m.activeTime).toBe(600);
  });
});
