/**
 * The agent: the long-running livemig process on each host. It hosts guests, accepts incoming migrations, runs
 * outgoing ones, and answers a small HTTP+JSON control API — all on one TCP port. A connection that starts with
 * the migration preamble is a migration stream; anything else is handed to the HTTP server.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { MigrationError, UsageError } from '../errors.js';
import type { DirtyLogSync } from '../guest/dirty-log-sync.js';
import type { Guest, GuestConfig } from '../guest/index.js';
import { safeLine } from '../log-safe.js';
import { BufferBudget } from '../migration/buffer-budget.js';
import { FrameConnection } from '../migration/connection.js';
import {
  DEFAULT_DESTINATION_LIMITS,
  type IncomingMigration,
  type PausedIncoming,
  runDestination,
} from '../migration/destination.js';
import { type MigrationOptions, type Preset, resolveOptions } from '../migration/options.js';
import { OwnershipRegistry } from '../migration/ownership.js';
import { PageSinkPool } from '../migration/page-sink.js';
import { MAX_HELLO_PAYLOAD } from '../migration/protocol.js';
import { TokenBucket } from '../migration/ratelimit.js';
import { newMigrationId, runSource } from '../migration/source/index.js';
import { emptyReport, type MigrationReport } from '../migration/stats.js';
import { HostPower } from '../power/index.js';
import { VERSION } from '../version.js';
import { EventHub, serveDashboard } from '../web/index.js';
import {
  type AdmissionLimits,
  checkAdmissionLimits,
  defaultAdmissionLimits,
  limitRequestTime,
  type Reservation,
  ResourceBudget,
} from './admission.js';
import { type Access, accessOf, checkRequest } from './auth.js';
import { syncDirtyLog } from './dirty-log-route.js';
import { type GuestInfo, GuestRegistry, type HostedGuest } from './guests.js';
import { createApiServer, HttpError, requestUrl, sendError } from './http.js';
import { Listener } from './listener.js';
import { type OwnershipTicket, reconcileOutgoing } from './reconcile.js';
import { type AgentApi, dispatch } from './routes.js';
import { clientTlsOptions, type TlsMaterial, tlsFailure } from './tls.js';

export type { GuestInfo, GuestStatus } from './guests.js';

export interface AgentOptions {
  host: string;
  port: number;
  /** Largest guest an incoming migration or a start request may ask for. */
  maxRamBytes?: number;
  /** Concurrent incoming migrations accepted. */
  maxIncoming?: number;
  /** What unauthenticated peers may make this agent hold (admission.ts, docs/security.md "Resource limits"). */
  limits?: Partial<AdmissionLimits>;
  log?: (line: string) => void;
  /** Serve the dashboard page under /dashboard/ (docs/dashboard.md). */
  dashboard?: boolean;
  /** Mutual TLS on the port (migrations in and out, control API); docs/security.md. */
  tls?: TlsMaterial;
  /** Allow plain TCP on a non-loopback address. */
  insecure?: boolean;
  /**
   * Bearer token required by requests that change state or read guest memory (`--api-token-file`); without it,
   * those need only pass the Host/Origin check (src/agent/auth.ts, docs/security.md).
   */
  apiToken?: string;
  /** Host names (besides IP literals and localhost) that browsers may use to reach this agent's plain-HTTP API. */
  allowHosts?: string[];
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

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

/**
 * The report as clients may see it: the engine marks the migration ended a moment before the agent has finished
 * its bookkeeping (removing the guest, adding energy), and a client that sees the end must see all of it.
 */
function published(m: OutgoingMigration): MigrationReport {
  return !m.settled && TERMINAL.has(m.report.status) ? { ...m.report, status: 'active' } : m.report;
}

export class Agent implements AgentApi {
  private readonly guests: GuestRegistry;
  private readonly outgoing = new Map<string, OutgoingMigration>();
  private readonly incoming = new Map<string, IncomingMigration>();
  /** Post-copies whose link broke, waiting for their source to reconnect, by migration id. */
  private readonly pausedIncoming = new Map<string, PausedIncoming>();
  private readonly finishedIncoming: IncomingMigration[] = [];
  /** Incoming migrations a RECONCILE may name, and the fate of ended ones (src/migration/ownership.ts). */
  readonly ownership = new OwnershipRegistry();
  /** A page-sink thread started ahead of the next incoming migration, so that its setup does not wait for one. */
  readonly pageSinks = new PageSinkPool();
  private readonly listener: Listener;
  private http: Server;
  private readonly maxRamBytes: number;
  private readonly maxIncoming: number;
  private readonly log: (line: string) => void;
  /** Door limits (admission.ts). */
  readonly limits: AdmissionLimits;
  /** Guest RAM and vCPU threads of this agent: hosted guests plus reservations for those being created. */
  readonly resources: ResourceBudget;
  /** Frames being assembled across all incoming migration connections. */
  readonly frameBudget: BufferBudget;
  /** Incoming migration streams (from their first bytes), until they close. */
  private migrationStreams = 0;
  /** Power meter of this host (GET /v1/power) and capping of outgoing migrations (src/power). */
  readonly power = new HostPower({
    guests: () => [...this.guests.values()].map((g) => ({ id: g.id, guest: g.guest })),
  });
  address = '';
  /** Live progress for `GET /v1/events` (what the dashboard draws), fed by the source's onProgress. */
  readonly events = new EventHub(() => this.status(), { power: this.power });

  /** Answers one HTTP request on the agent's port (control API, dashboard). */
  readonly handleHttp = (req: IncomingMessage, res: ServerResponse): void => {
    this.handle(req, res, false).catch((err: unknown) => sendError(res, err));
  };

  /** Answers one request on the `--dashboard PORT` listener: the page and GET requests only (plain HTTP). */
  readonly handleDashboardHttp = (req: IncomingMessage, res: ServerResponse): void => {
    this.handle(req, res, true).catch((err: unknown) => sendError(res, err));
  };

  constructor(private readonly opts: AgentOptions) {
    this.maxRamBytes = opts.maxRamBytes ?? DEFAULT_DESTINATION_LIMITS.maxRamBytes;
    this.guests = new GuestRegistry({
      maxRamBytes: this.maxRamBytes,
      resources: () => this.resources,
      changed: () => this.events.changed(),
      log: (line) => this.log(line),
    });
    this.limits = {
      ...defaultAdmissionLimits(this.maxRamBytes),
      ...opts.limits,
      ...(opts.maxIncoming !== undefined ? { maxIncoming: opts.maxIncoming } : {}),
    };
    checkAdmissionLimits(this.limits);
    this.maxIncoming = this.limits.maxIncoming;
    this.resources = new ResourceBudget({ ...this.limits, maxRamBytes: this.maxRamBytes }, () =>
      this.guests.inUse(),
    );
    this.frameBudget = new BufferBudget(this.limits.maxBufferedBytes);
    // Log lines carry peers' words (ERROR messages, guest ids from HELLO): escaped, one line each (log-safe.ts).
    const log = opts.log;
    this.log = log ? (line) => log(safeLine(line)) : () => undefined;
    this.http = createApiServer(this.handleHttp);
    // A request must be complete (headers and body) within --hello-timeout.
    limitRequestTime(this.http, this.limits.helloTimeoutMs);
    this.listener = new Listener({
      host: opts.host,
      port: opts.port,
      tls: opts.tls,
      insecure: opts.insecure === true,
      limits: this.limits,
      log: this.log,
      onHttp: (socket) => this.http.emit('connection', socket),
      onMigration: (socket) => this.acceptMigration(socket),
    });
  }

  async listen(): Promise<string> {
    const a = await this.listener.listen();
    this.power.start();
    this.pageSinks.warm();
    this.address = `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
    return this.address;
  }

  private acceptMigration(socket: Socket): void {
    // Until HELLO is accepted a frame may be at most MAX_HELLO_PAYLOAD; large frames reserve room in frameBudget.
    const conn = new FrameConnection(socket, {
      expectPreamble: true,
      maxPayload: MAX_HELLO_PAYLOAD,
      budget: this.frameBudget,
    });
    // A migration stream counts from its first bytes until its connection closes, whatever it has sent yet.
    if (this.migrationStreams >= this.maxIncoming) {
      this.log(`refused migration stream from ${socket.remoteAddress ?? '?'}: --max-incoming reached`);
      void conn.sendErrorAndClose(
        new MigrationError(
          'RESOURCE_LIMIT',
          `this agent already receives ${this.migrationStreams} migration streams (--max-incoming ${this.maxIncoming})`,
        ),
      );
      return;
    }
    this.migrationStreams++;
    socket.once('close', () => this.migrationStreams--);
    const key = `in-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
    let reservation: Reservation | undefined;
    void runDestination(
      conn,
      {
        onStart: (m) => this.incoming.set(key, m),
        acceptGuestId: (id) => !this.guests.has(id) && !this.ownership.holdsGuest(id),
        reserve: (req) => {
          reservation = this.resources.reserve(req, 'the source announced');
          return reservation;
        },
        ownership: this.ownership,
        onHeld: (m) => {
          this.log(`guest ${m.guestId} (${m.id}) held here, paused: ${m.error?.message ?? ''}`);
          this.events.changed();
        },
        onPostcopyPaused: (p) => {
          this.pausedIncoming.set(p.migrationId, p);
          this.log(
            `post-copy of ${p.guestId} (${p.migrationId}) paused: link lost; waiting for the source to reconnect`,
          );
          this.events.changed();
        },
        findPaused: (migrationId) => {
          const p = this.pausedIncoming.get(migrationId);
          if (p) this.pausedIncoming.delete(migrationId);
          return p;
        },
        onGuestResumed: (guestId, guest, m) => {
          reservation?.release(); // the hosted guest counts from now on
          this.guests.addMigratedIn(guestId, guest);
          this.log(`guest ${guestId} resumed here (migration ${m.id})`);
          this.events.changed();
        },
        onFinished: (m) => {
          this.pageSinks.warm(); // the next migration's sink thread boots now, not during this one's switch-over
          this.incoming.delete(key);
          this.finishedIncoming.push(m);
          if (this.finishedIncoming.length > this.limits.historySize) this.finishedIncoming.shift();
          this.log(
            `incoming migration ${m.id || '?'} of ${m.guestId || '?'}: ${m.error ? `${m.error.code} ${m.error.message}` : m.phase}`,
          );
        },
      },
      {
        ...DEFAULT_DESTINATION_LIMITS,
        maxRamBytes: this.maxRamBytes,
        helloTimeoutMs: this.limits.helloTimeoutMs,
      },
      this.pageSinks,
    );
  }

  // ------------------------------------------------------------------------------------------------------
  // Guests

  startGuest(config: GuestConfig, id?: string, run = true): Promise<GuestInfo> {
    return this.guests.startGuest(config, id, run);
  }

  guestInfo(id: string): GuestInfo {
    return this.guests.guestInfo(id);
  }

  listGuests(): GuestInfo[] {
    return this.guests.listGuests();
  }

  pauseGuest(id: string): Promise<GuestInfo> {
    return this.guests.pauseGuest(id);
  }

  resumeGuest(id: string): GuestInfo {
    return this.guests.resumeGuest(id);
  }

  setThrottle(id: string, cap?: number, frequency?: number): GuestInfo {
    return this.guests.setThrottle(id, cap, frequency);
  }

  /** Stops a guest; a post-copy into it that waits for its source to reconnect is abandoned. */
  stopGuest(id: string): Promise<void> {
    return this.guests.stopGuest(id, () => {
      for (const [mid, p] of this.pausedIncoming) {
        if (p.guestId !== id) continue;
        this.pausedIncoming.delete(mid);
        p.abandon(
          new MigrationError('CANCELLED', `guest ${id} was stopped while its post-copy waited for recovery`),
        );
      }
    });
  }

  /** vCPU state of a paused guest (for the determinism oracle). */
  guestState(id: string): unknown {
    return this.guests.guestState(id);
  }

  /** The RAM of a paused guest, page by page (for byte-for-byte verification in tests and tools). */
  guestRam(id: string): Guest {
    return this.guests.guestRam(id);
  }

  /** Syncs a guest's dirty log: the pages written since the last sync (dirty-log-route.ts). */
  guestDirtyLog(id: string): DirtyLogSync {
    return syncDirtyLog(this.guests.hosted(id));
  }

  // ------------------------------------------------------------------------------------------------------
  // Outgoing migrations

  async migrate(
    guestId: string,
    destination: string,
    explicit: Partial<MigrationOptions>,
    preset?: Preset,
  ): Promise<MigrationReport> {
    const h = this.guests.hosted(guestId);
    this.guests.notMigrating(h);
    const o = resolveOptions(explicit, preset, h.guest.ram.bytes);
    const { host, port } = splitHostPort(destination);
    const id = newMigrationId();
    const report = emptyReport({
      id,
      guestId,
      strategy: o.strategy,
      source: this.address,
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
    const power = this.power.beginMigration({ guestId, guest: h.guest, options: o, report });
    h.migrating = id;
    this.events.progress(report, h.guest);
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
            return new FrameConnection(await dial(h2, p2, this.opts.tls));
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
        socket = await dial(host, port, this.opts.tls, abort.signal);
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
      const conn = new FrameConnection(socket, { pacer: pacer() });
      this.log(`migrating ${guestId} to ${destination} (${id}, ${o.strategy})`);
      return runSource({
        guest: h.guest,
        guestId,
        conn,
        options: o,
        report,
        signal: abort.signal,
        onProgress: (r) => {
          power.onProgress(r);
          this.events.progress(r, h.guest);
        },
        onRound: power.onRound,
        recover: (cause) => this.reconnect(entry, cause, o.recoverTimeoutMs, pacer),
        recoveryToken: entry.ticket.token,
        redial: entry.ticket.redial,
        onHandOff: () => {
          entry.handedOff = true;
        },
        shutdown: entry.shutdown.signal,
      });
    })().then(async (r) => {
      try {
        h.migrating = undefined;
        if (r.status === 'completed') {
          // The guest lives on the destination now.
          this.guests.delete(guestId);
          await h.guest.destroy();
        }
        await power.finish(r);
      } finally {
        entry.settled = true;
      }
      this.events.end(r);
      this.log(`migration ${id}: ${r.status}${r.error ? ` ${r.error.code} ${r.error.message}` : ''}`);
      return r;
    });
    entry.done = done;
    this.outgoing.set(id, entry);
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
    this.log(`migration ${id}: post-copy link lost (${cause.message}); reconnecting to ${entry.destination}`);
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
        const socket = await dial(host, port, this.opts.tls, entry.abort.signal);
        this.log(`migration ${id}: reconnected to ${target}`);
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
    const m = this.outgoing.get(id);
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
    for (const m of this.outgoing.values()) if (m.settled) settled++;
    for (const [id, m] of this.outgoing) {
      if (settled < this.limits.historySize) break;
      if (!m.settled) continue;
      this.outgoing.delete(id);
      settled--;
    }
  }

  migration(id: string): MigrationReport {
    const m = this.outgoing.get(id);
    if (!m) throw new MigrationError('GUEST_NOT_FOUND', `no migration ${id} on this agent`);
    return published(m);
  }

  async waitMigration(id: string): Promise<MigrationReport> {
    const m = this.outgoing.get(id);
    if (!m) throw new MigrationError('GUEST_NOT_FOUND', `no migration ${id} on this agent`);
    return m.done;
  }

  cancelMigration(id: string): MigrationReport {
    const m = this.outgoing.get(id);
    if (!m) throw new MigrationError('GUEST_NOT_FOUND', `no migration ${id} on this agent`);
    const r = published(m);
    if (TERMINAL.has(r.status)) {
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
    const m = this.outgoing.get(id);
    if (!m) throw new MigrationError('GUEST_NOT_FOUND', `no migration ${id} on this agent`);
    await m.done;
    const h = this.guests.get(m.guestId);
    const r = await reconcileOutgoing(
      {
        report: m.report,
        ticket: m.ticket,
        guestId: m.guestId,
        guest: h?.guest,
        dropHere: async () => {
          this.guests.delete(m.guestId);
          await h?.guest.destroy();
          this.events.changed();
        },
      },
      Math.min(m.ticket.reconcileTimeoutMs, 30_000),
    );
    this.log(`migration ${id} reconciled: ${r.status}${r.error ? ` ${r.error.code}` : ''}`);
    return r;
  }

  /** Outgoing migrations as `GET /v1/migrations` lists them (without per-round detail). */
  listMigrations(): unknown[] {
    return [...this.outgoing.values()].map((m) => summary(published(m)));
  }

  status(): unknown {
    return {
      agent: 'livemig',
      version: VERSION,
      address: this.address,
      pid: process.pid,
      guests: this.listGuests(),
      outgoing: this.listMigrations(),
      incoming: [...this.incoming.values(), ...this.finishedIncoming],
    };
  }

  async close(): Promise<void> {
    this.power.stop();
    for (const p of this.pausedIncoming.values()) {
      p.abandon(new MigrationError('CANCELLED', 'the agent is shutting down'));
    }
    this.pausedIncoming.clear();
    for (const h of this.ownership.close(
      new MigrationError('CANCELLED', 'the agent is shutting down: the copy held here is discarded', {
        remote: true,
      }),
    )) {
      this.log(`guest ${h.guestId}: its held copy (migration ${h.migrationId}) discarded at shutdown`);
    }
    this.events.close();
    // Every wait of every outgoing migration ends now: before GO the guest goes back to running here, after GO
    // the engine stops waiting and its report says where the guest was left.
    for (const m of this.outgoing.values()) {
      if (!TERMINAL.has(m.report.status)) m.abort.abort();
      m.shutdown.abort();
    }
    await Promise.allSettled([...this.outgoing.values()].map((m) => m.done));
    for (const line of guestFates(this.guests.values(), this.outgoing.values())) this.log(line);
    await this.guests.destroyAll();
    this.listener.destroyConnections();
    await this.pageSinks.close();
    await this.listener.close();
  }

  // ------------------------------------------------------------------------------------------------------
  // HTTP control API (documented in docs/agent.md)

  /** Refuses what `access` may not do here: foreign Host/Origin, control on the dashboard listener, no token. */
  private gate(req: IncomingMessage, access: Access, dashboardListener: boolean): void {
    checkRequest(req.headers, access, {
      // Under mutual TLS a rebound page cannot complete the handshake; the dashboard listener is always plain.
      checkHost: dashboardListener || !this.opts.tls,
      hostNames: [this.opts.host, ...(this.opts.allowHosts ?? [])].map((h) => h.toLowerCase()),
      token: this.opts.apiToken,
      readOnly: dashboardListener,
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse, dashboardListener: boolean): Promise<void> {
    const url = requestUrl(req);
    const parts = url.pathname.split('/').filter(Boolean);
    const method = req.method ?? 'GET';
    this.gate(req, 'read', dashboardListener);
    if ((this.opts.dashboard || dashboardListener) && (await serveDashboard(req, res, url))) return;
    // Commands must say they are JSON: a web page elsewhere cannot send that cross-origin without a CORS
    // preflight, which this agent never grants, so a browser on this host cannot be used to drive it.
    if (
      method !== 'GET' &&
      method !== 'HEAD' &&
      !/^application\/json\b/i.test(req.headers['content-type'] ?? '')
    ) {
      throw new HttpError(415, `${method} requests must have content-type: application/json`);
    }
    this.gate(req, accessOf(method, parts), dashboardListener);
    return dispatch(this, req, res, url);
  }
}

function summary(r: MigrationReport): unknown {
  const { perRound: _p, events: _e, ...rest } = r;
  return rest;
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
    const onAbort = () => fail(new Error('cancelled'));
    const t = setTimeout(() => fail(new Error('connect timed out after 10 s')), 10_000);
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

export async function startAgent(opts: AgentOptions): Promise<Agent> {
  const a = new Agent(opts);
  await a.listen();
  return a;
}
