/**
 * Power for one outgoing migration: applies the chosen capping (DVFS, CAP, or the closed-loop controller for a
 * budget) while it runs, and when it ends fills the report's `energy` from both hosts' meters (host.ts).
 */
import { UsageError } from '../errors.js';
import type { Guest } from '../guest/index.js';
import {
  type ControllerDecision,
  capForBudget,
  capForCompletion,
  chooseDvfsState,
  controllerStep,
  type HostLoad,
  predictWatts,
  type RoundView,
} from './capping.js';
import { budgetCompliance, PowerController, type PowerDecision } from './controller.js';
import type { EnergyFigure, MigrationEnergy, PowerBudgetReport, VmProgress } from './energy.js';
import type { HostPower } from './host.js';
import { withModel } from './host.js';
import { energyOver, type PowerMeter, type PowerSample, windowOver } from './meter.js';
import { type DvfsPowerModel, hostPowerModel, isDvfsModel, type PowerModel, wattsAt } from './models.js';
import { BEFORE_WINDOW_MS, costOf, remoteEnergy } from './remote-energy.js';
import type { PowerRound, PowerSessionOptions, PowerSessionReport } from './session-view.js';

const MAX_LOOP_EVENTS = 20;

/** True when the budget is held by the closed-loop controller (a budget, and no fixed setting for the mode). */
export function closedLoop(o: PowerSessionOptions): boolean {
  if (o.capping === 'none' || o.powerCap <= 0) return false;
  if (o.capping === 'dvfs') return o.dvfsGhz === 0;
  if (o.capping === 'cap') return o.migrationCap === 0;
  return o.dvfsGhz === 0 && o.migrationCap === 0;
}

export class MigrationPowerSession {
  readonly #host: HostPower;
  readonly #meter: PowerMeter;
  readonly #guestId: string;
  readonly #guest: Guest;
  readonly #o: PowerSessionOptions;
  readonly #model: PowerModel;
  readonly #start = Date.now();
  readonly #capBefore: number;
  readonly #frequencies = new Map<string, { guest: Guest; frequency: number }>();
  readonly #caps: number[] = [];
  #applied = false;
  #lastRoundAt = Date.now();
  #dvfsGhz: number | null = null;
  #controller: PowerController | undefined;
  #controlStart = 0;
  #unsubscribe: (() => void) | undefined;
  readonly #queue: PowerSample[] = [];
  #busy = false;
  #report: PowerSessionReport | undefined;
  #saidUnreachable = false;
  #events = 0;

  constructor(host: HostPower, spec: { guestId: string; guest: Guest; options: PowerSessionOptions }) {
    this.#host = host;
    this.#meter = host.meter;
    this.#guestId = spec.guestId;
    this.#guest = spec.guest;
    this.#o = spec.options;
    this.#model = hostPowerModel(spec.options.powerModel);
    this.#capBefore = spec.guest.cap;
    const o = spec.options;
    if ((o.capping === 'dvfs' || o.capping === 'hybrid') && !isDvfsModel(this.#model)) {
      throw new UsageError(
        `--capping ${o.capping} needs a power model with DVFS states (i7-920), not ${o.powerModel}`,
        'capping',
      );
    }
    if (o.capping !== 'none' && o.powerCap === 0 && o.migrationCap === 0 && o.dvfsGhz === 0) {
      throw new UsageError(
        `--capping ${o.capping} needs a budget (--power-cap WATTS) or a fixed setting (--migration-cap, --dvfs-ghz)`,
        'power-cap',
      );
    }
    this.#meter.sample();
  }

  #dvfs(): DvfsPowerModel | undefined {
    return isDvfsModel(this.#model) ? this.#model : undefined;
  }

  /** Host load over the last `ms` (at least since the previous round), after a fresh sample. */
  #load(sinceMs: number): { load: HostLoad; watts: number } {
    this.#meter.sample();
    const now = Date.now();
    const from = Math.min(sinceMs, now - 500);
    const w = windowOver(this.#meter.samples(from - 1000), from, now);
    const load: HostLoad = {
      cpus: w.cpus,
      vmCpus: w.guests.get(this.#guestId)?.cpus ?? 0,
      vmVcpus: this.#guest.config.vcpus,
      capacity: this.#meter.capacityCores,
    };
    return { load, watts: predictWatts(this.#model, this.#meter.dvfsState, load) };
  }

  #setDvfs(state: number, report: PowerSessionReport, why: string): void {
    const m = this.#dvfs();
    if (!m || state === this.#meter.dvfsState) return;
    const top = m.states[m.states.length - 1]!;
    const ratio = m.states[state]!.ghz / top.ghz;
    this.#meter.setDvfsState(state);
    // Real DVFS slows every core, so every guest on the host slows (emulated frequency).
    for (const { id, guest } of this.#host.guests()) {
      if (!this.#frequencies.has(id)) this.#frequencies.set(id, { guest, frequency: guest.frequency });
      try {
        guest.setFrequency(ratio);
      } catch {
        // a guest destroyed meanwhile has nothing to slow
      }
    }
    this.#dvfsGhz = state === m.states.length - 1 ? null : m.states[state]!.ghz;
    this.#event(
      report,
      `${elapsed(report)} power: DVFS ${m.states[state]!.ghz.toFixed(3)} GHz on every core (${why})`,
    );
  }

  /** The closed loop can change the setting at every sample: the events keep the first ones, the report all. */
  #event(report: PowerSessionReport, text: string): void {
    if (this.#controller && this.#events >= MAX_LOOP_EVENTS) {
      if (this.#events === MAX_LOOP_EVENTS)
        report.events.push(`${elapsed(report)} power: further decisions only in energy.budget.decisions`);
      this.#events++;
      return;
    }
    this.#events++;
    report.events.push(text);
  }

  #setCap(cap: number, report: PowerSessionReport, why: string): void {
    if (cap === this.#guest.cap) return;
    try {
      this.#guest.setCap(cap);
    } catch {
      return; // the guest has gone (destroyed after switch-over)
    }
    this.#caps.push(cap);
    report.cap.push({ atMs: report.totalTimeMs, cap, throttle: cap === 0 ? 0 : 100 - cap, reason: why });
    this.#event(report, `${elapsed(report)} power: CAP ${cap} on the migrating VM (${why})`);
  }

  /** The first progress report of an active migration: the transfer starts, capping starts. */
  readonly onProgress = (report: PowerSessionReport): void => {
    if (this.#applied || report.status !== 'active') return;
    this.#applied = true;
    this.#applyInitial(report);
  };

  #applyInitial(report: PowerSessionReport): void {
    const o = this.#o;
    if (o.capping === 'none') return;
    if (closedLoop(o)) {
      this.#startController(report);
      return;
    }
    const { load, watts } = this.#load(Date.now() - 1000);
    const dvfs = this.#dvfs();
    const budget = o.powerCap;
    let capped = load;
    if (o.capping === 'cap' || o.capping === 'hybrid') {
      let cap = o.migrationCap;
      let why = `fixed CAP ${cap}`;
      if (cap === 0) {
        const c = capForBudget(this.#model, this.#meter.dvfsState, load, this.#guest.cap, budget);
        cap = c.cap;
        if (this.#capBefore > 0) cap = Math.min(cap, this.#capBefore);
        why = `budget ${budget} W, host at ${watts.toFixed(1)} W${c.met ? '' : ', not reachable by CAP alone'}`;
      }
      this.#setCap(cap >= 100 ? 0 : cap, report, why);
      capped = { ...load, vmCpus: Math.min(load.vmCpus, (cap / 100) * load.vmVcpus) };
    }
    if (dvfs && (o.capping === 'dvfs' || o.capping === 'hybrid')) {
      if (o.dvfsGhz > 0) {
        this.#setDvfs(dvfs.stateFor(o.dvfsGhz), report, `fixed ${o.dvfsGhz} GHz`);
      } else {
        const u = capped.cpus - load.vmCpus + capped.vmCpus;
        const { state, met } = chooseDvfsState(dvfs, Math.min(1, u / load.capacity), budget);
        this.#setDvfs(
          state,
          report,
          `budget ${budget} W${met ? '' : ', not reachable even at the slowest state'}`,
        );
      }
    }
  }

  /**
   * The closed-loop controller (src/power/controller.ts): primed with the load of the last second before the
   * transfer (its energy counts at most at the budget), then fed every meter sample; each decision is applied at
   * once.
   */
  #startController(report: PowerSessionReport): void {
    const o = this.#o;
    const mode = o.capping as 'dvfs' | 'cap' | 'hybrid';
    const ctl = new PowerController(
      {
        mode,
        model: this.#model,
        budgetWatts: o.powerCap,
        windowMs: o.powerWindowMs,
        periodMs: this.#meter.intervalMs,
        capacity: this.#meter.capacityCores,
        vmVcpus: this.#guest.config.vcpus,
        capCeiling: this.#capBefore,
      },
      { state: this.#meter.dvfsState, cap: this.#guest.cap },
    );
    this.#controller = ctl;
    this.#report = report;
    const last = this.#meter.sample();
    const now = last.at;
    const w = windowOver(withModel(this.#meter.samples(now - 2000), this.#model), now - 1000, now);
    this.#controlStart = now;
    this.#apply(
      ctl.observe(
        {
          at: now,
          intervalMs: 1000,
          watts: w.watts,
          cpus: w.cpus,
          vmCpus: w.guests.get(this.#guestId)?.cpus ?? 0,
        },
        { before: true },
      ),
    );
    this.#unsubscribe = this.#meter.onSample(this.#onSample);
  }

  /** Samples are queued: applying a DVFS state takes a sample itself (closing the interval in the old state). */
  readonly #onSample = (s: PowerSample): void => {
    this.#queue.push(s);
    if (this.#busy) return;
    this.#busy = true;
    try {
      for (let x = this.#queue.shift(); x; x = this.#queue.shift()) this.#control(x);
    } finally {
      this.#busy = false;
    }
  };

  #control(s: PowerSample): void {
    const ctl = this.#controller;
    if (!ctl) return;
    const ms = Math.max(1, s.intervalMs);
    const vm = s.guests.find((g) => g.id === this.#guestId);
    this.#apply(
      ctl.observe({
        at: s.at,
        intervalMs: s.intervalMs,
        watts: wattsAt(this.#model, s.utilisation, s.dvfsState),
        cpus: (s.vcpuCpuMs + s.mainCpuMs + s.otherCpuMs) / ms,
        vmCpus: (vm?.cpuMs ?? 0) / ms,
      }),
    );
  }

  #apply(d: PowerDecision): void {
    const report = this.#report;
    if (!report) return;
    const mode = this.#o.capping;
    const why = `closed loop: ${d.reason}`;
    if (!d.reachable && !this.#saidUnreachable) {
      // Said once, plainly (the CLI repeats it on the terminal).
      this.#saidUnreachable = true;
      report.events.push(
        `${elapsed(report)} power: budget ${this.#o.powerCap} W NOT reachable (${d.reason})`,
      );
    }
    if (mode === 'cap' || mode === 'hybrid') this.#setCap(d.cap, report, why);
    if (mode === 'dvfs' || mode === 'hybrid') this.#setDvfs(d.state, report, why);
  }

  #stopController(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /** A finished round as the CAP's completion bound reads it: its rates, what is owed, and the time left. */
  #roundView(s: PowerRound, report: PowerSessionReport): RoundView {
    const perSec = (x: number) => (s.durationMs > 0 ? (x * 1000) / s.durationMs : 0);
    return {
      dirtyPagesPerSec: perSec(s.dirtyPages),
      sendPagesPerSec: perSec(s.bytesSent) / this.#guest.ram.pageSize,
      remainingPages: s.dirtyPages,
      elapsedMs: report.totalTimeMs,
      targetMs: this.#o.completionTargetMs,
    };
  }

  /** After every pre-copy round: the adaptive controller re-chooses the CAP (and, with DVFS, the state). */
  readonly onRound = (round: { report: PowerSessionReport; guest: Guest; sample: PowerRound }): void => {
    const o = this.#o;
    const report = round.report;
    if (!this.#applied) this.onProgress(report);
    const since = this.#lastRoundAt;
    this.#lastRoundAt = Date.now();
    if (o.capControl !== 'adaptive' || o.capping === 'none') return;
    const { load, watts } = this.#load(since);
    if (this.#controller) {
      // The budget is the controller's; adaptive adds the completion bound on the CAP.
      if (o.capping === 'dvfs') return;
      this.#controller.setCapCeiling(
        capForCompletion(this.#roundView(round.sample, report), load, this.#guest.cap),
      );
      return;
    }
    if (o.capping === 'cap' || o.capping === 'hybrid') {
      const d: ControllerDecision = controllerStep({
        model: this.#model,
        state: this.#meter.dvfsState,
        load,
        watts,
        budget: o.powerCap,
        currentCap: this.#guest.cap,
        ceiling: this.#capBefore,
        round: this.#roundView(round.sample, report),
      });
      this.#setCap(d.cap, report, `adaptive, ${d.bound}-bound: ${d.reason}`);
    }
    const dvfs = this.#dvfs();
    if (dvfs && o.powerCap > 0 && o.dvfsGhz === 0 && (o.capping === 'dvfs' || o.capping === 'hybrid')) {
      // Measured utilisation does not depend on the state (busy cores stay busy), so re-choose from it directly.
      const { state } = chooseDvfsState(dvfs, Math.min(1, load.cpus / load.capacity), o.powerCap);
      this.#setDvfs(state, report, `adaptive, host at ${watts.toFixed(1)} W, budget ${o.powerCap} W`);
    }
  };

  /** Ends the session: undoes DVFS (and a CAP the guest keeps on the source), then fills `report.energy`. */
  async finish(report: PowerSessionReport): Promise<void> {
    const end = Date.now();
    this.#meter.sample();
    this.#stopController();
    const dvfs = this.#dvfs();
    if (dvfs && this.#meter.dvfsState !== dvfs.states.length - 1)
      this.#meter.setDvfsState(dvfs.states.length - 1);
    for (const { guest, frequency } of this.#frequencies.values()) {
      try {
        guest.setFrequency(frequency);
      } catch {
        // destroyed (the migrated guest, after switch-over)
      }
    }
    if (report.status !== 'completed' && this.#guest.cap !== this.#capBefore) {
      try {
        this.#guest.setCap(this.#capBefore);
      } catch {
        // destroyed
      }
    }
    const samples = withModel(this.#meter.samples(this.#start - BEFORE_WINDOW_MS - 1000), this.#model);
    const zero: EnergyFigure = { joules: 0, averageWatts: 0, peakWatts: 0, durationMs: 0, label: 'modelled' };
    const before = windowOver(samples, this.#start - BEFORE_WINDOW_MS, this.#start);
    const during = windowOver(samples, this.#start, end);
    const vms: VmProgress[] = [];
    for (const [id, d] of during.guests) {
      const b = before.guests.get(id)?.stepsPerSec ?? 0;
      vms.push({
        guestId: id,
        migrating: id === this.#guestId,
        stepsPerSecBefore: b,
        stepsPerSecDuring: d.stepsPerSec,
        slowdown: b > 0 ? Math.max(0, 1 - d.stepsPerSec / b) : 0,
      });
    }
    // The source's own 100 ms sample of the guest's speed before the migration can see no step at all on a loaded
    // host (the vCPU thread was not scheduled then): the meter's 2 s window is the steadier figure.
    const mine = vms.find((v) => v.migrating);
    if (report.guest.stepsPerSecBefore <= 0 && mine && mine.stepsPerSecBefore > 0) {
      report.guest.stepsPerSecBefore = mine.stepsPerSecBefore;
      report.guest.slowdown = Math.max(0, 1 - report.guest.stepsPerSecDuring / mine.stepsPerSecBefore);
    }
    // And the other way: the meter's window can see no step of the migrating guest when the agent's event loop was
    // held up just before the migration (seen on a quiet machine with a 256 MiB guest: no sample in the 1.7 s before
    // the last 0.3 s), while the source's own sample did; then the VM row takes the source's figure.
    if (mine && mine.stepsPerSecBefore <= 0 && report.guest.stepsPerSecBefore > 0) {
      mine.stepsPerSecBefore = report.guest.stepsPerSecBefore;
      mine.slowdown = Math.max(0, 1 - mine.stepsPerSecDuring / mine.stepsPerSecBefore);
    }
    const source = energyOver(samples, this.#start, end, 'modelled') ?? zero;
    const energy: MigrationEnergy = {
      model: this.#model.name,
      source,
      destination: null,
      sourceMeasured: this.#meter.rapl ? energyOver(samples, this.#start, end, 'measured') : null,
      capping: {
        mode: this.#o.capping,
        control: this.#o.capControl,
        powerCapWatts: this.#o.powerCap,
        dvfsGhz: this.#dvfsGhz,
        caps: this.#caps,
      },
      vms,
      series: samples
        .filter((x) => x.at > this.#start - BEFORE_WINDOW_MS && x.at - x.intervalMs < end)
        .map((x) => ({
          atMs: x.at - this.#start,
          watts: Math.round(x.watts * 100) / 100,
          utilisation: Math.round(x.utilisation * 1000) / 1000,
        })),
    };
    const ctl = this.#controller;
    if (ctl) energy.budget = this.#budgetReport(ctl, samples, end);
    const sourceBefore = before.ms > 0 ? before.watts : source.averageWatts;
    energy.cost = costOf(report, this.#model.name, source, sourceBefore, null, null);
    // Set before the await: a poller that sees the final status sees the source figures; the destination's
    // follows within milliseconds (GET /v1/migrations/ID?wait=1 returns only once it is in).
    report.energy = energy;
    const dest = await remoteEnergy(report.destination, this.#start, end, this.#o.powerModel);
    energy.destination = dest?.during ?? null;
    if (dest)
      energy.cost = costOf(report, this.#model.name, source, sourceBefore, dest.during, dest.beforeWatts);
  }

  #budgetReport(ctl: PowerController, samples: readonly PowerSample[], end: number): PowerBudgetReport {
    const o = this.#o;
    const from = this.#controlStart;
    const c = budgetCompliance(samples, o.powerCap, o.powerWindowMs, from, end);
    return {
      ...c,
      reachable: ctl.decisions.every((d) => d.reachable),
      decisions: ctl.decisions.map((d) => ({
        atMs: d.at - this.#start,
        ghz: d.ghz,
        cap: d.cap,
        windowWatts: Math.round(d.windowWatts * 100) / 100,
        predictedWatts: Math.round(d.predictedWatts * 100) / 100,
        reachable: d.reachable,
        reason: d.reason,
      })),
    };
  }
}

function elapsed(report: PowerSessionReport): string {
  return `${(report.totalTimeMs / 1000).toFixed(3)}s`;
}
