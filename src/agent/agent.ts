/**
 * The agent: the long-running livemig process on each host. It hosts guests, accepts incoming migrations, runs
 * outgoing ones, and answers a small HTTP+JSON control API — all on one TCP port. This class composes the parts:
 * listener.ts (admission, TLS, sniffing migration streams from HTTP), guests.ts (the guest registry),
 * outgoing.ts (the outgoing-migration driver), routes.ts (the control API's route table); incoming migrations
 * are accepted here.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { keepCompiledCode } from '../compiled-code.js';
import { MigrationError } from '../errors.js';
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
import { ChannelRegistry } from '../migration/multifd/registry.js';
import type { MigrationOptions, Preset } from '../migration/options.js';
import { OwnershipRegistry } from '../migration/ownership.js';
import { PageSinkPool } from '../migration/page-sink.js';
import { PreemptRegistry } from '../migration/preempt.js';
import { MAX_HELLO_PAYLOAD } from '../migration/protocol/index.js';
import type { MigrationReport } from '../migration/stats.js';
import { pausedWindowClosed } from '../paused-window.js';
import { HostPower } from '../power/index.js';
import type { SnapshotResult } from '../snapshot/index.js';
import { VERSION } from '../version.js';
import { EventHub, type MigrationSummary, serveDashboard } from '../web/index.js';
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
import { type GuestInfo, GuestRegistry } from './guests.js';
import { createApiServer, HttpError, requestUrl, sendError } from './http.js';
import { Listener } from './listener.js';
import { OutgoingMigrations, splitHostPort } from './outgoing.js';
import { type AgentApi, dispatch } from './routes.js';
import { AgentSnapshots, type RestoreAnswer } from './snapshots.js';
import type { TlsMaterial } from './tls.js';

export type { GuestInfo, GuestStatus } from './guests.js';
export { splitHostPort };

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
  /** The folder snapshots are written to and restored from (`--snapshot-dir`); without it, both are refused. */
  snapshotDir?: string;
}

export class Agent implements AgentApi {
  private readonly guests: GuestRegistry;
  private readonly outgoing: OutgoingMigrations;
  private readonly snapshots: AgentSnapshots;
  private readonly incoming = new Map<string, IncomingMigration>();
  /** Incoming post-copies a PREEMPT connection may join (postcopy-preempt). */
  private readonly preempt = new PreemptRegistry();
  /** Post-copies whose link broke, waiting for their source to reconnect, by migration id. */
  private readonly pausedIncoming = new Map<string, PausedIncoming>();
  private readonly finishedIncoming: IncomingMigration[] = [];
  /** Incoming migrations a RECONCILE may name, and the fate of ended ones (src/migration/ownership.ts). */
  readonly ownership = new OwnershipRegistry();
  /** Incoming migrations waiting for their parallel channels (multifd). */
  private readonly channels = new ChannelRegistry();
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
    this.outgoing = new OutgoingMigrations({
      guests: this.guests,
      power: this.power,
      events: this.events,
      log: this.log,
      tls: opts.tls,
      address: () => this.address,
      historySize: this.limits.historySize,
    });
    this.snapshots = new AgentSnapshots({
      dir: opts.snapshotDir,
      guests: this.guests,
      resources: () => this.resources,
      log: this.log,
    });
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
    // Channels announced by admitted migrations (multifd, postcopy-preempt) get places of their own beyond
    // --max-incoming.
    if (this.migrationStreams >= this.maxIncoming + this.channels.pending + this.preempt.pending) {
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
    let counted = true;
    const uncount = () => {
      if (counted) this.migrationStreams--;
      counted = false;
    };
    socket.once('close', uncount);
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
        // A parallel channel of an admitted migration counts with it, not against --max-incoming.
        channels: this.channels,
        onChannel: uncount,
        preempt: this.preempt,
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

  /** Writes a guest (left running or paused) to a file in --snapshot-dir (snapshots.ts). */
  snapshotGuest(id: string, body: unknown): Promise<SnapshotResult> {
    return this.snapshots.snapshot(id, body);
  }

  /** Starts a guest from a snapshot file in --snapshot-dir (snapshots.ts). */
  restoreSnapshot(body: unknown): Promise<RestoreAnswer> {
    return this.snapshots.restore(body);
  }

  // ------------------------------------------------------------------------------------------------------
  // Outgoing migrations (outgoing.ts)

  migrate(
    guestId: string,
    destination: string,
    explicit: Partial<MigrationOptions>,
    preset?: Preset,
  ): Promise<MigrationReport> {
    return this.outgoing.migrate(guestId, destination, explicit, preset);
  }

  /** `livemig migrate --resume`: reconnect a paused post-copy now, optionally to a new destination address. */
  resumeMigration(id: string, destination?: string): MigrationReport {
    return this.outgoing.resumeMigration(id, destination);
  }

  migration(id: string): MigrationReport {
    return this.outgoing.migration(id);
  }

  waitMigration(id: string): Promise<MigrationReport> {
    return this.outgoing.waitMigration(id);
  }

  cancelMigration(id: string): MigrationReport {
    return this.outgoing.cancelMigration(id);
  }

  /** `livemig migrate --reconcile ID`: ask the destination again who runs the guest of a migration left OWNER_UNKNOWN. */
  reconcileMigration(id: string): Promise<MigrationReport> {
    return this.outgoing.reconcileMigration(id);
  }

  /** Outgoing migrations as `GET /v1/migrations` lists them: summaries (the report is at /v1/migrations/ID). */
  listMigrations(): MigrationSummary[] {
    return this.outgoing.list();
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
    for (const line of await this.outgoing.shutdown()) this.log(line);
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
    await pausedWindowClosed(); // a guest paused for its switch-over here goes first (issue 17)
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

export async function startAgent(opts: AgentOptions): Promise<Agent> {
  keepCompiledCode(); // a switch-over's code must not be compiled again in its paused window (compiled-code.ts)
  const a = new Agent(opts);
  await a.listen();
  return a;
}
