/**
 * Power capping policies, pure so that tests (and the simulator) can drive them with a fake meter.
 *
 * - DVFS: the highest (least costly) frequency state whose predicted power keeps the host under the budget; every
 *   core runs at it, so every guest slows (emulated: `guest.setFrequency`). Utilisation is taken as unchanged by the
 *   frequency — a down-clocked busy core stays busy — so only V²·f falls.
 * - CAP: the largest CAP (least slowdown) on the migrating VM that keeps the host under the budget; only that VM
 *   slows. What the VM would use under a higher CAP is unknown while the CAP binds, so a capped VM is assumed to
 *   want its whole vCPUs (conservative for power).
 * - The seed's open problem — a CAP that bounds both power and the migration's completion time — is
 *   `controllerStep`: after every pre-copy round, the largest CAP that satisfies the power budget AND lets pre-copy
 *   converge (by the completion target if one is set), taking the dirty rate as proportional to the VM's CPU share,
 *   as it is for a CPU-bound guest. Lowering acts at once; raising is limited per round, as auto-converge steps.
 */
import { type DvfsPowerModel, type PowerModel, wattsAt } from './models.js';

/** The host as measured over a recent window. */
export interface HostLoad {
  /** CPUs busy in total on the host (all threads metered). */
  cpus: number;
  /** CPUs the migrating VM used. */
  vmCpus: number;
  /** The VM's vCPUs (its CAP applies to each). */
  vmVcpus: number;
  /** Cores utilisation is a fraction of. */
  capacity: number;
}

/** Predicted watts with the VM's usage replaced by `vmCpus`. */
export function predictWatts(model: PowerModel, state: number, load: HostLoad, vmCpus = load.vmCpus): number {
  const cpus = Math.max(0, load.cpus - load.vmCpus + vmCpus);
  return wattsAt(model, cpus / load.capacity, state);
}

/** Highest DVFS state that keeps the predicted power ≤ budget; the slowest state with met = false if none does. */
export function chooseDvfsState(
  model: DvfsPowerModel,
  utilisation: number,
  budget: number,
): { state: number; met: boolean } {
  for (let s = model.states.length - 1; s >= 0; s--) {
    if (wattsAt(model, utilisation, s) <= budget) return { state: s, met: true };
  }
  return { state: 0, met: false };
}

/** What the VM would use under CAP c: as now when it does not reach its CAP, else up to its whole vCPUs. */
function vmDemandAt(load: HostLoad, currentCap: number, cap: number): number {
  const limit = (currentCap > 0 ? currentCap / 100 : 1) * load.vmVcpus;
  const bound = load.vmCpus >= 0.8 * limit;
  const demand = bound ? load.vmVcpus : load.vmCpus;
  return Math.min(demand, (cap / 100) * load.vmVcpus);
}

/** Largest CAP 1..100 whose predicted power is ≤ budget (100 = a whole CPU per vCPU); CAP 1 with met = false if none. */
export function capForBudget(
  model: PowerModel,
  state: number,
  load: HostLoad,
  currentCap: number,
  budget: number,
): { cap: number; met: boolean } {
  for (let c = 100; c >= 1; c--) {
    if (predictWatts(model, state, load, vmDemandAt(load, currentCap, c)) <= budget)
      return { cap: c, met: true };
  }
  return { cap: 1, met: false };
}

export interface RoundView {
  /** Pages found dirty at the end of the round per second of the round. */
  dirtyPagesPerSec: number;
  /** What the link carried, in raw pages per second. */
  sendPagesPerSec: number;
  /** Pages still owed to the destination. */
  remainingPages: number;
  /** Time since the migration started and the completion target (0 = none), ms. */
  elapsedMs: number;
  targetMs: number;
}

/**
 * Largest CAP under which pre-copy converges: by the target when one is set (dirty rate ≤ send rate − remaining ÷
 * 90 % of the time left), else with the dirty rate at most half the send rate (auto-converge's trigger threshold).
 */
export function capForCompletion(round: RoundView, load: HostLoad, currentCap: number): number {
  const d = round.dirtyPagesPerSec;
  if (d <= 0) return 100;
  const s = round.sendPagesPerSec;
  let allowed: number;
  if (round.targetMs > 0) {
    // Aim at 90 % of the time left: each round re-aims, and rounds are discrete.
    const left = (0.9 * (round.targetMs - round.elapsedMs)) / 1000;
    allowed = left > 0 ? s - round.remainingPages / left : 0;
  } else {
    allowed = 0.5 * s;
  }
  if (allowed <= 0) return 1;
  // The VM's effective CAP now: what it used per vCPU, in percent (bounded by the CAP in force).
  const used = (load.vmCpus / load.vmVcpus) * 100;
  const effective = Math.max(1, currentCap > 0 ? Math.min(currentCap, used) : used);
  return Math.max(1, Math.min(100, Math.floor((effective * allowed) / d)));
}

export interface ControllerDecision {
  cap: number;
  /** Which bound decided: power, completion, or none (the CAP was lifted). */
  bound: 'power' | 'completion' | 'none';
  reason: string;
}

/** One step of the adaptive CAP controller (see the file comment). */
export function controllerStep(opts: {
  model: PowerModel;
  state: number;
  load: HostLoad;
  /** Power measured (modelled from measured CPU time) over the window. */
  watts: number;
  budget: number;
  currentCap: number;
  round: RoundView;
  /** Largest rise per step, CAP points (default 20). */
  maxRaise?: number;
  /** The VM's own CAP before the migration (0 = none): the controller never gives it more. */
  ceiling?: number;
}): ControllerDecision {
  const { model, state, load, budget, currentCap, round } = opts;
  const byPower = budget > 0 ? capForBudget(model, state, load, currentCap, budget).cap : 100;
  const byTime = capForCompletion(round, load, currentCap);
  let cap = Math.min(byPower, byTime, opts.ceiling || 100);
  const from = currentCap > 0 ? currentCap : 100;
  if (cap > from) cap = Math.min(cap, from + (opts.maxRaise ?? 20));
  const bound = cap >= (opts.ceiling || 100) ? 'none' : byPower <= byTime ? 'power' : 'completion';
  const reason =
    `power ${opts.watts.toFixed(1)} W (budget ${budget > 0 ? `${budget} W` : 'none'}) allows CAP ${byPower}, ` +
    `dirty ${Math.round(round.dirtyPagesPerSec)} vs sent ${Math.round(round.sendPagesPerSec)} pages/s allows CAP ${byTime}`;
  return { cap: cap >= 100 ? 0 : cap, bound, reason };
}
