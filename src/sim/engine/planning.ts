/**
 * Planning: one round of CloudSim's `optimizeAllocation` turned into a migration plan. Overloaded hosts are found
 * and relieved VM by VM (selection policy), the selected VMs placed by PABFD; then underloaded hosts, least utilised
 * first, are drained all-or-nothing. Placements are tentative during the round and undone at its end: the plan is
 * the list of (vm, target) pairs, which the migrations then carry out.
 */
import {
  selectMaximumCorrelation,
  selectMinimumMigrationTime,
  selectMinimumUtilisation,
  selectRandom,
} from '../policies.js';
import { candidateSet } from './candidates.js';
import { hostOverloaded } from './overload.js';
import { addVm, findHost, refreshSums, removeVm, restore } from './placement.js';
import { HISTORY_LENGTH, type SimState } from './state.js';

/** The VM the selection policy takes off host h next (-1: none left that is not already migrating). */
function selectVm(s: SimState, h: number): number {
  const candidates = s.hostVms[h]!.filter((v) => s.inMig[v] === 0);
  if (candidates.length === 0) return -1;
  const p = s.options.policy;
  if (p.kind !== 'migration') return -1;
  switch (p.selection) {
    case 'mmt':
      return selectMinimumMigrationTime(candidates, s.vmRam);
    case 'mu':
      return selectMinimumUtilisation(candidates, s.demand, s.vmMips);
    case 'rs':
      return selectRandom(candidates, s.rng);
    case 'mc': {
      const chosen = selectMaximumCorrelation(
        candidates,
        (v) => s.vmHist.subarray(v * HISTORY_LENGTH, v * HISTORY_LENGTH + s.vmHistLen[v]!),
        (v) => s.vmHistLen[v]!,
        s.options.mode === 'cloudsim' ? 'commons-math' : 'exact',
      );
      return chosen ?? selectMinimumMigrationTime(candidates, s.vmRam);
    }
  }
}

function sortByDemand(s: SimState, vms: number[]): number[] {
  // Stable, decreasing current demand (PowerVmList.sortByCpuUtilization).
  return vms
    .map((v, i) => [v, i] as const)
    .sort((a, b) => s.demand[b[0]]! - s.demand[a[0]]! || a[1] - b[1])
    .map(([v]) => v);
}

/** What one planning round decided, and on what. */
export interface PlanRound {
  /** [vm, target, vm, target, …]. */
  entries: number[];
  overloaded: number;
  /** The hosts found overloaded, in index order. */
  overloadedHosts: number[];
  /** Each host's requested demand ÷ its MIPS as the round saw it (what THR compares; in-flight VMs count on both). */
  requested: Float64Array;
}

/** One planning round (`optimizeAllocation`): returns [vm, target, vm, target, …] and the overloaded hosts. */
export function plan(s: SimState): PlanRound {
  const H = s.H;
  refreshSums(s);
  const requested = new Float64Array(H);
  for (let h = 0; h < H; h++) requested[h] = s.reqSum[h]! / s.hostMips[h]!;
  s.histValid.fill(0);
  for (let h = 0; h < H; h++) s.measuredPower[h] = s.power[h]!(s.measuredU[h]!);
  s.undo = [];
  const overMark = new Uint8Array(H);
  const overloaded: number[] = [];
  for (let h = 0; h < H; h++) {
    if (s.hostVms[h]!.length === 0) continue;
    if (hostOverloaded(s, h)) {
      overloaded.push(h);
      overMark[h] = 1;
    }
  }
  const entries: number[] = [];
  const overloadTargets = relieveOverloaded(s, overloaded, overMark, entries);
  drainUnderloaded(s, overMark, overloadTargets, entries);
  restore(s);
  return { entries, overloaded: overloaded.length, overloadedHosts: overloaded, requested };
}

/**
 * Takes VMs off each overloaded host until it is no longer overloaded, then places them (largest demand first)
 * outside the overloaded hosts. Appends the placements to `entries`; returns the hosts that received VMs.
 */
function relieveOverloaded(
  s: SimState,
  overloaded: number[],
  overMark: Uint8Array,
  entries: number[],
): Uint8Array {
  const toMigrate: number[] = [];
  for (const h of overloaded) {
    for (;;) {
      const v = selectVm(s, h);
      if (v < 0) break;
      toMigrate.push(v);
      removeVm(s, h, v);
      if (!hostOverloaded(s, h)) break;
    }
  }
  const excluded = Uint8Array.from(overMark);
  const cands = candidateSet(s, excluded, true);
  const overloadTargets = new Uint8Array(s.H);
  for (const v of sortByDemand(s, toMigrate)) {
    const h = findHost(s, v, excluded, cands.list());
    if (h >= 0) {
      const wasEmpty = s.hostVms[h]!.length === 0;
      addVm(s, h, v);
      entries.push(v, h);
      overloadTargets[h] = 1;
      // A woken host joins the active ones; the next empty host of its type becomes the representative.
      if (wasEmpty) cands.woke(h);
    }
  }
  return overloadTargets;
}

/**
 * Underload pass: drains hosts all-or-nothing, least utilised first, onto active hosts. "Switched off" = measured
 * utilisation 0 (CloudSim) or no VM at all (livemig). Appends the placements to `entries`.
 */
function drainUnderloaded(
  s: SimState,
  overMark: Uint8Array,
  overloadTargets: Uint8Array,
  entries: number[],
): void {
  const H = s.H;
  const exclUnder = Uint8Array.from(overMark);
  const exclPlace = Uint8Array.from(overMark);
  const order: number[] = [];
  for (let h = 0; h < H; h++) {
    const off = s.fix.idleVms ? s.hostVms[h]!.length === 0 && overloadTargets[h] === 0 : s.measuredU[h] === 0;
    if (off) {
      exclUnder[h] = 1;
      exclPlace[h] = 1;
    } else if (s.fix.drainOnce && overloadTargets[h] === 1) {
      // CloudSim means to exclude this round's targets but reads an empty list; drainOnce does exclude them.
      exclUnder[h] = 1;
    }
    if (exclUnder[h] === 0 && s.measuredU[h]! < 1 && (s.fix.idleVms || s.measuredU[h]! > 0)) {
      order.push(h);
    }
  }
  // Repeatedly taking the least-utilised remaining host (ties: lowest index) = one pass in sorted order,
  // since the exclusion set only grows.
  order.sort((a, b) => s.measuredU[a]! - s.measuredU[b]! || a - b);
  const targets = candidateSet(s, exclPlace, false);
  for (const u of order) {
    if (exclUnder[u] === 1) continue;
    const vms = s.hostVms[u]!.filter((v) => s.inMig[v] === 0);
    exclUnder[u] = 1;
    exclPlace[u] = 1;
    if (vms.length === 0) continue;
    const placed: number[] = [];
    let ok = true;
    for (const v of sortByDemand(s, vms)) {
      const h = findHost(s, v, exclPlace, targets.list());
      if (h < 0) {
        ok = false;
        break;
      }
      addVm(s, h, v);
      placed.push(v, h);
    }
    if (!ok) {
      for (let j = placed.length - 2; j >= 0; j -= 2) removeVm(s, placed[j + 1]!, placed[j]!);
      continue;
    }
    for (let j = 0; j < placed.length; j += 2) exclUnder[placed[j + 1]!] = 1;
    entries.push(...placed);
  }
}
