import { describe, expect, it } from 'vitest';
import { arrivedUtilisation } from './arrival-cpu.js';

/** 100-ms samples from t = 0 to 2500 ms, the guest using `ms` of CPU in each. */
const samples = (ms: (end: number) => number) =>
  Array.from({ length: 25 }, (_, i) => ({ at: (i + 1) * 100, intervalMs: 100, cpuMs: ms((i + 1) * 100) }));

describe('an arrived guest measured on its target', () => {
  it('is the tail’s CPU over its length ÷ cpu-scale, not the whole interval’s (the migration’s toll left out)', () => {
    // Until 1000 ms the guest migrated (paused, 1 ms per sample); from its first CAP at 1000 ms it runs at 2 % of a
    // core: 40 % of a VM at cpu-scale 0.05.
    const s = samples((end) => (end <= 1000 ? 1 : 2));
    const u = arrivedUtilisation(s, 1000, 2500, 2500, 0.05);
    expect(u).toBeCloseTo(0.4, 9);
    // The whole interval would say 32 %.
    expect(s.reduce((ms, x) => ms + x.cpuMs, 0) / 2500 / 0.05).toBeCloseTo(0.32, 9);
  });

  it('is null (held) when the tail is shorter than a quarter of the interval', () => {
    const s = samples(() => 2);
    expect(arrivedUtilisation(s, 2000, 2500, 2500, 0.05)).toBeNull();
    expect(arrivedUtilisation(s, 1850, 2500, 2500, 0.05)).toBeNull();
    expect(arrivedUtilisation(s, 1800, 2500, 2500, 0.05)).toBeCloseTo(0.4, 9);
  });

  it('leaves out the sample the CAP fell in: its unthrottled part is not the trace', () => {
    // Uncapped until 1030 ms (60 ms of CPU in the sample that ends at 1100), capped at 2 % of a core after.
    const s = samples((end) => (end <= 1000 ? 1 : end === 1100 ? 60 : 2));
    expect(arrivedUtilisation(s, 1030, 2500, 2500, 0.05)).toBeCloseTo(0.4, 9);
  });
});
