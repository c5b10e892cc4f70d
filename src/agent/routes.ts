/**
 * The control API's routes (docs/agent.md): a table of method + path pattern → handler, tried in order, first
 * match wins. A pattern's `:name` segment matches any one segment; a trailing `*` matches any further segments
 * (zero or more), which the handlers ignore but for /v1/migrations/incoming/*. Empty segments do not count
 * (`//v1//guests/` is `/v1/guests`). The gate (Host/Origin, token, content-type) runs before, in agent.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DirtyLogSync } from '../guest/dirty-log-sync.js';
import type { Guest, GuestConfig } from '../guest/index.js';
import type { MigrationOptions, Preset } from '../migration/options.js';
import type { OwnershipRegistry } from '../migration/ownership.js';
import type { MigrationReport } from '../migration/stats.js';
import type { HostPower } from '../power/index.js';
import type { SnapshotResult } from '../snapshot/index.js';
import type { EventHub, MigrationSummary } from '../web/index.js';
import { evacuateAgent, parseEvacuationRequest } from './evacuate.js';
import type { GuestInfo } from './guests.js';
import { HttpError, readJson, sendJson } from './http.js';
import { incomingOwnership } from './reconcile.js';
import {
  parseEmptyRequest,
  parseGuestRequest,
  parseMigrationQuery,
  parseMigrationRequest,
  parsePowerQuery,
  parseResumeRequest,
  parseThrottleRequest,
} from './requests.js';
import type { RestoreAnswer } from './snapshots.js';

/** What the routes need of the agent. */
export interface AgentApi {
  readonly power: HostPower;
  readonly events: EventHub;
  readonly ownership: OwnershipRegistry;
  status(): unknown;
  listGuests(): GuestInfo[];
  startGuest(config: GuestConfig, id?: string, run?: boolean): Promise<GuestInfo>;
  guestInfo(id: string): GuestInfo;
  stopGuest(id: string): Promise<void>;
  pauseGuest(id: string): Promise<GuestInfo>;
  resumeGuest(id: string): GuestInfo;
  setThrottle(id: string, cap?: number, frequency?: number): GuestInfo;
  guestState(id: string): unknown;
  guestRam(id: string): Guest;
  guestDirtyLog(id: string): DirtyLogSync;
  snapshotGuest(id: string, body: unknown): Promise<SnapshotResult>;
  restoreSnapshot(body: unknown): Promise<RestoreAnswer>;
  listMigrations(): MigrationSummary[];
  migrate(
    guestId: string,
    destination: string,
    explicit: Partial<MigrationOptions>,
    preset?: Preset,
  ): Promise<MigrationReport>;
  migration(id: string): MigrationReport;
  waitMigration(id: string): Promise<MigrationReport>;
  reconcileMigration(id: string): Promise<MigrationReport>;
  cancelMigration(id: string): MigrationReport;
  resumeMigration(id: string, destination?: string): MigrationReport;
}

export interface RouteRequest {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  method: string;
  /** The `:name` segments of the pattern. */
  params: Record<string, string>;
  /** The segments matched by a trailing `*`. */
  rest: string[];
}

export interface Route {
  method: string;
  path: string;
  handle(agent: AgentApi, r: RouteRequest): Promise<void> | void;
}

const p = (r: RouteRequest, name: string): string => r.params[name]!;

export const ROUTES: readonly Route[] = [
  { method: 'GET', path: '/', handle: (a, r) => sendJson(r.res, 200, a.status()) },
  { method: 'GET', path: '/v1/status/*', handle: (a, r) => sendJson(r.res, 200, a.status()) },
  {
    method: 'GET',
    path: '/v1/power/*',
    handle: (a, { url, res }) => {
      const q = parsePowerQuery(url.searchParams);
      sendJson(res, 200, a.power.series(q.since, { sample: q.sample, model: q.model }));
    },
  },
  { method: 'GET', path: '/v1/events/*', handle: (a, r) => a.events.subscribe(r.req, r.res) },

  { method: 'GET', path: '/v1/guests', handle: (a, r) => sendJson(r.res, 200, a.listGuests()) },
  {
    method: 'POST',
    path: '/v1/guests',
    handle: async (a, { req, res }) => {
      const body = parseGuestRequest(await readJson(req));
      sendJson(res, 201, await a.startGuest(body.config, body.id, body.run));
    },
  },
  { method: 'GET', path: '/v1/guests/:id', handle: (a, r) => sendJson(r.res, 200, a.guestInfo(p(r, 'id'))) },
  {
    method: 'DELETE',
    path: '/v1/guests/:id',
    handle: async (a, r) => {
      parseEmptyRequest(await readJson(r.req), 'stop');
      await a.stopGuest(p(r, 'id'));
      sendJson(r.res, 200, { id: p(r, 'id'), stopped: true });
    },
  },
  {
    method: 'POST',
    path: '/v1/guests/:id/pause/*',
    handle: async (a, r) => {
      parseEmptyRequest(await readJson(r.req), 'pause');
      sendJson(r.res, 200, await a.pauseGuest(p(r, 'id')));
    },
  },
  {
    method: 'POST',
    path: '/v1/guests/:id/resume/*',
    handle: async (a, r) => {
      parseEmptyRequest(await readJson(r.req), 'resume');
      sendJson(r.res, 200, a.resumeGuest(p(r, 'id')));
    },
  },
  {
    method: 'POST',
    path: '/v1/guests/:id/dirty-log/*',
    handle: async (a, r) => {
      parseEmptyRequest(await readJson(r.req), 'dirty-log');
      sendJson(r.res, 200, a.guestDirtyLog(p(r, 'id')));
    },
  },
  {
    method: 'POST',
    path: '/v1/guests/:id/throttle/*',
    handle: async (a, r) => {
      const body = parseThrottleRequest(await readJson(r.req));
      sendJson(r.res, 200, a.setThrottle(p(r, 'id'), body.cap, body.frequency));
    },
  },
  {
    method: 'GET',
    path: '/v1/guests/:id/state/*',
    handle: (a, r) => sendJson(r.res, 200, a.guestState(p(r, 'id'))),
  },
  { method: 'GET', path: '/v1/guests/:id/ram/*', handle: (a, r) => streamRam(r.res, a.guestRam(p(r, 'id'))) },
  // Snapshots to and from files in the agent's --snapshot-dir (snapshots.ts, docs/snapshot.md).
  {
    method: 'POST',
    path: '/v1/guests/:id/snapshot/*',
    handle: async (a, r) => sendJson(r.res, 200, await a.snapshotGuest(p(r, 'id'), await readJson(r.req))),
  },
  {
    method: 'POST',
    path: '/v1/snapshots/restore/*',
    handle: async (a, r) => sendJson(r.res, 201, await a.restoreSnapshot(await readJson(r.req))),
  },

  { method: 'GET', path: '/v1/migrations', handle: (a, r) => sendJson(r.res, 200, a.listMigrations()) },
  {
    method: 'POST',
    path: '/v1/migrations',
    handle: async (a, { req, res }) => {
      const body = parseMigrationRequest(await readJson(req));
      sendJson(res, 202, await a.migrate(body.guest, body.destination, body.options, body.preset));
    },
  },
  // Before .../incoming/*: GET /v1/migrations/incoming asks for a migration of that name (as it always has).
  {
    method: 'GET',
    path: '/v1/migrations/:id',
    handle: async (a, r) => {
      const id = p(r, 'id');
      if (parseMigrationQuery(r.url.searchParams).wait)
        return sendJson(r.res, 200, await a.waitMigration(id));
      sendJson(r.res, 200, a.migration(id));
    },
  },
  // The destination's side of ownership; incomingOwnership answers unknown methods and actions itself.
  {
    method: '*',
    path: '/v1/migrations/incoming/*',
    handle: async (a, r) => {
      parseEmptyRequest(await readJson(r.req), 'incoming migration');
      sendJson(r.res, 200, incomingOwnership(a.ownership, r.method, r.rest[0], r.rest[1]));
    },
  },
  {
    method: 'POST',
    path: '/v1/migrations/:id/reconcile/*',
    handle: async (a, r) => {
      parseEmptyRequest(await readJson(r.req), 'reconcile');
      sendJson(r.res, 200, await a.reconcileMigration(p(r, 'id')));
    },
  },
  {
    method: 'POST',
    path: '/v1/migrations/:id/cancel/*',
    handle: async (a, r) => {
      parseEmptyRequest(await readJson(r.req), 'cancel');
      sendJson(r.res, 202, a.cancelMigration(p(r, 'id')));
    },
  },
  {
    method: 'POST',
    path: '/v1/migrations/:id/resume/*',
    handle: async (a, r) => {
      const body = parseResumeRequest(await readJson(r.req));
      sendJson(r.res, 202, a.resumeMigration(p(r, 'id'), body.destination));
    },
  },
  // Host evacuation: answers when every guest has been moved (or failed to), with the report (evacuate.ts).
  {
    method: 'POST',
    path: '/v1/evacuate',
    handle: async (a, { req, res }) =>
      sendJson(res, 200, await evacuateAgent(a, parseEvacuationRequest(await readJson(req)))),
  },
];

interface Compiled {
  route: Route;
  segments: string[];
  tail: boolean;
}

const COMPILED: Compiled[] = ROUTES.map((route) => {
  const segments = route.path.split('/').filter(Boolean);
  const tail = segments.at(-1) === '*';
  if (tail) segments.pop();
  return { route, segments, tail };
});

export interface RouteMatch {
  route: Route;
  params: Record<string, string>;
  rest: string[];
}

/** The first route of the table that `method` and `url` match. */
export function matchRoute(method: string, url: URL): RouteMatch | undefined {
  const parts = url.pathname.split('/').filter(Boolean);
  for (const { route, segments, tail } of COMPILED) {
    if (route.method !== '*' && route.method !== method) continue;
    // The root is "/" itself, not any path of empty segments ("//").
    if (segments.length === 0 && !tail) {
      if (url.pathname === '/') return { route, params: {}, rest: [] };
      continue;
    }
    if (parts.length < segments.length || (!tail && parts.length !== segments.length)) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < segments.length && ok; i++) {
      const s = segments[i]!;
      if (s.startsWith(':')) params[s.slice(1)] = parts[i]!;
      else ok = s === parts[i];
    }
    if (ok) return { route, params, rest: parts.slice(segments.length) };
  }
  return undefined;
}

/** Answers one request (already through the gate) from the table, or 404. */
export async function dispatch(
  agent: AgentApi,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  const method = req.method ?? 'GET';
  const m = matchRoute(method, url);
  if (m) return m.route.handle(agent, { req, res, url, method, params: m.params, rest: m.rest });
  if (url.pathname.split('/').filter(Boolean)[0] !== 'v1') {
    throw new HttpError(404, `no such endpoint ${url.pathname}; the API lives under /v1 (see docs/agent.md)`);
  }
  throw new HttpError(404, `no such endpoint: ${method} ${url.pathname} (see docs/agent.md)`);
}

async function streamRam(res: ServerResponse, guest: Guest): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': guest.ram.bytes });
  for (const b of guest.ram.blocks) {
    const bytes = new Uint8Array(b.buffer, 0, b.pageCount * guest.ram.pageSize);
    for (let off = 0; off < bytes.length; off += 1 << 20) {
      const ok = res.write(Buffer.from(bytes.subarray(off, Math.min(bytes.length, off + (1 << 20)))));
      if (!ok) await new Promise<void>((r) => res.once('drain', () => r()));
    }
  }
  res.end();
}
