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

  it('keeps each host’s VMs in arrival order, as the simulator does: an MMT tie goes to the VM that came first', () => {
    // VMs 1 and 2 have one RAM size (1740 MB); VM 3 (613 MB) and VM 0 (870 MB) are smaller.
    const w = workload([10, 10, 10, 10]);
    const s = new PlanningSession(w, options);
    s.initialPlacement();
    const mips = [2500, 2000, 1000, 500];
    // Round 1: VM 2 on host 0 (a G4, 3720 MIPS), VM 1 on host 1 (it arrives on host 0 later), VMs 0 and 3 on host 3.
    const at = (vmHost: number[], demand: number[], arrivals?: number[]) =>
      s.plan({
        vmHost,
        demand,
        history: demand.map((d, v) => [d / mips[v]!]),
        hostUtilisation: [0, 0, 0, 0].map(
          (_, h) =>
            demand.reduce((a, d, v) => a + (vmHost[v] === h ? d : 0), 0) / [3720, 5320, 3720, 5320][h]!,
        ),
        inFlight: [],
        ...(arrivals ? { arrivals } : {}),
      });
    at([3, 1, 0, 3], [100, 100, 100, 100]);
    // Round 2: VM 1 has arrived on host 0, after VM 2; host 0 at 3000 of 3720 MIPS (81 % > 80 %): one of the two
    // 1740-MB VMs must leave, and the tie goes to the first in the host's list, VM 2 — not VM 1, the lower index.
    const r = at([3, 0, 0, 3], [100, 2000, 1000, 100], [1]);
    expect(r.overloaded).toBe(1);
    const off = r.migrations.filter((m) => m.vm === 1 || m.vm === 2).map((m) => m.vm);
    expect(off).toEqual([2]);
  });
});
