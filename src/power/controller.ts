/**
 * The closed-loop power controller: one controller for DVFS, CAP and both (hybrid), re-deciding after every meter
 * sample from the power measured in the current window, so that the windowed average stays at or under the budget —
 * the promise a real capper makes (Intel RAPL's PL1 holds the average over a window of about a second and reacts
 * within it).
 *
 * Pure: input = a sample stream (power and CPU figures per interval), output = decisions (a DVFS state and a CAP,
 * with the reason); the host applies them (src/power/host.ts), a scripted host in the tests.
 *
 * How a decision is made. The settings form a ladder ordered by power: DVFS = the states top → slowest; CAP =
 * CAP 100 → 1 on the migrating VM; hybrid = CAP first (the seed's preference) down to `hybridMinCap` (the seed's
 * 15), then DVFS states, then CAP below that at the slowest state. The controller takes the highest rung for which
 * every window ending within the next `windowMs` stays ≤ budget, counting
 *  - the energy already measured in that window,
 *  - the next period at the rung's GUARD power: the migrating VM at everything its CAP allows (a guest's load may
 *    jump at any moment: the seed's gap workload does) and the rest of the host at the most it used in the window
 *    plus `reserveCpus` (the migration's own thread starts, a transient, Jeong et al. 2013), and
 *  - the periods after that at the floor rung (a plan that can always be followed, so the next decision finds a
 *    feasible rung again).
 * Settings before the controller started count as exactly at the budget: it neither pays for what happened before
 * it had control nor spends slack it did not earn, so its first window already holds.
 * A budget no rung reaches — the floor's PREDICTED power (at the load measured now) is over it — is flagged
 * `reachable: false`; the controller then sits on the floor.
 */
import { isDvfsModel, type PowerModel, wattsAt } from './models.js';

export type ControlledMode = 'dvfs' | 'cap' | 'hybrid';

/** One meter interval as the controller sees it. */
export interface ControllerSample {
  /** End of the interval (ms, any monotonic clock shared with the other samples). */
  at: number;
  intervalMs: number;
  /** Host power over the interval (modelled from CPU time, or measured). */
  watts: number;
  /** CPUs busy on the host over the interval, in total and of which the migrating VM. */
  cpus: number;
  vmCpus: number;
}

/** A setting the host applies: DVFS state index (models without DVFS: 0) and the migrating VM's CAP (0 = none). */
export interface Setting {
  state: number;
  cap: number;
}

export interface PowerDecision extends Setting {
  /** When it was decided (the clock of the samples). */
  at: number;
  /** DVFS frequency of the state, GHz (null for models without DVFS). */
  ghz: number | null;
  /** Average over the window ending at the decision (W). */
  windowWatts: number;
  /** Predicted power of the next period at this setting, at the load measured now (W). */
  predictedWatts: number;
  /** False when even the floor setting is predicted over the budget. */
  reachable: boolean;
  reason: string;
}

export interface ControllerOptions {
  mode: ControlledMode;
  model: PowerModel;
  budgetWatts: number;
  /** Averaging window (RAPL's PL1 time window), ms. */
  windowMs: number;
  /** Expected time between samples (decisions), ms. */
  periodMs: number;
  /** Cores utilisation is a fraction of, and the migrating VM's vCPUs. */
  capacity: number;
  vmVcpus: number;
  /** The VM's own CAP before the migration (0 = none): never given more. */
  capCeiling?: number;
  /** hybrid: CAP goes down to this before DVFS steps in (default 15, the seed's CAP). */
  hybridMinCap?: number;
  /** CPUs the rest of the host may add within one period (default 1: the migration thread starting). */
  reserveCpus?: number;
}

interface Stored {
  at: number;
  intervalMs: number;
  watts: number;
  otherCpus: number;
  vmCpus: number;
}

const describeSetting = (model: PowerModel, s: Setting): string => {
  const parts: string[] = [];
  if (isDvfsModel(model)) parts.push(`${model.states[s.state]!.ghz.toFixed(3)} GHz`);
  parts.push(s.cap === 0 ? 'no CAP' : `CAP ${s.cap}`);
  return parts.join(', ');
};

export class PowerController {
  readonly o: Required<ControllerOptions>;
  readonly #ladder: Setting[];
  readonly #top: number;
  #history: Stored[] = [];
  #current: Setting;
  #startAt: number | undefined;
  #completionCeiling = 0;
  #period: number;
  readonly decisions: PowerDecision[] = [];

  constructor(o: ControllerOptions, initial: Setting) {
    if (!(o.budgetWatts > 0)) throw new RangeError('the power controller needs a budget > 0 W');
    if (!(o.windowMs > 0 && o.periodMs > 0)) throw new RangeError('window and period must be > 0 ms');
    if ((o.mode === 'dvfs' || o.mode === 'hybrid') && !isDvfsModel(o.model))
      throw new RangeError(`${o.mode} needs a power model with DVFS states, not ${o.model.name}`);
    this.o = {
      capCeiling: 0,
      hybridMinCap: 15,
      reserveCpus: 1,
      ...o,
    };
    this.#top = isDvfsModel(o.model) ? o.model.states.length - 1 : 0;
    this.#current = { ...initial };
    this.#ladder = this.#buildLadder(initial);
    this.#period = o.periodMs;
  }

  get current(): Setting {
    return { ...this.#current };
  }

  /** The rungs, most power first. */
  get ladder(): readonly Setting[] {
    return this.#ladder;
  }

  /** A further CAP bound (e.g. the completion bound of `--cap-control adaptive`); 0 = none. */
  setCapCeiling(cap: number): void {
    this.#completionCeiling = cap;
  }

  #buildLadder(initial: Setting): Setting[] {
    const top = this.#top;
    const ceil = this.o.capCeiling > 0 ? this.o.capCeiling : 100;
    const rungs: Setting[] = [];
    const cap = (c: number) => (c >= 100 ? 0 : c);
    if (this.o.mode === 'dvfs') {
      for (let s = top; s >= 0; s--) rungs.push({ state: s, cap: initial.cap });
    } else if (this.o.mode === 'cap') {
      for (let c = ceil; c >= 1; c--) rungs.push({ state: initial.state, cap: cap(c) });
    } else {
      const min = Math.min(ceil, Math.max(1, this.o.hybridMinCap));
      for (let c = ceil; c >= min; c--) rungs.push({ state: top, cap: cap(c) });
      for (let s = top - 1; s >= 0; s--) rungs.push({ state: s, cap: cap(min) });
      for (let c = min - 1; c >= 1; c--) rungs.push({ state: 0, cap: c });
    }
    return rungs;
  }

  /** CPUs the VM may use under CAP `cap` (0 = none). */
  #vmLimit(cap: number): number {
    return cap > 0 ? (cap / 100) * this.o.vmVcpus : this.o.vmVcpus;
  }

  /** What the VM would use if unconstrained: all it has when the CAP in force binds it, else what it used. */
  #vmDemand(vmCpus: number): number {
    const limit = this.#vmLimit(this.#current.cap);
    return vmCpus >= 0.8 * limit ? this.o.vmVcpus : vmCpus;
  }

  #watts(cpus: number, state: number): number {
    return wattsAt(this.o.model, Math.min(1, Math.max(0, cpus / this.o.capacity)), state);
  }

  /** Energy (J) of the history over [from, to]; before the first sample the controller counts the budget. */
  #energy(from: number, to: number): number {
    if (to <= from) return 0;
    let j = 0;
    const first = this.#startAt ?? to;
    if (from < first) j += (this.o.budgetWatts * (Math.min(to, first) - from)) / 1000;
    for (let i = this.#history.length - 1; i >= 0; i--) {
      const s = this.#history[i]!;
      const lo = Math.max(from, s.at - s.intervalMs);
      const hi = Math.min(to, s.at);
      if (hi > lo) j += (s.watts * (hi - lo)) / 1000;
      if (s.at - s.intervalMs <= from) break;
    }
    return j;
  }

  /** Time-weighted CPUs of the rest of the host and of the VM over [from, to]. */
  #recentLoad(from: number, to: number): { ms: number; other: number; vm: number } {
    let ms = 0;
    let other = 0;
    let vm = 0;
    for (let i = this.#history.length - 1; i >= 0; i--) {
      const s = this.#history[i]!;
      const o = Math.min(to, s.at) - Math.max(from, s.at - s.intervalMs);
      if (o > 0) {
        ms += o;
        other += s.otherCpus * o;
        vm += s.vmCpus * o;
      }
      if (s.at - s.intervalMs <= from) break;
    }
    return ms > 0 ? { ms, other: other / ms, vm: vm / ms } : { ms: 0, other: 0, vm: 0 };
  }

  /** Average over the window ending at `at`. */
  windowWatts(at: number): number {
    return (this.#energy(at - this.o.windowMs, at) * 1000) / this.o.windowMs;
  }

  /**
   * Feeds one sample; returns the decision (always; `decisions` keeps those that changed the setting or the
   * reachability). `before`: the sample ran before the controller had control (its load informs the decision; its
   * energy counts at most at the budget, as everything before the start does).
   */
  observe(sample: ControllerSample, opts: { before?: boolean } = {}): PowerDecision {
    const o = this.o;
    if (this.#startAt === undefined) this.#startAt = sample.at - sample.intervalMs;
    const other = Math.max(0, sample.cpus - sample.vmCpus);
    const watts = opts.before ? Math.min(sample.watts, o.budgetWatts) : sample.watts;
    this.#history.push({
      at: sample.at,
      intervalMs: sample.intervalMs,
      watts,
      otherCpus: other,
      vmCpus: sample.vmCpus,
    });
    const keepFrom = sample.at - 2 * o.windowMs;
    while (this.#history.length > 1 && this.#history[0]!.at < keepFrom) this.#history.shift();

    const now = sample.at;
    // A loaded meter samples late: plan with the period it really keeps (tiny samples aside), never a shorter one.
    if (sample.intervalMs >= o.periodMs / 2) this.#period = 0.8 * this.#period + 0.2 * sample.intervalMs;
    const p = Math.max(o.periodMs, this.#period);
    // The load now: averaged over the last period, not the last sample alone — a sample can be a millisecond
    // long (applying a DVFS state closes the interval), and its CPU figures are then mostly noise.
    const recent = this.#recentLoad(now - p, now);
    const otherNow = recent.ms > 0 ? recent.other : other;
    const vmNow = recent.ms > 0 ? recent.vm : sample.vmCpus;
    let otherMax = otherNow;
    for (const h of this.#history)
      if (h.at > now - o.windowMs && h.intervalMs >= p / 2) otherMax = Math.max(otherMax, h.otherCpus);
    const demand = this.#vmDemand(vmNow);
    const ceiling = this.#completionCeiling;
    const eff = (r: Setting): Setting => {
      if (ceiling <= 0) return r;
      const c = r.cap === 0 ? 100 : r.cap;
      return c > ceiling ? { ...r, cap: ceiling >= 100 ? 0 : ceiling } : r;
    };
    const predicted = (r: Setting) => this.#watts(otherNow + Math.min(demand, this.#vmLimit(r.cap)), r.state);
    const guard = (r: Setting) =>
      Math.max(predicted(r), this.#watts(otherMax + o.reserveCpus + this.#vmLimit(r.cap), r.state));
    const floor = eff(this.#ladder[this.#ladder.length - 1]!);
    const floorPredicted = predicted(floor);
    const floorGuard = guard(floor);
    // The plan after the next period: the floor at its guard power when that fits the budget (then the plan can
    // always be followed); else the floor at the heaviest load of the window, at most the budget.
    let vmMax = vmNow;
    for (const h of this.#history)
      if (h.at > now - o.windowMs && h.intervalMs >= p / 2) vmMax = Math.max(vmMax, h.vmCpus);
    const floorPeak = Math.max(
      floorPredicted,
      this.#watts(otherMax + Math.min(Math.max(vmMax, demand), this.#vmLimit(floor.cap)), floor.state),
    );
    const after = floorGuard <= o.budgetWatts ? floorGuard : Math.min(o.budgetWatts, floorPeak);
    const n = Math.max(1, Math.ceil(o.windowMs / p));
    const limit = (o.budgetWatts * o.windowMs) / 1000;
    // Per window ending j periods ahead: energy already in it, and what the plan after the next period adds.
    const fixed: number[] = [];
    for (let j = 1; j <= n; j++) {
      const afterMs = Math.max(0, Math.min(j * p - p, o.windowMs));
      fixed.push(this.#energy(now + j * p - o.windowMs, now) + (after * afterMs) / 1000);
    }
    const fits = (g: number): boolean => {
      for (let j = 1; j <= n; j++) {
        const next = Math.max(0, p - Math.max(0, j * p - o.windowMs));
        if (fixed[j - 1]! + (g * next) / 1000 > limit + 1e-9) return false;
      }
      return true;
    };
    // The highest rung that keeps every window ≤ budget AND is itself predicted ≤ budget (the window's slack is a
    // safety margin, not something to spend in bursts: spending it makes the setting oscillate); failing that,
    // the highest that keeps the windows; failing that, the floor.
    let chosen = floor;
    let met = false;
    let safe: Setting | undefined;
    for (const rung of this.#ladder) {
      const r = eff(rung);
      if (!fits(guard(r))) continue;
      safe ??= r;
      if (predicted(r) <= o.budgetWatts) {
        chosen = r;
        met = true;
        break;
      }
    }
    if (!met && safe) {
      chosen = safe;
      met = true;
    }
    const reachable = floorPredicted <= o.budgetWatts;
    const windowWatts = this.windowWatts(now);
    const prev = this.#current;
    const changed = chosen.state !== prev.state || chosen.cap !== prev.cap;
    const ghz = isDvfsModel(o.model) ? o.model.states[chosen.state]!.ghz : null;
    let reason =
      `window ${windowWatts.toFixed(1)} W (budget ${o.budgetWatts} W over ${o.windowMs} ms), ` +
      `host ${sample.watts.toFixed(1)} W, ${(otherNow + vmNow).toFixed(2)} CPUs busy (VM ${vmNow.toFixed(2)}): `;
    if (!reachable)
      reason += `budget NOT reachable — even ${describeSetting(o.model, floor)} is predicted at ${floorPredicted.toFixed(1)} W`;
    else if (!met) reason += `window nearly spent: floor ${describeSetting(o.model, floor)}`;
    else
      reason +=
        `${describeSetting(o.model, chosen)} is predicted at ${predicted(chosen).toFixed(1)} W ` +
        `(at most ${guard(chosen).toFixed(1)} W if the load jumps)`;
    if (ceiling > 0 && ceiling < 100) reason += `, CAP ≤ ${ceiling} for completion`;
    const d: PowerDecision = {
      ...chosen,
      at: now,
      ghz,
      windowWatts,
      predictedWatts: predicted(chosen),
      reachable,
      reason,
    };
    const first = this.decisions.length === 0;
    const reachChanged = !first && this.decisions[this.decisions.length - 1]!.reachable !== reachable;
    if (changed || first || reachChanged) this.decisions.push(d);
    this.#current = { state: chosen.state, cap: chosen.cap };
    return d;
  }
}

/** How well a series kept a budget: the report's `budget` figures. */
export interface BudgetCompliance {
  budgetWatts: number;
  windowMs: number;
  /** Time the windowed average (window ending then) was over the budget, ms; windows inside [from, to] only. */
  overBudgetMs: number;
  /** Energy drawn over the budget, ∫ max(0, P − budget) dt over [from, to], J. */
  overBudgetJoules: number;
  /** The highest windowed average (windows ending ≥ from + window, or the whole span if shorter). */
  worstWindow: { endMs: number; watts: number };
  /** The average of the first window after `from` (the transient the controller starts in). */
  firstWindowWatts: number;
}

/** Windowed averages at every sample end within [from, to] of a series of {at, intervalMs, watts}. */
export function budgetCompliance(
  samples: readonly { at: number; intervalMs: number; watts: number }[],
  budgetWatts: number,
  windowMs: number,
  from: number,
  to: number,
): BudgetCompliance {
  const avg = (a: number, b: number): number => {
    let j = 0;
    let ms = 0;
    for (const s of samples) {
      const lo = Math.max(a, s.at - s.intervalMs);
      const hi = Math.min(b, s.at);
      if (hi <= lo) continue;
      j += (s.watts * (hi - lo)) / 1000;
      ms += hi - lo;
    }
    return ms > 0 ? (j * 1000) / ms : 0;
  };
  let overMs = 0;
  let overJ = 0;
  let worst = { endMs: 0, watts: 0 };
  const span = to - from;
  for (const s of samples) {
    const lo = Math.max(from, s.at - s.intervalMs);
    const hi = Math.min(to, s.at);
    if (hi > lo) overJ += (Math.max(0, s.watts - budgetWatts) * (hi - lo)) / 1000;
    if (s.at <= from || s.at > to) continue;
    const full = s.at - from >= windowMs;
    const w = avg(full ? s.at - windowMs : from, s.at);
    if (full && w > budgetWatts) overMs += Math.min(s.intervalMs, s.at - from);
    if ((full || span < windowMs) && w > worst.watts) worst = { endMs: s.at - from, watts: w };
  }
  return {
    budgetWatts,
    windowMs,
    overBudgetMs: overMs,
    overBudgetJoules: overJ,
    worstWindow: worst,
    firstWindowWatts: avg(from, Math.min(to, from + windowMs)),
  };
}
