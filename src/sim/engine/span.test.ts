import { describe, expect, it } from 'vitest';
import { parsePolicy, planetlabDatacenter, type SimOptions } from '../config.js';
import type { Workload } from '../workload.js';
import { simulate } from './index.js';

/** 4 VMs (2500/2000/1000/500 MIPS, 870/1740/1740/613 MB) at 10 % at t = 0 (PABFD packs them on one G5 host) and at
 *  100 % from t = 300: the host is overloaded and THR-MMT moves VMs off it. */
const workload: Workload = {
  name: 'span',
  vmNames: ['a', 'b', 'c', 'd'],
  vms: 4,
  samplesPerVm: 10,
  samples: Uint8Array.from([0, 1, 2, 3].flatMap(() => [10, ...new Array<number>(9).fill(100)])),
};
// CloudSim's instantaneous samples: the step to 100 % is seen at t = 300 (an interval's mean would see 55 % there).
const options = (time: number, slowdown?: number): SimOptions => ({
  mode: 'livemig',
  sampling: 'instant',
  policy: parsePolicy('thr-mmt-0.8'),
  datacenter: planetlabDatacenter(4),
  pricing: {
    measured: {
      time: [time, time, time, time],
      downtime: [2, 2, 2, 2],
      bytes: [1e6, 1e6, 1e6, 1e6],
      ...(slowdown === undefined ? {} : { slowdown: [slowdown, slowdown, slowdown, slowdown] }),
    },
  },
});

describe('migrations priced as measured, longer than a scheduling interval', () => {
  it('stay in flight across intervals (the copy on the target) and are never started twice', () => {
    const r = simulate(workload, options(1000));
    expect(r.migrations).toBeGreaterThanOrEqual(1);
    expect(r.meanMigrationTime).toBe(1000);
    expect(r.meanDowntime).toBe(2);
    expect(r.migrationBytes).toBe(r.migrations * 1e6);
    const s = r.series!;
    // Started at t = 300: its copy counts on the target (VMs listed = 4 + in flight) until t = 1300.
    const at = (t: number): number => s.vms[s.time.indexOf(t)]!;
    expect(at(600)).toBeGreaterThan(4);
    expect(at(1200)).toBe(at(600));
    expect(at(1500)).toBeLessThan(at(1200));
    expect(r.duplicateMigrations).toBe(0);
  });

  it('a short measured price completes within the interval, as before', () => {
    const r = simulate(workload, options(20));
    const s = r.series!;
    expect(s.vms[s.time.indexOf(600)]).toBe(4);
    expect(r.meanMigrationTime).toBe(20);
  });

  it('charges a measured slowdown during the migration in place of CloudSim’s 10 %', () => {
    const cloudsim = simulate(workload, options(1000));
    const measured = simulate(workload, options(1000, 0.6));
    expect(simulate(workload, options(1000, 0.1)).pdm).toBeCloseTo(cloudsim.pdm, 12);
    expect(measured.migrations).toBe(cloudsim.migrations);
    expect(measured.pdm).toBeGreaterThan(cloudsim.pdm * 3);
  });

  it('keeps to the concurrency limits, the rest re-planned at later rounds', () => {
    const free = simulate(workload, options(1000));
    const limited = simulate(workload, { ...options(1000), migrationLimits: { perHost: 1, perCluster: 5 } });
    const at = (r: typeof free, t: number): number => r.series!.migrations[r.series!.time.indexOf(t)]!;
    expect(at(free, 300)).toBeGreaterThanOrEqual(2);
    expect(at(limited, 300)).toBe(1);
    // The one held back starts when the first completes (t = 1300), from the queue, not from a later plan.
    expect(at(limited, 600) + at(limited, 900) + at(limited, 1200)).toBe(0);
    expect(limited.migrations).toBe(at(free, 300));
    expect(limited.duplicateMigrations).toBe(0);
  });
});

describe('exact utilisation samples (SimOptions.utilisation)', () => {
  const base: SimOptions = {
    mode: 'livemig',
    sampling: 'instant',
    policy: parsePolicy('thr-mmt-0.8'),
    datacenter: planetlabDatacenter(4),
  };
  it('replace the whole percents: the same values give the same run, a fraction more gives more energy', () => {
    const plain = simulate(workload, base);
    const same = simulate(workload, { ...base, utilisation: Array.from(workload.samples, (x) => x / 100) });
    expect(same.energyKWh).toBe(plain.energyKWh);
    expect(same.migrations).toBe(plain.migrations);
    const more = simulate(workload, {
      ...base,
      utilisation: Array.from(workload.samples, (x) => x / 100 + 0.004),
    });
    expect(more.energyKWh).toBeGreaterThan(plain.energyKWh);
  });
});
