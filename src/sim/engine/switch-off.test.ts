import { describe, expect, it } from 'vitest';
import { type Datacenter, HP_ML110_G5, parsePolicy, type SimOptions } from '../config.js';
import type { Workload } from '../workload.js';
import { simulate } from './index.js';
import { switchOffOf } from './switch-off.js';

/** Two 2500-MIPS VMs at 100 % at t = 0 (too much for one G5 host under THR 0.8: PABFD uses both hosts), 10 % after:
 *  at t = 300 one host is underloaded and drained, its VM moved in 60 s. */
const workload: Workload = {
  name: 'drain',
  vmNames: ['a', 'b'],
  vms: 2,
  samplesPerVm: 6,
  samples: Uint8Array.from([100, 10, 10, 10, 10, 10, 100, 10, 10, 10, 10, 10]),
};
const dc: Datacenter = {
  hostTypes: [HP_ML110_G5],
  hostTypeOf: new Uint8Array(2),
  vmTypes: [{ mips: 2500, ramMb: 512, bwKbps: 100_000 }],
};
const options: SimOptions = {
  mode: 'livemig',
  policy: parsePolicy('thr-mmt-0.8'),
  datacenter: dc,
  sampling: 'instant',
  series: false,
  pricing: { measured: { time: [60, 60], downtime: [0, 0], bytes: [1e6, 1e6] } },
};

describe('switching a drained host off', () => {
  it('defaults: at the next step in livemig mode, at once in cloudsim mode', () => {
    expect(switchOffOf({ mode: 'livemig', policy: options.policy })).toBe('step');
    expect(switchOffOf({ mode: 'cloudsim', policy: options.policy })).toBe('instant');
  });

  it('`step` bills the drained host idle from the migration’s end to the next step; `instant` does not', () => {
    const instant = simulate(workload, { ...options, switchOff: 'instant' });
    const step = simulate(workload, options);
    expect(instant.migrations).toBe(1);
    expect(step.migrations).toBe(1);
    expect(step.hostShutdowns).toBe(instant.hostShutdowns);
    // Completed at t = 360; the host stays on, idle, until the step at t = 600.
    const idle = HP_ML110_G5.power.power(0);
    expect((step.energyKWh - instant.energyKWh) * 3.6e6).toBeCloseTo(idle * 240, 6);
  });

  it('leaves cloudsim mode as CloudSim bills it', () => {
    const base: SimOptions = { ...options, mode: 'cloudsim', pricing: {} };
    const a = simulate(workload, base);
    const b = simulate(workload, { ...base, switchOff: 'step' });
    expect({ ...a, wallMs: 0 }).toEqual({ ...b, wallMs: 0 });
  });
});
