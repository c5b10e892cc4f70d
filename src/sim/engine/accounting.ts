/**
 * Accounting: the VMs' demand at time t, bringing hosts up to date (CPU allocation, utilisation, energy), and the
 * state-history metrics CloudSim derives from it (SLA time per active host, performance degradation due to
 * migration, host shutdowns, migration durations).
 *
 * Between samples a host's utilisation is linear (energy, trapezoid) and its state constant (SLA metrics), as in
 * CloudSim's state-history accounting. A state-history entry stays pending until the next entry of the same host or
 * VM at a later time supersedes it; an entry at the same time replaces it.
 */
import { MigrationError } from '../../errors.js';
import { sumInHashMapOrder } from './java-hashmap.js';
import { meanUtilisationAt } from './sampling.js';
import { HISTORY_LENGTH, type SimState } from './state.js';

/**
 * CloudSim's `UtilizationModelPlanetLabInMemory.getUtilization` (with the last sample repeated): VM v's utilisation;
 * with `SimOptions.sampling` `mean`, the interval's mean instead.
 */
export function utilisationAt(s: SimState, v: number, t: number): number {
  // livemig mode: the interval's mean, as a monitor reports it (sampling.ts).
  if (s.meanSampling) return meanUtilisationAt(s, v, t);
  const I = s.interval;
  const base = v * s.spv;
  const last = s.spv - 1;
  const exact = s.exact;
  if (t % I === 0) {
    const k = Math.min(t / I, last);
    return exact ? exact[base + k]! : s.samples[base + k]! / 100;
  }
  const k1 = Math.floor(t / I);
  const k2 = Math.ceil(t / I);
  const u1 = exact ? exact[base + Math.min(k1, last)]! : s.samples[base + Math.min(k1, last)]! / 100;
  const u2 = exact ? exact[base + Math.min(k2, last)]! : s.samples[base + Math.min(k2, last)]! / 100;
  const delta = (u2 - u1) / ((k2 - k1) * I);
  return u1 + delta * (t - k1 * I);
}

/** VM v's demand at time t, MIPS: utilisation × VM MIPS (CloudSim's `getTotalUtilizationOfCpuMips`). */
export function demandAt(s: SimState, v: number, t: number): number {
  return utilisationAt(s, v, t) * s.vmMips[v]!;
}

/**
 * Updates every host at time t: new demands, allocation (over-subscription scaled), utilisation, energy of the
 * segment since the last event, state-history samples, and (at scheduled steps) the VMs' utilisation history.
 */
export function updateAll(s: SimState, t: number, scheduled: boolean): void {
  const N = s.N;
  for (let v = 0; v < N; v++) {
    if (s.vmHost[v]! >= 0) s.demand[v] = demandAt(s, v, t);
  }
  for (let h = 0; h < s.H; h++) advanceHost(s, h, t);
  if (scheduled) {
    const L = HISTORY_LENGTH;
    for (let v = 0; v < N; v++) {
      if (s.vmHost[v]! < 0) continue;
      const base = v * L;
      s.vmHist.copyWithin(base + 1, base, base + L - 1);
      // The utilisation itself, as CloudSim's PowerVm records it: demand ÷ MIPS is off by one ulp for ~5 % of values,
      // which MC's ill-conditioned regressions (and rarely a threshold test) can turn into another decision.
      s.vmHist[base] = utilisationAt(s, v, t);
      if (s.vmHistLen[v]! < L) s.vmHistLen[v] = s.vmHistLen[v]! + 1;
    }
  }
}

/**
 * Brings host h to time t (its VMs' demands must be current): energy of the segment since its last update
 * (trapezoid between the two samples), then the new state.
 */
function advanceHost(s: SimState, h: number, t: number): void {
  const last = s.hostLast[h]!;
  const dt = last >= 0 ? t - last : 0;
  const prev = s.measuredU[h]!;
  const wasOn = s.hostOn[h] === 1;
  const now = recomputeHost(s, h, t);
  // CloudSim: a host whose utilisation was 0 at the start of the segment is off (0 W). livemig: off = no VM, and with
  // `switchOff: 'step'` only from the first scheduling step that finds it empty (switch-off.ts).
  const off = s.fix.idleVms ? !wasOn && s.onAtStep[h] !== 1 : prev === 0;
  if (dt > 0 && !off) {
    const from = s.power[h]!(prev);
    const to = s.power[h]!(now);
    s.energyWs += (from + (to - from) / 2) * dt;
  }
  s.hostLast[h] = t;
}

/** livemig: brings only the given hosts to time t (a migration completing touches two hosts, not all). */
export function updateHosts(s: SimState, hosts: Iterable<number>, t: number): void {
  for (const h of hosts) {
    for (const v of s.hostVms[h]!) s.demand[v] = demandAt(s, v, t);
    advanceHost(s, h, t);
  }
}

/** CloudSim's `HostDynamicWorkload.updateVmsProcessing` + `VmSchedulerTimeSharedOverSubscription`. */
export function recomputeHost(s: SimState, h: number, t: number): number {
  const list = s.hostVms[h]!;
  const migIn = s.hostMigIn[h]!;
  const total = s.hostMips[h]!;
  const pe = s.peMips[h]!;
  let available = total;
  let over = false;
  let needed = 0;
  for (let i = 0; i < list.length; i++) {
    const v = list[i]!;
    const c = Math.min(s.demand[v]!, pe);
    const need = migIn.length > 0 && migIn.includes(v) ? c * 0.1 : c;
    needed += need;
    if (!over && available >= need) available -= need;
    else over = true;
  }
  // CloudSim sums the needs in its HashMap's order, not the list's: one ulp can move a floor below.
  if (over && s.compat) needed = sumInHashMapOrder(list, s.mapCapacity[h]!, (v) => needOf(s, v, pe, migIn));
  const scale = over ? total / needed : 1;
  let util = 0;
  let requested = 0;
  let allocNonMig = 0;
  let reqNonMig = 0;
  for (let i = 0; i < list.length; i++) {
    const v = list[i]!;
    const req = s.demand[v]!;
    const c = Math.min(req, pe);
    const incoming = migIn.length > 0 && migIn.includes(v);
    const outgoing = !incoming && s.inMig[v] === 1;
    let a: number;
    if (over) {
      a = outgoing
        ? Math.floor(c * scale * 0.9)
        : incoming
          ? Math.floor(c * 0.1 * scale)
          : Math.floor(c * scale);
    } else {
      a = outgoing ? c * 0.9 : incoming ? c * 0.1 : c;
    }
    if (incoming) {
      util += a;
    } else {
      vmSample(s, v, t, a, req, s.inMig[v]!);
      const full = s.inMig[v] === 1 ? a / 0.9 : a;
      util += full;
      allocNonMig += full;
      reqNonMig += req;
      // livemig: the migration costs CPU on the source as well (the target's 10 % is counted above).
      if (s.fix.precopy && outgoing && s.pricing.model === 'rate') util += s.pricing.cpuOverhead * c;
    }
    requested += req;
  }
  // slaCopy: the migrating-in copy is not a workload that is short-changed; only over-subscription counts.
  hostSample(
    s,
    h,
    t,
    s.fix.slaCopy ? allocNonMig : util,
    s.fix.slaCopy ? reqNonMig : requested,
    s.fix.idleVms ? list.length > 0 : util > 0,
  );
  let u = util / total;
  if (u > 1 && u < 1.01) u = 1;
  if (u > 1) {
    // The migration's own CPU cost can push a full host over; it then simply runs at 100 %.
    if (s.fix.precopy) u = 1;
    else
      throw new MigrationError(
        'INTERNAL',
        `host ${h} utilisation ${u} > 1 at t=${t} (CloudSim would exit here)`,
      );
  }
  s.measuredU[h] = u;
  s.reqSum[h] = requested;
  s.hostOn[h] = list.length > 0 ? 1 : 0;
  return u;
}

/** What VM v asks of its host's PEs: its demand capped at one PE, a tenth of it for an incoming copy. */
function needOf(s: SimState, v: number, pe: number, migIn: readonly number[]): number {
  const c = Math.min(s.demand[v]!, pe);
  return migIn.length > 0 && migIn.includes(v) ? c * 0.1 : c;
}

/** Host state-history entry; an entry at the same time replaces the previous one. */
function hostSample(s: SimState, h: number, t: number, alloc: number, req: number, active: boolean): void {
  const prevT = s.hTime[h]!;
  if (prevT >= 0 && prevT !== t) commitHost(s, h, t);
  s.hTime[h] = t;
  s.hAlloc[h] = alloc;
  s.hReq[h] = req;
  s.hActive[h] = active ? 1 : 0;
}

/** Folds the pending host entry into the totals; `next` is the time of the entry that supersedes it. */
function commitHost(s: SimState, h: number, next: number): void {
  const t0 = s.hTime[h]!;
  const active = s.hActive[h]!;
  if (next > t0 && active) {
    const dt = next - t0;
    s.activeTime += dt;
    if (s.hAlloc[h]! < s.hReq[h]!) s.violationTime += dt;
  }
  // Shutdown bookkeeping (CloudSim `getTimesBeforeHostShutdown`), once per committed entry.
  if (s.hPrevActive[h] === 1 && active === 0) {
    s.shutdownCount++;
    s.shutdownTimeSum += t0 - s.hSwitchedOn[h]!;
  }
  if (s.hPrevActive[h] === 0 && active === 1) s.hSwitchedOn[h] = t0;
  s.hPrevActive[h] = active;
}

function vmSample(s: SimState, v: number, t: number, alloc: number, req: number, mig: number): void {
  const prevT = s.vTime[v]!;
  if (prevT >= 0 && prevT !== t) commitVm(s, v, t);
  s.vTime[v] = t;
  s.vAlloc[v] = alloc;
  s.vReq[v] = req;
  s.vMig[v] = mig;
}

function commitVm(s: SimState, v: number, next: number): void {
  const t0 = s.vTime[v]!;
  const dt = next - t0;
  const alloc = s.vAlloc[v]!;
  const req = s.vReq[v]!;
  if (dt > 0) {
    s.requestedMipsSeconds += req * dt;
    if (alloc < req && s.vMig[v] === 1) s.degradedMipsSeconds += (req - alloc) * dt;
  }
  const mig = s.vMig[v]!;
  if (s.vPrevMig[v] === 1 && mig === 0) {
    s.vmMigCount++;
    s.vmMigTimeSum += t0 - s.vMigStart[v]!;
  }
  if (s.vPrevMig[v] === 0 && mig === 1) s.vMigStart[v] = t0;
  s.vPrevMig[v] = mig;
}

/** Commits every pending state-history entry at the end of the run. */
export function finishMetrics(s: SimState): void {
  for (let h = 0; h < s.H; h++) if (s.hTime[h]! >= 0) commitHost(s, h, s.hTime[h]!);
  for (let v = 0; v < s.N; v++) if (s.vTime[v]! >= 0) commitVm(s, v, s.vTime[v]!);
}

/** Q1: CloudSim treats a VM whose requested MIPS is exactly 0 as finished and de-allocates it for good. */
export function deleteIdleVms(s: SimState): void {
  if (s.fix.idleVms) return;
  for (let h = 0; h < s.H; h++) {
    const list = s.hostVms[h]!;
    if (list.length === 0) continue;
    let w = 0;
    for (let i = 0; i < list.length; i++) {
      const v = list[i]!;
      if (s.inMig[v] === 0 && s.demand[v] === 0) {
        s.vmHost[v] = -1;
        s.vmAlive[v] = 0;
        s.vmsDeleted++;
      } else {
        list[w++] = v;
      }
    }
    list.length = w;
  }
}
