/**
 * Placement: the initial placement (PABFD, or first fit for the NPA/DVFS baselines), CloudSim's power-aware best-fit
 * decreasing host choice for one VM (`findHostForVm`), the suitability test, and tentative placements with their undo
 * log (CloudSim's `restoreAllocation`). A tentative placement changes the host lists and the per-host demand and RAM
 * sums only; the VM's real host changes when its migration completes.
 */
import { demandAt } from './accounting.js';
import { candidateSet } from './candidates.js';
import { noteMapEntries } from './java-hashmap.js';
import { hostOverloaded, overloadedAtCreation } from './overload.js';
import type { SimState } from './state.js';

/** PABFD initial placement at t = 0, in VM order. */
export function placeInitial(s: SimState): void {
  // CloudSim: a VM being instantiated requests its full MIPS; no host has been measured yet (utilisation 0).
  // livemig: VMs are placed by what they will actually ask for at t = 0.
  for (let v = 0; v < s.N; v++) s.demand[v] = s.fix.initialDemand ? demandAt(s, v, 0) : s.vmMips[v]!;
  const none = new Uint8Array(s.H);
  refreshSums(s);
  for (let h = 0; h < s.H; h++) s.measuredPower[h] = s.power[h]!(0);
  const cands = candidateSet(s, none, true);
  for (let v = 0; v < s.N; v++) {
    const h = findHost(s, v, none, cands.list(), true);
    if (h < 0) {
      s.vmsUnplaced++;
      continue;
    }
    const wasEmpty = s.hostVms[h]!.length === 0;
    addVm(s, h, v);
    s.vmHost[v] = h;
    s.vmAlive[v] = 1;
    if (wasEmpty) cands.woke(h);
  }
  s.undo = [];
}

/** DVFS / NPA baselines: first suitable host in index order, never migrate. */
export function placeFirstFit(s: SimState): void {
  for (let v = 0; v < s.N; v++) s.demand[v] = s.vmMips[v]!;
  refreshSums(s);
  for (let v = 0; v < s.N; v++) {
    let placed = -1;
    for (let h = 0; h < s.H; h++) {
      if (suitable(s, h, v)) {
        placed = h;
        break;
      }
    }
    if (placed < 0) {
      s.vmsUnplaced++;
      continue;
    }
    addVm(s, placed, v);
    s.vmHost[v] = placed;
    s.vmAlive[v] = 1;
  }
  s.undo = [];
}

/** Recomputes every host's demand and RAM sums from its VM list. */
export function refreshSums(s: SimState): void {
  for (let h = 0; h < s.H; h++) sumHost(s, h);
}

/** Host h's demand and RAM sums from its VM list, in list order. */
function sumHost(s: SimState, h: number): void {
  let sum = 0;
  let ram = 0;
  for (const v of s.hostVms[h]!) {
    sum += s.demand[v]!;
    ram += s.vmRam[v]!;
  }
  s.reqSum[h] = sum;
  s.ramUsed[h] = ram;
}

/** Tentatively places VM v on host h (undo-logged). */
export function addVm(s: SimState, h: number, v: number): void {
  s.histValid[h] = 0;
  s.hostVms[h]!.push(v);
  noteMapEntries(s, h, s.hostVms[h]!.length);
  s.reqSum[h] = s.reqSum[h]! + s.demand[v]!;
  s.ramUsed[h] = s.ramUsed[h]! + s.vmRam[v]!;
  s.undo.push(h, v, -1);
}

/** Tentatively takes VM v off host h (undo-logged). */
export function removeVm(s: SimState, h: number, v: number): void {
  const list = s.hostVms[h]!;
  const i = list.indexOf(v);
  if (i < 0) return;
  s.histValid[h] = 0;
  list.splice(i, 1);
  s.reqSum[h] = s.reqSum[h]! - s.demand[v]!;
  s.ramUsed[h] = s.ramUsed[h]! - s.vmRam[v]!;
  s.undo.push(h, v, i);
}

/** Reverts tentative placements (CloudSim's `restoreAllocation`), restoring list order. */
export function restore(s: SimState): void {
  const u = s.undo;
  const touched = new Set<number>();
  for (let j = u.length - 3; j >= 0; j -= 3) {
    const h = u[j]!;
    const v = u[j + 1]!;
    const i = u[j + 2]!;
    const list = s.hostVms[h]!;
    if (i < 0) list.splice(list.lastIndexOf(v), 1);
    else list.splice(i, 0, v);
    touched.add(h);
  }
  s.undo = [];
  for (const h of touched) sumHost(s, h);
}

/** PE MIPS, RAM, bandwidth (VM count) and free MIPS (`Host.isSuitableForVm`). */
function suitable(s: SimState, h: number, v: number): boolean {
  const peNeed = s.peCheckDemand ? s.demand[v]! : s.vmMips[v]!;
  if (peNeed > s.peMips[h]! || s.hostMips[h]! - s.reqSum[h]! < s.demand[v]!) return false;
  if (!s.capacityChecks) return true;
  return s.ramUsed[h]! + s.vmRam[v]! <= s.hostRam[h]! && s.hostVms[h]!.length < s.maxVms[h]!;
}

/** PABFD host choice for one VM (`findHostForVm`). */
export function findHost(
  s: SimState,
  v: number,
  excluded: Uint8Array,
  candidates: ArrayLike<number>,
  initial = false,
): number {
  if ((s.options.placementCandidates ?? 0) < 0) return findHostScan(s, v, excluded, candidates, initial);
  const d = s.demand[v]!;
  const n = candidates.length;
  if (s.costScratch.length < n) {
    s.costScratch = new Float64Array(n * 2);
    s.hostScratch = new Int32Array(n * 2);
  }
  const costs = s.costScratch;
  const hosts = s.hostScratch;
  // 1. Power increase of every suitable host (cheap).
  let m = 0;
  for (let j = 0; j < n; j++) {
    const h = candidates[j]!;
    if (excluded[h] === 1 || !suitable(s, h, v)) continue;
    const sum = s.reqSum[h]!;
    const total = s.hostMips[h]!;
    // CloudSim's scan tries the VM on every suitable busy host (`isHostOverUtilizedAfterAllocation`).
    if (sum !== 0 && s.overload) noteMapEntries(s, h, s.hostVms[h]!.length + 1);
    const after = s.power[h]!(atLeast0((sum + d) / total));
    let before: number;
    if (!s.fix.wakeCost) {
      before = s.measuredPower[h]!;
    } else {
      // livemig: the real marginal cost — waking an empty host costs its idle power too.
      before = s.hostVms[h]!.length === 0 ? 0 : s.power[h]!(Math.min(1, atLeast0(sum / total)));
    }
    costs[m] = after - before;
    hosts[m++] = h;
  }
  // 2. Cheapest first (ties: lowest index, as CloudSim's scan keeps the first); the first host that passes the
  // (expensive) overload-after-allocation test is exactly the host CloudSim's single scan would return.
  for (;;) {
    let k = -1;
    for (let j = 0; j < m; j++) {
      if (hosts[j]! < 0) continue;
      if (k < 0 || costs[j]! < costs[k]! || (costs[j] === costs[k] && hosts[j]! < hosts[k]!)) k = j;
    }
    if (k < 0) return -1;
    const h = hosts[k]!;
    hosts[k] = -1;
    if (s.reqSum[h] === 0 || !s.overload) return h;
    if (initial && !s.fix.initialDemand) {
      if (!overloadedAtCreation(s, h, d)) return h;
    } else if (!hostOverloaded(s, h, v)) {
      return h;
    }
  }
}

/** Reference PABFD: CloudSim's single scan in host order, overload-tested for every host (see findHost). */
function findHostScan(
  s: SimState,
  v: number,
  excluded: Uint8Array,
  candidates: ArrayLike<number>,
  initial: boolean,
): number {
  const d = s.demand[v]!;
  let best = -1;
  let minCost = Number.MAX_VALUE;
  for (let j = 0; j < candidates.length; j++) {
    const h = candidates[j]!;
    if (excluded[h] === 1 || !suitable(s, h, v)) continue;
    const sum = s.reqSum[h]!;
    const total = s.hostMips[h]!;
    if (sum !== 0 && s.overload) {
      noteMapEntries(s, h, s.hostVms[h]!.length + 1);
      const over = initial && !s.fix.initialDemand ? overloadedAtCreation(s, h, d) : hostOverloaded(s, h, v);
      if (over) continue;
    }
    const before = !s.fix.wakeCost
      ? s.measuredPower[h]!
      : s.hostVms[h]!.length === 0
        ? 0
        : s.power[h]!(Math.min(1, atLeast0(sum / total)));
    const cost = s.power[h]!(atLeast0((sum + d) / total)) - before;
    if (cost < minCost) {
      minCost = cost;
      best = h;
    }
  }
  return best;
}

/**
 * A tentative utilisation for the power model. Undoing a tentative placement subtracts the VM's demand again, so a
 * host left with only zero-demand VMs (livemig keeps them) can sum to −1e-17: that is 0, not an invalid utilisation.
 */
function atLeast0(u: number): number {
  return Math.max(u, 0);
}
