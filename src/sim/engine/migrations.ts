/**
 * Migrations: starting the planned ones (the VM appears on its target as an incoming copy, CloudSim counts it at
 * once) with their price — CloudSim's RAM / (BW / 2), or livemig's pre-copy model with downtime, rounds and bytes —
 * and completing them, grouped by identical completion time, when the VM moves for good.
 */
import { predictPrecopy } from '../../migration/model.js';
import { recomputeHost, updateAll, updateHosts } from './accounting.js';
import { noteMapEntries } from './java-hashmap.js';
import type { SimState } from './state.js';

/** A migration in flight: completes at `time`; `seq` keeps the start order among equal times. */
export interface Pending {
  time: number;
  vm: number;
  target: number;
  seq: number;
}

/**
 * The plan's entries ([vm, target, …]) that fit the concurrency limits (`SimOptions.migrationLimits`) given the
 * migrations in flight, in plan order (`start`), and the others (`held`: they wait for a free slot until the next
 * round re-plans, as the cluster's queue). Entries whose VM is in flight or already on its target are dropped.
 */
export function withinLimits(
  s: SimState,
  entries: number[],
  inFlight: readonly Pending[],
): { start: number[]; held: number[] } {
  const limits = s.options.migrationLimits;
  if (!limits) return { start: entries, held: [] };
  const out = new Map<number, number>();
  for (const p of inFlight) {
    const h = s.vmHost[p.vm]!;
    out.set(h, (out.get(h) ?? 0) + 1);
  }
  let total = inFlight.length;
  const start: number[] = [];
  const held: number[] = [];
  for (let j = 0; j < entries.length; j += 2) {
    const v = entries[j]!;
    const target = entries[j + 1]!;
    const source = s.vmHost[v]!;
    if (source < 0 || source === target || s.inMig[v] === 1) continue;
    const n = out.get(source) ?? 0;
    if (total >= limits.perCluster || n >= limits.perHost) {
      held.push(v, target);
      continue;
    }
    out.set(source, n + 1);
    total++;
    start.push(v, target);
  }
  return { start, held };
}

/** Starts the plan's migrations ([vm, target, …]) at time t; returns them sorted by completion time. */
export function startMigrations(s: SimState, t: number, entries: number[], seq0: number): Pending[] {
  const pending: Pending[] = [];
  const touched = new Set<number>();
  const seen = new Set<number>();
  for (let j = 0; j < entries.length; j += 2) {
    const v = entries[j]!;
    const target = entries[j + 1]!;
    const source = s.vmHost[v]!;
    if (seen.has(v)) s.duplicateMigrations++;
    seen.add(v);
    s.inMig[v] = 1;
    if (!s.hostMigIn[target]!.includes(v)) {
      s.hostMigIn[target]!.push(v);
      s.hostVms[target]!.push(v);
      noteMapEntries(s, target, s.hostVms[target]!.length);
    }
    s.migrations++;
    s.migrationLog?.push(t, v, source, target);
    const bw = s.hostBwKbps[target]!;
    let time: number;
    let downtime = 0;
    let bytes = s.vmRam[v]! * 1e6;
    const measured = s.pricing.measured;
    if (measured) {
      time = measured.time[v]!;
      downtime = measured.downtime[v]!;
      bytes = measured.bytes[v]!;
      // The measured slowdown beyond the 10 % the accounting takes from a migrating VM, over the whole migration.
      const extra = Math.max(0, (measured.slowdown?.[v] ?? 0.1) - 0.1);
      s.degradedMipsSeconds += s.demand[v]! * extra * time;
    } else if (!s.fix.precopy) {
      time = s.vmRam[v]! / (bw / (2 * 8000));
    } else if (s.pricing.model === 'profile') {
      const price = priceWithProfile(s, v, bw);
      time = price.time;
      downtime = price.downtime;
      bytes = price.bytes;
      // The engine's measured energy per GiB moved, on the two hosts together (in the total and the series).
      const joules = (bytes / 2 ** 30) * s.joulesPerGiB;
      s.migrationEnergyJ += joules;
      s.energyWs += joules;
    } else {
      const pr = s.pricing;
      const ramBytes = s.vmRam[v]! * 1e6;
      const u = s.demand[v]! / s.vmMips[v]!;
      const pred = predictPrecopy({
        ramBytes,
        dirtyRate: pr.dirtyRateAtFullLoad * u,
        workingSetBytes: ramBytes * pr.workingSetFraction,
        bandwidth: (bw * 1000 * pr.bandwidthShare) / 8,
        compressionRatio: pr.compressionRatio,
        downtimeLimit: pr.downtimeLimit,
        maxRounds: pr.maxRounds,
      });
      time = pred.totalTime;
      downtime = pred.downtime;
      bytes = pred.bytes;
    }
    if (s.fix.precopy || measured) {
      // During the downtime the VM gets nothing: all of its demand is lost to the migration.
      s.degradedMipsSeconds += s.demand[v]! * downtime;
    }
    s.migrationTimes.push(time);
    s.downtimes.push(downtime);
    s.migrationTimeSum += time;
    s.downtimeSum += downtime;
    s.migrationBytes += bytes;
    pending.push({ time: t + time, vm: v, target, seq: seq0 + pending.length });
    touched.add(target);
    if (source >= 0) touched.add(source);
  }
  for (const h of [...touched].sort((a, b) => a - b)) recomputeHost(s, h, t);
  pending.sort((a, b) => a.time - b.time || a.seq - b.seq);
  return pending;
}

/**
 * A migration priced by the profile-fed model: the VM's profile run at its current utilisation (a VM at u of its
 * MIPS dirties as its profile would at u of full speed). Predictions are cached by profile, utilisation in 1 % steps
 * and bandwidth: a day has tens of thousands of migrations over a few dozen distinct cases.
 */
function priceWithProfile(
  s: SimState,
  v: number,
  bwKbps: number,
): { time: number; downtime: number; bytes: number } {
  const prof = s.vmProfile[v]!;
  const u = Math.min(1, Math.max(0.01, Math.round((s.demand[v]! / s.vmMips[v]!) * 100) / 100));
  let id = s.profileIds.get(prof);
  if (id === undefined) {
    id = s.profileIds.size;
    s.profileIds.set(prof, id);
  }
  const key = `${id}:${u}:${bwKbps}`;
  const hit = s.priceCache.get(key);
  if (hit) return hit;
  const pr = s.pricing;
  const pred = predictPrecopy({
    ramBytes: prof.ramPages * prof.pageSize,
    dirtyRate: 0,
    bandwidth: (bwKbps * 1000 * pr.bandwidthShare) / 8,
    downtimeLimit: pr.downtimeLimit,
    maxRounds: pr.maxRounds,
    profile: prof,
    guestSpeed: u,
    engine: s.engineCosts,
    migration: { xbzrle: pr.xbzrle },
  });
  const price = { time: pred.totalTime, downtime: pred.downtime, bytes: pred.bytes };
  s.priceCache.set(key, price);
  return price;
}

/** Processes completions grouped by identical time: update all, move the VMs, update the hosts involved. */
export function completeMigrations(s: SimState, pending: Pending[]): void {
  let i = 0;
  while (i < pending.length) {
    const t = pending[i]!.time;
    let j = i;
    while (j < pending.length && pending[j]!.time === t) j++;
    const touched = new Set<number>();
    if (!s.fix.precopy) {
      // CloudSim updates every host at every event (completion times coincide, so this stays cheap).
      updateAll(s, t, false);
    } else {
      for (let x = i; x < j; x++) {
        const { vm, target } = pending[x]!;
        if (s.vmHost[vm]! >= 0) touched.add(s.vmHost[vm]!);
        touched.add(target);
      }
      updateHosts(
        s,
        [...touched].sort((a, b) => a - b),
        t,
      );
    }
    for (let x = i; x < j; x++) {
      const { vm, target } = pending[x]!;
      const current = s.vmHost[vm]!;
      if (current >= 0) {
        const list = s.hostVms[current]!;
        const at = list.indexOf(vm);
        if (at >= 0) list.splice(at, 1);
        touched.add(current);
      }
      const tl = s.hostVms[target]!;
      const at = tl.indexOf(vm);
      if (at >= 0) tl.splice(at, 1);
      const mi = s.hostMigIn[target]!;
      const k = mi.indexOf(vm);
      if (k >= 0) mi.splice(k, 1);
      tl.push(vm);
      if (s.decisions) s.arrivals.push(vm);
      s.vmHost[vm] = target;
      s.inMig[vm] = 0;
      touched.add(target);
    }
    for (const h of [...touched].sort((a, b) => a - b)) recomputeHost(s, h, t);
    i = j;
  }
}
