/**
 * The data-centre simulator: hosts and VMs in typed arrays, a 300-s scheduling step, migrations as timed events.
 *
 * Event order follows CloudSim 3.0.3's PowerDatacenter exactly (CLOUDSIM.md §2–§6), because its numbers depend on it:
 *
 * ```
 * t_k = k·300 + 0.1 (k ≥ 1)       update all hosts at t_k:  energy of [t_prev, t_k] (trapezoid), VM history += u(t_k),
 *                                  delete VMs whose demand is exactly 0 (Q1), then plan: overloaded hosts → select VMs
 *                                  → PABFD; underloaded hosts → all-or-nothing PABFD; start migrations (counted now)
 * t_k + RAM/(BW/2)                 each distinct completion time: update all hosts (energy), move the VMs, update again
 * ```
 *
 * `livemig` mode keeps the structure but fixes the defects listed in docs/simulator.md and prices each migration with
 * the pre-copy model.
 *
 * The engine's rooms: `state` (the one object every other file works on), `accounting` (demand, host updates,
 * energy and SLA metrics), `overload` (detection), `candidates` and `placement` (PABFD), `planning` (one round's
 * migration plan), `migrations` (start, price, complete). This file is the event loop.
 */
import { policyLabel, type SimOptions } from '../config.js';
import type { Workload } from '../workload.js';
import { deleteIdleVms, finishMetrics, updateAll } from './accounting.js';
import { completeMigrations, type Pending, startMigrations, withinLimits } from './migrations.js';
import { placeFirstFit, placeInitial } from './placement.js';
import { plan } from './planning.js';
import { distributionOf, type SimResult } from './result.js';
import { SimState } from './state.js';
import { markStep } from './switch-off.js';

export type { SimDecision, SimDistribution, SimResult, SimSeries } from './result.js';
export { distributionOf, migrationLogLines } from './result.js';
export { type MeasuredState, type PlannedMigration, PlanningSession } from './session.js';
export { HISTORY_LENGTH } from './state.js';

/** CloudSim 3.0.3 runs its updates 0.1 s after each interval boundary. */
const EPSILON = 0.1;

/** Runs one policy on one workload. Deterministic for given options and seed. */
export function simulate(workload: Workload, options: SimOptions): SimResult {
  const s = new SimState(workload, options);
  const wallStart = performance.now();
  run(s);
  return result(s, performance.now() - wallStart);
}

function run(s: SimState): void {
  const p = s.options.policy;
  const duration = s.spv * s.interval;
  const offset = s.compat ? EPSILON : 0;
  if (p.kind === 'baseline') placeFirstFit(s);
  else placeInitial(s);
  s.capacityChecks = s.capacityMode === 'always';
  if (!s.compat) {
    // livemig: sample the initial state so that the first interval is billed too.
    updateAll(s, 0, false);
    markStep(s);
  }
  const npa = p.kind === 'baseline' && p.baseline === 'npa';
  let npaWatts = 0;
  if (npa) for (let h = 0; h < s.H; h++) npaWatts += s.power[h]!(1);
  let pending: Pending[] = [];
  /** Planned migrations the limits hold back ([vm, target, …]), until a slot frees or the next round. */
  let queue: number[] = [];
  let seq = 0;
  for (let k = 1; ; k++) {
    const t = k * s.interval + offset;
    // CloudSim stops at 86400 s: the update at 86400.1 never runs. livemig samples the end of the day too.
    const last = s.compat ? t >= duration : t > duration;
    if (last) break;
    const energyBefore = s.energyWs;
    let started = 0;
    const violationBefore = s.violationTime;
    const activeBefore = s.activeTime;
    // Migrations due by now complete before this update; a longer one (measured prices) stays in flight. Under
    // migration limits each completion frees a slot that the round's held-back migrations take at once (a real
    // cluster's queue); what is still held now is dropped, and this round re-plans.
    if (queue.length === 0) {
      const due = pending.filter((m) => m.time <= t);
      pending = pending.filter((m) => m.time > t);
      completeMigrations(s, due);
    } else {
      while (pending.length > 0 && pending[0]!.time <= t) {
        const at = pending[0]!.time;
        const n = pending.findIndex((m) => m.time !== at);
        completeMigrations(s, n < 0 ? pending : pending.slice(0, n));
        pending = n < 0 ? [] : pending.slice(n);
        const { start, held } = withinLimits(s, queue, pending);
        queue = held;
        if (start.length > 0) {
          const fresh = startMigrations(s, at, start, seq);
          seq += fresh.length;
          pending = pending.concat(fresh).sort((a, b) => a.time - b.time || a.seq - b.seq);
        }
      }
      queue = [];
    }
    updateAll(s, t, true);
    markStep(s);
    deleteIdleVms(s);
    // Non-power-aware: every host at full power from t = 0 to the last update (CloudSim: 86 100.1 s, 2410.8028 kWh).
    if (npa) s.energyWs = npaWatts * t;
    let overloaded = 0;
    if (p.kind === 'migration' && (s.compat ? true : t < duration)) {
      const before = s.decisions ? decisionInputs(s, pending) : undefined;
      const round = plan(s);
      overloaded = round.overloaded;
      if (s.decisions && before) {
        const migrations: [number, number][] = [];
        for (let j = 0; j < round.entries.length; j += 2)
          migrations.push([round.entries[j]!, round.entries[j + 1]!]);
        s.decisions.push({
          time: t,
          ...before,
          requested: Array.from(round.requested),
          overloaded: round.overloadedHosts,
          migrations,
        });
      }
      const { start: entries, held } = withinLimits(s, round.entries, pending);
      queue = held;
      started = entries.length / 2;
      const fresh = startMigrations(s, t, entries, seq);
      seq += fresh.length;
      pending = pending.concat(fresh).sort((a, b) => a.time - b.time || a.seq - b.seq);
    }
    if (s.series) {
      const series = s.series;
      series.time.push(t);
      series.energyKWh.push((s.energyWs - energyBefore) / 3.6e6);
      let active = 0;
      let vms = 0;
      for (let h = 0; h < s.H; h++) {
        if (s.measuredU[h]! > 0 || (s.fix.idleVms && s.hostVms[h]!.length > 0)) active++;
        vms += s.hostVms[h]!.length;
      }
      series.activeHosts.push(active);
      series.overloadedHosts.push(overloaded);
      series.migrations.push(started);
      const act = s.activeTime - activeBefore;
      series.slaViolation.push(act > 0 ? (s.violationTime - violationBefore) / act : 0);
      series.vms.push(vms);
    }
  }
  // CloudSim: migrations started at the last update still complete before the simulation limit. livemig: the window
  // is over; one still in flight (longer than the rest of the window) is counted at its start, not completed.
  if (s.compat) completeMigrations(s, pending);
  finishMetrics(s);
}

/** What a planning round starts from: the placement, each VM's demand, the migrations in flight. */
function decisionInputs(
  s: SimState,
  pending: readonly Pending[],
): { vmHost: number[]; vmUtilisation: number[]; inFlight: [number, number][]; arrivals: number[] } {
  const arrivals = s.arrivals;
  s.arrivals = [];
  return {
    vmHost: Array.from(s.vmHost),
    vmUtilisation: Array.from(s.demand, (d, v) => d / s.vmMips[v]!),
    inFlight: pending.map((p) => [p.vm, p.target]),
    arrivals,
  };
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function result(s: SimState, wallMs: number): SimResult {
  const slatah = s.activeTime > 0 ? s.violationTime / s.activeTime : 0;
  const pdm = s.requestedMipsSeconds > 0 ? s.degradedMipsSeconds / s.requestedMipsSeconds : 0;
  const energyKWh = s.energyWs / 3.6e6;
  const slav = slatah * pdm;
  return {
    policy: policyLabel(s.options.policy),
    mode: s.options.mode,
    workload: '',
    hosts: s.H,
    vms: s.N,
    seed: s.options.seed ?? 42,
    energyKWh,
    migrations: s.migrations,
    slatah,
    pdm,
    slav,
    esv: energyKWh * slav,
    hostShutdowns: s.shutdownCount,
    meanTimeBeforeHostShutdown: s.shutdownCount > 0 ? s.shutdownTimeSum / s.shutdownCount : 0,
    meanTimeBeforeVmMigration: s.vmMigCount > 0 ? s.vmMigTimeSum / s.vmMigCount : 0,
    meanMigrationTime: s.migrations > 0 ? s.migrationTimeSum / s.migrations : 0,
    meanDowntime: s.migrations > 0 ? s.downtimeSum / s.migrations : 0,
    ...optional('migrationTime', distributionOf(s.migrationTimes)),
    ...optional('downtime', distributionOf(s.downtimes)),
    migrationEnergyKWh: s.migrationEnergyJ / 3.6e6,
    migrationBytes: s.migrationBytes,
    vmsDeleted: s.vmsDeleted,
    vmsUnplaced: s.vmsUnplaced,
    duplicateMigrations: s.duplicateMigrations,
    wallMs,
    ...(s.series ? { series: s.series } : {}),
    ...(s.migrationLog ? { migrationLog: s.migrationLog } : {}),
    ...(s.decisions ? { decisions: s.decisions } : {}),
  };
}
