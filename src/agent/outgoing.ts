/**
 * Outgoing migrations of this agent: the driver that dials the destination and runs the source engine for a
 * hosted guest, post-copy reconnection with backoff (and `resume` to a new address), cancel, reconcile after an
 * OWNER_UNKNOWN end, and the bounded history that GET /v1/migrations lists.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { MigrationError, UsageError } from '../errors.js';
import { FrameConnection } from '../migration/connection.js';
import { type MigrationOptions, type Preset, resolveOptions } from '../migration/options.js';
import { TokenBucket } from '../migration/ratelimit.js';
import { newMigrationId, runSource } from '../migration/source/index.js';
import { emptyReport, type MigrationReport, migrationEnded } from '../migration/stats.js';
import type { HostPower } from '../power/index.js';
import { type EventHub, type MigrationSummary, migrationSummary } from '../web/index.js';
import type { GuestRegistry, HostedGuest } from './guests.js';
import { type OwnershipTicket, reconcileOutgoing } from './reconcile.js';
import { clientTlsOptions, type TlsMaterial, tlsFailure } from './tls.js';

export interface OutgoingOptions {
  guests: GuestRegistry;
  power: HostPower;
  events: EventHub;
  log: (line: string) => void;
  /** Mutual TLS for the connections to destinations. */
  tls?: TlsMaterial;
  /** This agent's address (reports' `source`). */
  address: () => string;
  /** Settled migrations kept (--history). */
  historySize: number;
}

interface OutgoingMigration {
  report: MigrationReport;
  abort: AbortController;
  done: Promise<MigrationReport>;
  /** The agent has finished with it (guest handed over or kept, energy added): its end may be announced. */
  settled: boolean;
  /** Post-copy recovery: where to reconnect (changed by `resume` with a new address). */
  destination: string;
  /** Wakes a waiting reconnect loop at once (`resume`). */
  retryNow?: () => void;
  /** GO is (being) sent: cancel and --timeout no longer apply (docs/protocol.md). */
  handedOff: boolean;
  /** Aborted when the agent stops: ends even a handed-over migration's waits. */
  shutdown: AbortController;
  /** To settle the guest's owner later (`livemig migrate --reconcile`). */
  ticket: OwnershipTicket;
  guestId: string;
}

/**
 * The report as clients may see it: the engine marks the migration ended a moment before the agent has finished
 * its bookkeeping (removing the guest, adding energy), and a client that sees the end must see all of it.
 */
function published(m: OutgoingMigration): MigrationReport {
  return !m.settled && migrationEnded(m.report.status) ? { ...m.report, status: 'active' } : m.report;
}

export class OutgoingMigrations {
  private readonly map = new Map<string, OutgoingMigration>();

  constructor(private readonly deps: OutgoingOptions) {}

  async migrate(
    guestId: string,
    destination: string,
    explicit: Partial<MigrationOptions>,
    preset?: Preset,
  ): Promise<MigrationReport> {
    const h = this.deps.guests.hosted(guestId);
    this.deps.guests.notMigrating(h);
    const o = resolveOptions(explicit, preset, h.guest.ram.bytes);
    const { host, port } = splitHostPort(destination);
    const id = newMigrationId();
    const report = emptyReport({
      id,
      guestId,
      strategy: o.strategy,
      source: this.deps.address(),
      destination,
      verify: o.verify,
      ramBytes: h.guest.ram.bytes,
      pageSize: h.guest.ram.pageSize,
      downtimeLimitMs: o.downtimeLimitMs,
      xbzrle: o.xbzrle,
      xbzrleCacheBytes: o.xbzrleCacheBytes,
      cacheWays: o.cacheWays,
      cacheSizing: o.cacheSizing,
      pageOrder: o.pageOrder,
      compress: o.compress,
      maxBandwidth: o.maxBandwidth,
    });
    const abort = new AbortController();
    const power = this.deps.power.beginMigration({ guestId, guest: h.guest, options: o, report });
    h.migrating = id;
    this.deps.events.progress(report, h.guest);
    const pacer = () => (o.maxBandwidth > 0 ? new TokenBucket(o.maxBandwidth) : undefined);
    const entry: OutgoingMigration = {
      report,
      abort,
      done: Promise.resolve(report),
      settled: false,
      destination,
      handedOff: false,
      shutdown: new AbortController(),
      guestId,
      ticket: {
        token: randomBytes(16).toString('hex'),
        handoverTimeoutMs: o.handoverTimeoutMs,
        reconcileTimeoutMs: o.reconcileTimeoutMs,
        // Ownership after GO: a fresh connection (no pacer: RECONCILE is a few bytes, never rate limited).
        redial: async () => {
          const { host: h2, port: p2 } = splitHostPort(entry.destination);
          try {
            return new FrameConnection(await dial(h2, p2, this.deps.tls));
          } catch (err) {
            throw new MigrationError(
              'CONNECTION_REFUSED',
              `cannot reach the destination agent at ${entry.destination}: ${(err as Error).message}`,
            );
          }
        },
      },
    };
    const done = (async () => {
      let socket: Socket;
      try {
        socket = await dial(host, port, this.deps.tls, abort.signal);
      } catch (err) {
        report.status = abort.signal.aborted ? 'cancelled' : 'failed';
        if (abort.signal.aborted) {
          report.error = {
            code: 'CANCELLED',
            message: 'migration cancelled by the operator while connecting',
          };
          return report;
        }
        const auth = tlsFailure(err as NodeJS.ErrnoException, `the destination agent at ${destination}`);
        report.error = {
          code: auth ? auth.code : 'CONNECTION_REFUSED',
          message: auth
            ? auth.message
            : `cannot connect to the destination agent at ${destination}: ${(err as Error).message}`,
        };
        return report;
      }
      // One bandwidth budget for the migration: the main connection and every parallel channel share the bucket.
      const bucket = pacer();
      const conn = new FrameConnection(socket, { pacer: bucket });
      this.deps.log(`migrating ${guestId} to ${destination} (${id}, ${o.strategy})`);
      return runSource({
        guest: h.guest,
        guestId,
        conn,
        options: o,
        report,
        signal: abort.signal,
        onProgress: (r) => {
          power.onProgress(r);
          this.deps.events.progress(r, h.guest);
        },
        onRound: power.onRound,
        recover: (cause) => this.reconnect(entry, cause, o.recoverTimeoutMs, pacer),
        recoveryToken: entry.ticket.token,
        // postcopy-preempt's channel: never paced (--max-bandwidth applies to the main connection).
        preempt: async () => {
          const { host: h2, port: p2 } = splitHostPort(entry.destination);
          try {
            return new FrameConnection(await dial(h2, p2, this.deps.tls, abort.signal));
          } catch (err) {
            throw new MigrationError(
              'CONNECTION_REFUSED',
              `cannot open the postcopy-preempt channel to ${entry.destination}: ${(err as Error).message}`,
            );
          }
        },
        redial: entry.ticket.redial,
        onHandOff: () => {
          entry.handedOff = true;
        },
        shutdown: entry.shutdown.signal,
        openChannel: async (index) => {
          try {
            return new FrameConnection(await dial(host, port, this.deps.tls, abort.signal), {
              pacer: bucket,
            });
          } catch (err) {
            const auth = tlsFailure(err as NodeJS.ErrnoException, `the destination agent at ${destination}`);
            throw (
              auth ??
              new MigrationError(
                'CONNECTION_REFUSED',
                `multifd channel ${index}: cannot connect to ${destination}: ${(err as Error).message}`,
              )
            );
          }
        },
      });
    })().then(async (r) => {
      try {
        h.migrating = undefined;
        if (r.status === 'completed') {
          // The guest lives on the destination now.
          this.deps.guests.delete(guestId);
          await h.guest.destroy();
        }
        await power.finish(r);
      } finally {
        entry.settled = true;
      }
      this.deps.events.end(r);
      this.deps.log(`migration ${id}: ${r.status}${r.error ? ` ${r.error.code} ${r.error.message}` : ''}`);
      return r;
    });
    entry.done = done;
    this.map.set(id, entry);
    this.pruneHistory();
    return report;
  }

  /**
   * Post-copy recovery, source side: dial the destination again (its address may have been changed by `resume`)
   * until it answers, with backoff, until `timeoutMs` (0 = until cancelled).
   */
  private async reconnect(
    entry: OutgoingMigration,
    cause: MigrationError,
    timeoutMs: number,
    pacer: () => TokenBucket | undefined,
  ): Promise<FrameConnection> {
    const id = entry.report.id;
    this.deps.log(
      `migration ${id}: post-copy link lost (${cause.message}); reconnecting to ${entry.destination}`,
    );
    const deadline = timeoutMs > 0 ? performance.now() + timeoutMs : Number.POSITIVE_INFINITY;
    let delay = 200;
    for (;;) {
      if (entry.abort.signal.aborted) {
        throw new MigrationError(
          'POSTCOPY_LINK_LOST',
          'post-copy recovery abandoned by the operator: the guest runs on the destination without the pages ' +
            'only this source held',
        );
      }
      if (performance.now() > deadline) {
        throw new MigrationError(
          'POSTCOPY_LINK_LOST',
          `the destination did not come back within --recover-timeout (${timeoutMs} ms); ` +
            'the guest runs there without the pages only this source held',
        );
      }
      const target = entry.destination;
      try {
        const { host, port } = splitHostPort(target);
        const socket = await dial(host, port, this.deps.tls, entry.abort.signal);
        this.deps.log(`migration ${id}: reconnected to ${target}`);
        return new FrameConnection(socket, { pacer: pacer() });
      } catch {
        // not reachable yet: wait, unless `resume` says to try now
      }
      await new Promise<void>((resolve) => {
        // One listener per wait, removed when the wait ends: a long postcopy-paused must not pile them up.
        const signal = entry.abort.signal;
        const done = () => {
          clearTimeout(t);
          signal.removeEventListener('abort', done);
          resolve();
        };
        const t = setTimeout(done, delay);
        entry.retryNow = done;
        signal.addEventListener('abort', done, { once: true });
      });
      entry.retryNow = undefined;
      delay = Math.min(delay * 2, 2000);
    }
  }

  /** `livemig migrate --resume`: reconnect a paused post-copy now, optionally to a new destination address. */
  resumeMigration(id: string, destination?: string): MigrationReport {
    const m = this.map.get(id);
    if (!m) throw new MigrationError('GUEST_NOT_FOUND', `no migration ${id} on this agent`);
    const status = m.report.status;
    if (status !== 'postcopy-paused' && status !== 'postcopy-recover') {
      throw new MigrationError(
        'BAD_ARGUMENT',
        `migration ${id} is ${status}, not postcopy-paused: only a post-copy whose link broke can be resumed`,
      );
    }
    if (destination !== undefined) {
      splitHostPort(destination);
      m.destination = destination;
    }
    m.retryNow?.();
    return published(m);
  }

  /**
   * Called as a migration is added: keeps the last --history − 1 settled outgoing migrations (oldest evicted first),
   * so that with the new one, once it ends, at most --history are kept. Active ones always stay.
   */
  private pruneHistory(): void {
    let settled = 0;
    for (const m of this.map.values()) if (m.settled) settled++;
    for (const [id, m] of this.map) {
      if (settled < this.deps.historySize) break;
      if (!m.settled) continue;
      this.map.delete(id);
      settled--;
    }
  }

  migration(id: string): MigrationReport {
    const m = this.map.get(id);
    if (!m) throw new MigrationError('GUEST_NOT_FOUND', `no migration ${id} on this agent`);
    return published(m);
  }

  async waitMigration(id: string): Promise<MigrationReport> {
    const m = this.map.get(id);
    if (!m) throw new MigrationError('GUEST_NOT_FOUND', `no migration ${id} on this agent`);
    return m.done;
  }

  cancelMigration(id: string): MigrationReport {
    const m = this.map.get(id);
    if (!m) throw new MigrationError('GUEST_NOT_FOUND', `no migration ${id} on this agent`);
    const r = published(m);
    if (migrationEnded(r.status)) {
      throw new MigrationError(
        'TOO_LATE',
        `too late: migration ${id} already ended (${r.status}${r.error ? ` ${r.error.code}` : ''})`,
      );
    }
    // After GO the guest belongs to the destination; only a post-copy waiting to reconnect can still be abandoned.
    const recovering = r.status === 'postcopy-paused' || r.status === 'postcopy-recover';
    if (m.handedOff && !recovering) {
      throw new MigrationError(
        'TOO_LATE',
        `too late: switch-over under way (GO sent) for migration ${id}: the guest now belongs to the destination; ` +
          `the migration ends by itself (GET /v1/migrations/${id}?wait=1)`,
      );
    }
    m.abort.abort();
    return published(m);
  }

  /** `livemig migrate --reconcile ID`: ask the destination again who runs the guest of a migration left OWNER_UNKNOWN. */
  async reconcileMigration(id: string): Promise<MigrationReport> {
    const m = this.map.get(id);
    if (!m) throw new MigrationError('GUEST_NOT_FOUND', `no migration ${id} on this agent`);
    await m.done;
    const h = this.deps.guests.get(m.guestId);
    const r = await reconcileOutgoing(
      {
        report: m.report,
        ticket: m.ticket,
        guestId: m.guestId,
        guest: h?.guest,
        dropHere: async () => {
          this.deps.guests.delete(m.guestId);
          await h?.guest.destroy();
          this.deps.events.changed();
        },
      },
      Math.min(m.ticket.reconcileTimeoutMs, 30_000),
    );
    this.deps.log(`migration ${id} reconciled: ${r.status}${r.error ? ` ${r.error.code}` : ''}`);
    return r;
  }

  /** Outgoing migrations as `GET /v1/status` and `GET /v1/migrations` list them: summaries, not reports. */
  list(): MigrationSummary[] {
    return [...this.map.values()].map((m) => migrationSummary(published(m)));
  }

  /**
   * Agent shutdown: every wait of every outgoing migration ends now. Before GO the guest goes back to running
   * here, after GO the engine stops waiting and its report says where the guest was left. Resolves once all have
   * ended, with one line per guest saying where it stayed.
   */
  async shutdown(): Promise<string[]> {
    for (const m of this.map.values()) {
      if (!migrationEnded(m.report.status)) m.abort.abort();
      m.shutdown.abort();
    }
    await Promise.allSettled([...this.map.values()].map((m) => m.done));
    return guestFates(this.deps.guests.values(), this.map.values());
  }
}

export function splitHostPort(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(
    address.replace(/^[a-z]+:\/\//, '').replace(/\/.*$/, ''),
  );
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port < 1 || port > 65535) {
    throw new UsageError(`"${address}" is not HOST:PORT (e.g. 127.0.0.1:7070 or [::1]:7070)`, 'destination');
  }
  return { host: (m[1] ?? m[2])!, port };
}

function dial(host: string, port: number, tls?: TlsMaterial, signal?: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = tls ? tlsConnect({ host, port, ...clientTlsOptions(tls, host) }) : connect({ host, port });
    const fail = (e: Error) => {
      clearTimeout(t);
      signal?.removeEventListener('abort', onAbort);
      s.destroy();
      reject(e);
    };
    const onAbort = () => fail(new MigrationError('CANCELLED', 'cancelled'));
    const t = setTimeout(() => fail(new MigrationError('TIMEOUT', 'connect timed out after 10 s')), 10_000);
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    s.once(tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', onAbort);
      resolve(s);
    });
    s.once('error', fail);
  });
}

/** One line per guest at shutdown: where each stayed (docs/agent.md). */
function guestFates(guests: Iterable<HostedGuest>, outgoing: Iterable<OutgoingMigration>): string[] {
  const lines: string[] = [];
  const byGuest = new Map<string, MigrationReport>();
  for (const m of outgoing) byGuest.set(m.guestId, m.report);
  for (const g of guests) {
    const r = byGuest.get(g.id);
    const last =
      r && r.status !== 'completed'
        ? ` (its migration ${r.id}: ${r.status}${r.error ? ` ${r.error.code}` : ''})`
        : '';
    lines.push(
      `shutdown: guest ${g.id} was ${g.guest.running ? 'running' : 'paused'} here${last}; stopped with the agent`,
    );
  }
  for (const m of outgoing) {
    if (m.report.status === 'completed' && !lines.some((l) => l.includes(`guest ${m.guestId} `))) {
      lines.push(
        `shutdown: guest ${m.guestId} runs on ${m.destination} (migration ${m.report.id} completed)`,
      );
    }
  }
  return lines;
}
