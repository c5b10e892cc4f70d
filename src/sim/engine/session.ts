/**
 * The engine's policy code for a caller that is not the simulator: a real cluster (src/cluster) that measures its
 * hosts and VMs and asks, each scheduling interval, what to migrate where. A `PlanningSession` holds one `SimState`
 * for the data centre; `initialPlacement()` runs the engine's own `placeInitial` (PABFD at t = 0) and `plan()` loads
 * the measured state into the SimState and runs the engine's own `plan` (overload detection, VM selection, PABFD,
 * underload draining) — the very functions `simulate` runs, not a copy.
 */
import type { SimOptions } from '../config.js';
import type { Workload } from '../workload.js';
import { placeInitial } from './placement.js';
import { plan } from './planning.js';
import { HISTORY_LENGTH, SimState } from './state.js';

/** What the cluster measured at a scheduling step. */
export interface MeasuredState {
  /** Host index of each VM (−1: the VM is nowhere, e.g. lost with a killed host). */
  readonly vmHost: ArrayLike<number>;
  /** Each VM's current demand, MIPS. */
  readonly demand: ArrayLike<number>;
  /** Each VM's utilisation history (fraction of its MIPS), newest first; at most HISTORY_LENGTH values are used. */
  readonly history: readonly (readonly number[])[];
  /** Each host's measured utilisation, 0–1. */
  readonly hostUtilisation: ArrayLike<number>;
  /** Migrations still in flight: the VM counts on its source and, as an incoming copy, on its target. */
  readonly inFlight: readonly { readonly vm: number; readonly target: number }[];
  /**
   * The VMs that arrived on their host since the last round, in the order they arrived (absent: by VM index). A
   * host's VM list is in arrival order, as the simulator's (CloudSim's `vmList`): selection ties (MMT between VMs of
   * one RAM size) go to the first in it, so the order decides which VM moves.
   */
  readonly arrivals?: readonly number[];
}

export interface PlannedMigration {
  readonly vm: number;
  readonly target: number;
}

export class PlanningSession {
  readonly #s: SimState;
  /** Each host's VM list as of the last round (without incoming copies): the order the next round keeps. */
  #order: number[][];

  /** `workload` gives the VM count and (for the initial placement) the demand at t = 0. */
  constructor(workload: Workload, options: SimOptions) {
    this.#s = new SimState(workload, { ...options, series: false });
    this.#order = Array.from({ length: this.#s.H }, () => []);
  }

  get hosts(): number {
    return this.#s.H;
  }

  /** Each VM's MIPS and RAM (MB) as the engine sees them (CloudSim's VM types in blocks). */
  vmSpec(v: number): { mips: number; ramMb: number } {
    return { mips: this.#s.vmMips[v]!, ramMb: this.#s.vmRam[v]! };
  }

  /** Each host's MIPS and power at utilisation u (W). */
  hostSpec(h: number): { mips: number; watts: (u: number) => number } {
    return { mips: this.#s.hostMips[h]!, watts: this.#s.power[h]! };
  }

  /** PABFD at t = 0, exactly as `simulate` starts: the host of each VM (−1: unplaced). */
  initialPlacement(): Int32Array {
    const s = this.#s;
    placeInitial(s);
    s.capacityChecks = s.capacityMode === 'always';
    this.#order = s.hostVms.map((list) => [...list]);
    return Int32Array.from(s.vmHost);
  }

  /** One planning round on the measured state: the migrations to start now, in the engine's order. */
  plan(m: MeasuredState): {
    migrations: PlannedMigration[];
    overloaded: number;
    /** The hosts found overloaded. */
    overloadedHosts: number[];
    /** Each host's requested demand ÷ its MIPS as the round saw it (in-flight VMs on both hosts). */
    requested: number[];
  } {
    const s = this.#s;
    const L = HISTORY_LENGTH;
    for (let h = 0; h < s.H; h++) {
      s.hostVms[h]!.length = 0;
      s.hostMigIn[h]!.length = 0;
      s.measuredU[h] = Math.min(1, Math.max(0, m.hostUtilisation[h] ?? 0));
    }
    s.inMig.fill(0);
    for (let v = 0; v < s.N; v++) {
      const h = m.vmHost[v] ?? -1;
      s.vmHost[v] = h;
      s.vmAlive[v] = h >= 0 ? 1 : 0;
      s.demand[v] = m.demand[v] ?? 0;
      const hist = m.history[v] ?? [];
      const n = Math.min(L, hist.length);
      s.vmHist.fill(0, v * L, v * L + L);
      for (let i = 0; i < n; i++) s.vmHist[v * L + i] = hist[i]!;
      s.vmHistLen[v] = n;
    }
    // Each host's list: the VMs it held at the last round in their order, then the newcomers in arrival order.
    const listed = new Uint8Array(s.N);
    for (let h = 0; h < s.H; h++) {
      for (const v of this.#order[h]!) {
        if (s.vmHost[v] === h && listed[v] === 0) {
          s.hostVms[h]!.push(v);
          listed[v] = 1;
        }
      }
    }
    for (const v of m.arrivals ?? []) {
      const h = s.vmHost[v] ?? -1;
      if (h >= 0 && listed[v] === 0) {
        s.hostVms[h]!.push(v);
        listed[v] = 1;
      }
    }
    for (let v = 0; v < s.N; v++) {
      const h = s.vmHost[v]!;
      if (h >= 0 && listed[v] === 0) s.hostVms[h]!.push(v);
    }
    this.#order = s.hostVms.map((list) => [...list]);
    for (const { vm, target } of m.inFlight) {
      if (s.vmHost[vm]! < 0) continue;
      s.inMig[vm] = 1;
      s.hostMigIn[target]!.push(vm);
      s.hostVms[target]!.push(vm);
    }
    const round = plan(s);
    const migrations: PlannedMigration[] = [];
    for (let j = 0; j < round.entries.length; j += 2) {
      migrations.push({ vm: round.entries[j]!, target: round.entries[j + 1]! });
    }
    return {
      migrations,
      overloaded: round.overloaded,
      overloadedHosts: round.overloadedHosts,
      requested: Array.from(round.requested),
    };
  }
}
