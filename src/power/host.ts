/**
 * Power on one host (one agent): a meter that runs for the agent's lifetime (GET /v1/power serves its series), and
 * for each outgoing migration a session that applies the chosen capping and, when the migration ends, fills the
 * report's `energy`: source joules from this meter, destination joules from the destination agent's meter over the
 * same window (it runs the same code), per-VM progress before and during.
 *
 * Why the destination is asked over HTTP: the migration port is also the destination's control port, so the
 * source can ask it for its series once the migration ends without any change to the migration protocol.
 */
import { UsageError } from '../errors.js';
import type { Guest } from '../guest/index.js';
import type { MigrationOptions } from '../migration/options.js';
import type { RoundSample } from '../migration/policy.js';
import type { EnergyFigure, MigrationEnergy, MigrationReport, VmProgress } from '../migration/stats.js';
import {
  type ControllerDecision,
  capForBudget,
  chooseDvfsState,
  controllerStep,
  type HostLoad,
  predictWatts,
} from './capping.js';
import { energyOver, PowerMeter, type PowerSample, type PowerSeries, windowOver } from './meter.js';
import {
  type DvfsPowerModel,
  hostPowerModel,
  isDvfsModel,
  type PowerModel,
  type PowerModelName,
  wattsAt,
} from './models.js';

export interface HostedGuestRef {
  id: string;
  guest: Guest;
}

export interface HostPowerOptions {
  guests: () => HostedGuestRef[];
  /** Process whose threads are metered (default: this one). */
  pid?: number;
  model?: PowerModelName;
  capacityCores?: number;
  intervalMs?: number;
  raplRoot?: string | null;
}

/** Recomputes a series' modelled watts with another model (utilisation and DVFS state are what was measured). */
export function withModel(samples: readonly PowerSample[], model: PowerModel): PowerSample[] {
  return samples.map((s) => ({ ...s, watts: wattsAt(model, s.utilisation, s.dvfsState) }));
}

export class HostPower {
  readonly meter: PowerMeter;
  readonly #guests: () => HostedGuestRef[];

  constructor(o: HostPowerOptions) {
    this.#guests = o.guests;
    this.meter = new PowerMeter({
      host: {
        pid: o.pid ?? process.pid,
        guests: () =>
          this.#guests().map(({ id, guest }) => ({
            id,
            tids: guest.threadIds(),
            steps: guest.steps().reduce((a, b) => a + b, 0),
            cap: guest.cap,
            frequency: guest.frequency,
          })),
      },
      model: hostPowerModel(o.model ?? 'i7-920'),
      capacityCores: o.capacityCores,
      intervalMs: o.intervalMs,
      raplRoot: o.raplRoot,
    });
  }

  start(): void {
    this.meter.start();
  }
  stop(): void {
    this.meter.stop();
  }

  guests(): HostedGuestRef[] {
    return this.#guests();
  }

  /** The series since `since` (epoch ms), optionally after a fresh sample and with watts from another model. */
  series(since = 0, opts: { sample?: boolean; model?: PowerModelName } = {}): PowerSeries {
    if (opts.sample) this.meter.sample();
    const s = this.meter.series(since);
    if (!opts.model || opts.model === s.model) return s;
    const model = hostPowerModel(opts.model);
    return { ...s, model: model.name, samples: withModel(s.samples, model) };
  }

  /** Starts metering and capping one outgoing migration; wire `onProgress`/`onRound` into runSource. */
  beginMigration(spec: {
    guestId: string;
    guest: Guest;
    options: MigrationOptions;
    report: MigrationReport;
  }): MigrationPowerSession {
    return new MigrationPowerSession(this, spec);
  }
}

const BEFORE_WINDOW_MS = 2000;

export class MigrationPowerSession {
  readonly #host: HostPower;
  readonly #meter: PowerMeter;
  readonly #guestId: string;
  readonly #guest: Guest;
  readonly #o: MigrationOptions;
  readonly #model: PowerModel;
  readonly #start = Date.now();
  readonly #capBefore: number;
  readonly #frequencies = new Map<string, { guest: Guest; frequency: number }>();
  readonly #caps: number[] = [];
  #applied = false;
  #lastRoundAt = Date.now();
  #dvfsGhz: number | null = null;

  constructor(host: HostPower, spec: { guestId: string; guest: Guest; options: MigrationOptions }) {
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

  #setDvfs(state: number, report: MigrationReport, why: string): void {
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
    report.events.push(
      `${elapsed(report)} power: DVFS ${m.states[state]!.ghz.toFixed(3)} GHz on every core (${why})`,
    );
  }

  #setCap(cap: number, report: MigrationReport, why: string): void {
    if (cap === this.#guest.cap) return;
    try {
      this.#guest.setCap(cap);
    } catch {
      return; // the guest has gone (destroyed after switch-over)
    }
    this.#caps.push(cap);
    report.cap.push({ atMs: report.totalTimeMs, cap, throttle: cap === 0 ? 0 : 100 - cap, reason: why });
    report.events.push(`${elapsed(report)} power: CAP ${cap} on the migrating VM (${why})`);
  }

  /** The first progress report of an active migration: the transfer starts, capping starts. */
  readonly onProgress = (report: MigrationReport): void => {
    if (this.#applied || report.status !== 'active') return;
    this.#applied = true;
    this.#applyInitial(report);
  };

  #applyInitial(report: MigrationReport): void {
    const o = this.#o;
    if (o.capping === 'none') return;
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

  /** After every pre-copy round: the adaptive controller re-chooses the CAP (and, with DVFS, the state). */
  readonly onRound = (round: { report: MigrationReport; guest: Guest; sample: RoundSample }): void => {
    const o = this.#o;
    const report = round.report;
    if (!this.#applied) this.onProgress(report);
    const since = this.#lastRoundAt;
    this.#lastRoundAt = Date.now();
    if (o.capControl !== 'adaptive' || o.capping === 'none') return;
    const { load, watts } = this.#load(since);
    if (o.capping === 'cap' || o.capping === 'hybrid') {
      const s = round.sample;
      const d: ControllerDecision = controllerStep({
        model: this.#model,
        state: this.#meter.dvfsState,
        load,
        watts,
        budget: o.powerCap,
        currentCap: this.#guest.cap,
        ceiling: this.#capBefore,
        round: {
          dirtyPagesPerSec: s.durationMs > 0 ? (s.dirtyPages * 1000) / s.durationMs : 0,
          sendPagesPerSec:
            s.durationMs > 0 ? (s.bytesSent * 1000) / s.durationMs / this.#guest.ram.pageSize : 0,
          remainingPages: s.dirtyPages,
          elapsedMs: report.totalTimeMs,
          targetMs: o.completionTargetMs,
        },
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
  async finish(report: MigrationReport): Promise<void> {
    const end = Date.now();
    this.#meter.sample();
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
    const energy: MigrationEnergy = {
      model: this.#model.name,
      source: energyOver(samples, this.#start, end, 'modelled') ?? zero,
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
    };
    // Set before the await: a poller that sees the final status sees the source figures; the destination's
    // follows within milliseconds (GET /v1/migrations/ID?wait=1 returns only once it is in).
    report.energy = energy;
    energy.destination = await remoteEnergy(report.destination, this.#start, end, this.#o.powerModel);
  }
}

function elapsed(report: MigrationReport): string {
  return `${(report.totalTimeMs / 1000).toFixed(3)}s`;
}

/** GET /v1/power of another agent (the destination: same port as migrations). */
export async function fetchPowerSeries(
  address: string,
  since: number,
  model?: PowerModelName,
): Promise<PowerSeries> {
  const base = /^https?:\/\//.test(address) ? address : `http://${address}`;
  const q = new URLSearchParams({ since: String(since), sample: '1', ...(model ? { model } : {}) });
  const res = await fetch(`${base.replace(/\/$/, '')}/v1/power?${q}`, { signal: AbortSignal.timeout(3000) });
  if (!res.ok) throw new Error(`GET /v1/power answered ${res.status}`);
  return (await res.json()) as PowerSeries;
}

async function remoteEnergy(
  address: string,
  from: number,
  to: number,
  model: PowerModelName,
): Promise<EnergyFigure | null> {
  try {
    const s = await fetchPowerSeries(address, from - 1000, model);
    return energyOver(s.samples, from, to, 'modelled');
  } catch {
    return null;
  }
}
