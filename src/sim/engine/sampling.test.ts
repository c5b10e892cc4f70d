import { describe, expect, it } from 'vitest';
import { type Datacenter, HP_ML110_G5, parsePolicy, type SimOptions } from '../config.js';
import type { Workload } from '../workload.js';
import { utilisationAt } from './accounting.js';
import { simulate } from './index.js';
import { meanWeight, samplingOf } from './sampling.js';
import { SimState } from './state.js';

/** One row of percents per VM. */
function workload(rows: number[][]): Workload {
  const spv = rows[0]!.length;
  return {
    name: 'rows',
    vmNames: rows.map((_, i) => `vm${i}`),
    vms: rows.length,
    samplesPerVm: spv,
    samples: Uint8Array.from(rows.flat()),
  };
}

/** Two G5 hosts; every VM 1500 MIPS (one fits a 2660-MIPS PE at full load). */
const dc: Datacenter = {
  hostTypes: [HP_ML110_G5],
  hostTypeOf: new Uint8Array(2),
  vmTypes: [{ mips: 1500, ramMb: 512, bwKbps: 100_000 }],
};

const thr = parsePolicy('thr-mmt-0.8');

describe('livemig sampling: the interval mean a monitor measures', () => {
  it('defaults: instant in cloudsim mode, mean in livemig mode, instant on measured utilisation', () => {
    expect(samplingOf({ mode: 'cloudsim', policy: thr })).toBe('instant');
    expect(samplingOf({ mode: 'livemig', policy: thr })).toBe('mean');
    expect(samplingOf({ mode: 'livemig', policy: thr, utilisation: [0.5] })).toBe('instant');
    expect(samplingOf({ mode: 'livemig', policy: thr, utilisation: [0.5], sampling: 'mean' })).toBe('mean');
    expect(samplingOf({ mode: 'cloudsim', policy: thr, sampling: 'mean' })).toBe('mean');
  });

  it('a linear trace averages its two ends; a stepped one weighs the end sample (S − 1) / 2S', () => {
    expect(meanWeight(0)).toBe(0.5);
    expect(meanWeight(1)).toBe(0);
    expect(meanWeight(8)).toBe(7 / 16);
  });

  it('step 0 is the sample, step k the mean of interval k, linear between steps, the last sample held', () => {
    const w = workload([[40, 90, 90, 10]]);
    const at = (o: Partial<SimOptions>, t: number) =>
      utilisationAt(new SimState(w, { mode: 'livemig', policy: thr, datacenter: dc, ...o }), 0, t);
    expect(at({}, 0)).toBeCloseTo(0.4, 12);
    expect(at({}, 300)).toBeCloseTo(0.65, 12);
    expect(at({}, 450)).toBeCloseTo((0.65 + 0.9) / 2, 12);
    expect(at({}, 900)).toBeCloseTo(0.5, 12);
    // Past the last sample the trace is held: interval 4's mean is the last sample.
    expect(at({}, 1200)).toBeCloseTo(0.1, 12);
    expect(at({ samplingSteps: 8 }, 300)).toBeCloseTo(0.4 + 0.5 * (7 / 16), 12);
    // CloudSim's sample, as before.
    expect(at({ sampling: 'instant' }, 300)).toBeCloseTo(0.9, 12);
    expect(at({ sampling: 'instant' }, 450)).toBeCloseTo(0.9, 12);
    // Measured utilisation is taken as given unless asked to average it.
    const exact = [0.4, 0.9, 0.9, 0.1];
    expect(at({ utilisation: exact }, 300)).toBe(0.9);
    expect(at({ utilisation: exact, sampling: 'mean' }, 300)).toBeCloseTo(0.65, 12);
  });

  it('rejects a step count that is not a whole number', () => {
    expect(
      () =>
        new SimState(workload([[1, 2]]), {
          mode: 'livemig',
          policy: thr,
          datacenter: dc,
          samplingSteps: 2.5,
        }),
    ).toThrow(/samplingSteps/);
  });

  it('spikes that trip THR at every other sample do not trip it on the means', () => {
    // Three VMs together on one host: at the 100 % samples 4500 of 5320 MIPS (0.85 > 0.8), at 30 % 0.25; the
    // interval means are 65 % (0.55): never overloaded.
    const row = Array.from({ length: 24 }, (_, k) => (k % 2 === 0 ? 30 : 100));
    const w = workload([row, row, row]);
    const base: SimOptions = { mode: 'livemig', policy: thr, datacenter: dc, series: false };
    const instant = simulate(w, { ...base, sampling: 'instant' });
    const mean = simulate(w, base);
    expect(instant.migrations).toBeGreaterThan(0);
    expect(mean.migrations).toBe(0);
    expect(mean.slatah).toBe(0);
  });

  it('leaves cloudsim mode as it was unless asked', () => {
    const row = Array.from({ length: 24 }, (_, k) => (k % 2 === 0 ? 30 : 100));
    const w = workload([row, row, row]);
    const base: SimOptions = { mode: 'cloudsim', policy: thr, datacenter: dc, series: false };
    const a = simulate(w, base);
    const b = simulate(w, { ...base, sampling: 'instant' });
    expect({ ...a, wallMs: 0 }).toEqual({ ...b, wallMs: 0 });
  });
});
