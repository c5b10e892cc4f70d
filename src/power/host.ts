/**
 * Power on one host (one agent): a meter that runs for the agent's lifetime (GET /v1/power serves its series), and
 * for each outgoing migration a session (migration-session.ts) that applies the chosen capping and, when the migration ends, fills the
 * report's `energy`: source joules from this meter, destination joules from the destination agent's meter over the
 * same window (it runs the same code), per-VM progress before and during.
 *
 * Why the destination is asked over HTTP (remote-energy.ts): the migration port is also the destination's control port, so the
 * source can ask it for its series once the migration ends without any change to the migration protocol.
 */
import type { Guest } from '../guest/index.js';
import { PowerMeter, type PowerSample, type PowerSeries } from './meter.js';
import { MigrationPowerSession } from './migration-session.js';
import { hostPowerModel, type PowerModel, type PowerModelName, wattsAt } from './models.js';
import type { PowerSessionOptions, PowerSessionReport } from './session-view.js';

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
    options: PowerSessionOptions;
    report: PowerSessionReport;
  }): MigrationPowerSession {
    return new MigrationPowerSession(this, spec);
  }
}
