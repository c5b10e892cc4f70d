/**
 * The agent's live event stream, `GET /v1/events` (server-sent events; payloads in live-events.ts). The agent feeds it
 * from the source's `onProgress` hook; it turns each report into a time-series sample, keeps the samples of recent
 * migrations (a page opened late still draws the whole run) and pushes them to every subscriber.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LivemigErrorCode } from '../errors.js';
import { type MigrationReport, migrationEnded } from '../migration/stats.js';
import { afterPausedWindow } from '../paused-window.js';
import {
  type EndEvent,
  type HelloEvent,
  type LiveSample,
  type ProgressEvent,
  readEnergy,
} from './live-events.js';

/** What the hub reads from the migrating guest: its CAP and vCPU steps (for the progress rate). */
export interface GuestGauge {
  readonly cap: number;
  steps(): number[];
}

/** The host's power meter (src/power's HostPower): its latest sample is the live power figure. */
export interface PowerGauge {
  series(since: number): { samples: readonly { watts: number; raplWatts: number | null }[] };
}

export interface EventHubOptions {
  /** Where live watts come from; without it, only the report's `energy` (known when a migration ends). */
  power?: PowerGauge;
  /** Smallest gap between two samples of one migration (ms); the engine reports about every 100 ms. */
  minSampleMs?: number;
  /** A sample is taken at least this often while a migration is active, even if the engine is quiet (ms). */
  tickMs?: number;
  /** Subscribers served at once; more get 503. */
  maxClients?: number;
  /** Migrations whose samples are kept (the oldest finished ones are forgotten first). */
  keepMigrations?: number;
  /** Samples kept per migration; beyond it every other old sample is dropped (the shape survives). */
  maxSamples?: number;
}

interface Track {
  report: MigrationReport;
  guest: GuestGauge;
  samples: LiveSample[];
  lastWall: number;
  lastBytes: number;
  lastSteps: number;
  ended: boolean;
}

const MAX_BUFFERED = 4 << 20;

export class EventHub {
  private readonly clients = new Set<ServerResponse>();
  private readonly tracks = new Map<string, Track>();
  private ticker: NodeJS.Timeout | undefined;
  private lastStatusAt = 0;
  private readonly o: Required<Omit<EventHubOptions, 'power'>>;
  private readonly power: PowerGauge | undefined;

  constructor(
    private readonly status: () => unknown,
    opts: EventHubOptions = {},
  ) {
    this.o = {
      minSampleMs: opts.minSampleMs ?? 100,
      tickMs: opts.tickMs ?? 200,
      maxClients: opts.maxClients ?? 32,
      keepMigrations: opts.keepMigrations ?? 20,
      maxSamples: opts.maxSamples ?? 4000,
    };
    this.power = opts.power;
  }

  get subscribers(): number {
    return this.clients.size;
  }

  /** Samples recorded for a migration (empty when unknown). */
  samples(id: string): readonly LiveSample[] {
    return this.tracks.get(id)?.samples ?? [];
  }

  /** Serves one subscriber until it hangs up. */
  subscribe(req: IncomingMessage, res: ServerResponse): void {
    if (this.clients.size >= this.o.maxClients) {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          error: {
            code: 'RESOURCE_LIMIT' satisfies LivemigErrorCode,
            message: `at most ${this.o.maxClients} event subscribers`,
          },
        }),
      );
      return;
    }
    req.socket.setNoDelay(true);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
    });
    // The browser reconnects by itself after a second if the agent restarts.
    res.write('retry: 1000\n\n');
    this.clients.add(res);
    const hello: HelloEvent = {
      status: this.status(),
      series: [...this.tracks.entries()].map(([id, t]) => ({ id, samples: t.samples })),
    };
    write(res, 'hello', hello);
    const drop = () => this.clients.delete(res);
    req.once('close', drop);
    res.once('close', drop);
    this.ensureTicker();
  }

  /** The source reported progress (or a migration just started): sample it and push it to subscribers. */
  progress(report: MigrationReport, guest: GuestGauge, force = false): void {
    let t = this.tracks.get(report.id);
    const now = performance.now();
    if (!t) {
      t = {
        report,
        guest,
        samples: [],
        lastWall: now,
        lastBytes: report.transferredBytes,
        lastSteps: sumSteps(guest),
        ended: false,
      };
      this.tracks.set(report.id, t);
      this.forgetOld();
      this.sendStatus();
    } else if (!force && now - t.lastWall < this.o.minSampleMs) return;
    if (t.ended) return;
    const sample = this.sample(t, now);
    t.samples.push(sample);
    if (t.samples.length > this.o.maxSamples) {
      const half = t.samples.length >> 1;
      t.samples = [...t.samples.slice(0, half).filter((_, i) => i % 2 === 0), ...t.samples.slice(half)];
    }
    this.broadcast('progress', { id: report.id, sample, report } satisfies ProgressEvent);
    this.ensureTicker();
  }

  /** A migration ended: one last sample, the final report, and fresh status (guest lists changed). */
  end(report: MigrationReport): void {
    const t = this.tracks.get(report.id);
    if (t && !t.ended) {
      t.report = report;
      const sample = this.sample(t, performance.now());
      t.samples.push(sample);
      t.ended = true;
      this.broadcast('progress', { id: report.id, sample, report } satisfies ProgressEvent);
    }
    this.broadcast('end', { id: report.id, report } satisfies EndEvent);
    this.sendStatus();
  }

  /** Guests or migrations changed: push the status now rather than at the next tick. */
  changed(): void {
    this.sendStatus();
  }

  close(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
    for (const c of this.clients) c.end();
    this.clients.clear();
  }

  private sample(t: Track, now: number): LiveSample {
    const r = t.report;
    const dtS = (now - t.lastWall) / 1000;
    const bytes = r.transferredBytes;
    // After switch-over the guest runs on the destination: its progress is no longer the source's to report.
    const onSource =
      r.phase === 'setup' || r.phase === 'precopy' || r.status === 'cancelled' || r.status === 'failed';
    let steps = t.lastSteps;
    if (onSource) {
      try {
        steps = sumSteps(t.guest);
      } catch {
        // The guest was freed (migration over); keep the last reading.
      }
    }
    const sample: LiveSample = {
      t: Math.round(r.totalTimeMs),
      phase: r.phase,
      round: r.rounds,
      transferredBytes: bytes,
      remainingBytes: r.remainingBytes,
      dirtyPages: r.dirtyPages,
      throughputMbps: dtS > 0 ? ((bytes - t.lastBytes) * 8) / 1e6 / dtS : 0,
      limitMbps: (r.maxBandwidth * 8) / 1e6,
      expectedDowntimeMs: r.expectedDowntimeMs,
      downtimeLimitMs: r.downtimeLimitMs,
      cacheHits: r.xbzrle.cacheHits,
      cacheMisses: r.xbzrle.cacheMisses,
      xbzrleSavedBytes: Math.max(0, r.xbzrle.pageBytes - r.xbzrle.encodedBytes),
      cap: t.guest.cap,
      stepsPerSec: onSource && dtS > 0 ? (steps - t.lastSteps) / dtS : null,
      postcopyFaults: r.postcopy.faults,
      ...this.watts(r),
    };
    t.lastWall = now;
    t.lastBytes = bytes;
    t.lastSteps = steps;
    return sample;
  }

  /** Live watts from the meter (RAPL when it has it, measured; else its model), else the report's energy. */
  private watts(r: MigrationReport): Pick<LiveSample, 'powerW' | 'powerLabel'> {
    let last: { watts: number; raplWatts: number | null } | undefined;
    try {
      last = this.power?.series(Date.now() - 2000).samples.at(-1);
    } catch {
      last = undefined;
    }
    if (last) {
      return last.raplWatts !== null
        ? { powerW: last.raplWatts, powerLabel: 'measured' }
        : { powerW: last.watts, powerLabel: 'modelled' };
    }
    const e = readEnergy(r);
    return e?.watts != null ? { powerW: e.watts, powerLabel: e.label } : { powerW: null, powerLabel: null };
  }

  private forgetOld(): void {
    for (const [id, t] of this.tracks) {
      if (this.tracks.size <= this.o.keepMigrations) break;
      if (t.ended) this.tracks.delete(id);
    }
  }

  private sendStatus(): void {
    this.lastStatusAt = performance.now();
    if (this.clients.size > 0) this.broadcast('status', this.status());
  }

  /** While a migration runs or a page listens: sample quiet migrations, and send status once a second. */
  private ensureTicker(): void {
    if (this.ticker) return;
    const tick = () => {
      const now = performance.now();
      let active = 0;
      for (const t of this.tracks.values()) {
        if (t.ended) continue;
        if (migrationEnded(t.report.status)) continue;
        active++;
        if (now - t.lastWall >= this.o.tickMs) this.progress(t.report, t.guest, true);
      }
      if (now - this.lastStatusAt >= 1000) this.sendStatus();
      if (active === 0 && this.clients.size === 0) {
        clearInterval(this.ticker);
        this.ticker = undefined;
      }
    };
    // Not inside a switch-over's paused window (issue 17): right after it.
    this.ticker = setInterval(() => afterPausedWindow(tick, this), Math.min(100, this.o.tickMs));
    this.ticker.unref();
  }

  private broadcast(event: string, data: unknown): void {
    if (this.clients.size === 0) return;
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const c of this.clients) {
      // A subscriber that stopped reading is dropped rather than buffered without bound.
      if (c.writableLength > MAX_BUFFERED) {
        this.clients.delete(c);
        c.destroy();
      } else c.write(frame);
    }
  }
}

function sumSteps(g: GuestGauge): number {
  let n = 0;
  for (const s of g.steps()) n += s;
  return n;
}

function write(res: ServerResponse, event: string, data: unknown): void {
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}
