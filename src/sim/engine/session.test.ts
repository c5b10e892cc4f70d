import { describe, expect, it } from 'vitest';
import { parsePolicy, planetlabDatacenter } from '../config.js';
import type { Workload } from '../workload.js';
import { PlanningSession } from './session.js';

/** 4 VMs (types 2500/2000/1000/500 MIPS, 870/1740/1740/613 MB), 2 samples each. */
function workload(percent: number[]): Workload {
  return {
    name: 't',
    vmNames: percent.map((_, i) => `vm${i}`),
    vms: percent.length,
    samplesPerVm: 2,
    samples: Uint8Array.from(percent.flatMap((p) => [p, p])),
  };
}

describe('PlanningSession: the engine planning on a measured state', () => {
  const options = {
    mode: 'livemig' as const,
    policy: parsePolicy('thr-mmt-0.8'),
    datacenter: planetlabDatacenter(4),
  };

  it('places initially with PABFD (light VMs packed on one host)', () => {
    const s = new PlanningSession(workload([10, 10, 10, 10]), options);
    const placed = s.initialPlacement();
    expect(new Set(placed).size).toBe(1);
  });

  it('relieves an overloaded host by its smallest-RAM VM (MMT) and drains an underloaded one', () => {
    const s = new PlanningSession(workload([10, 10, 10, 10]), options);
    s.initialPlacement();
    // Host 1 (G5, 5320 MIPS) carries VMs 0, 1, 3 at full demand: 5000 MIPS, 94 % > 80 %; host 3 holds VM 2 alone.
    const demand = [2500, 2000, 100, 500];
    const vmHost = [1, 1, 3, 1];
    const u = [0, 5000 / 5320, 0, 100 / 5320];
    const history = demand.map((d, v) => [d / [2500, 2000, 1000, 500][v]!]);
    const { migrations, overloaded } = s.plan({ vmHost, demand, history, hostUtilisation: u, inFlight: [] });
    expect(overloaded).toBe(1);
    // MMT: VM 3 (613 MB) leaves host 1 first, then VM 0 (870 MB) since 4500 MIPS is still 85 %; PABFD places the
    // largest demand first. VM 1 stays.
    const off = migrations.filter((m) => vmHost[m.vm] === 1).map((m) => m.vm);
    expect(off).toEqual([0, 3]);
    for (const m of migrations) expect(m.target).not.toBe(vmHost[m.vm]);
    // A VM in flight is never selected again.
    const again = s.plan({ vmHost, demand, history, hostUtilisation: u, inFlight: [{ vm: 3, target: 3 }] });
    expect(again.migrations.some((m) => m.vm === 3)).toBe(false);
  });
});
