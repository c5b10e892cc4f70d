/**
 * The page's client of the agent's control API (docs/agent.md): the same endpoints and bodies the CLI uses, on
 * the origin the page came from. Nothing here can do what the API does not allow.
 */
import { isLivemigErrorCode, LivemigError } from '../../errors.js';
import type { MigrationReport } from '../../migration/stats.js';
import { type AnswerSchema, checkAnswer, guestSchema, reportSchema, stoppedSchema } from '../live-schemas.js';
import type { MigrationSummary } from '../summary.js';

/** A guest as GET /v1/guests describes it (the fields the page shows). */
export interface GuestRow {
  id: string;
  status: string;
  origin: string;
  config: { ramBytes: number; vcpus?: number; workload: { name: string } };
  steps: number[];
  cap: number;
  frequency: number;
  dirtyPages: number;
  migration?: string;
}

/** GET /v1/status: outgoing migrations as summaries (each report is at GET /v1/migrations/ID). */
export interface AgentStatus {
  address: string;
  version: string;
  guests: GuestRow[];
  outgoing: MigrationSummary[];
}

/** The options the page's form sets; every field is a MigrationOptions field of the API. */
export interface MigrationChoice {
  strategy: string;
  xbzrle: boolean;
  xbzrleCacheBytes: number;
  maxBandwidth: number;
  downtimeLimitMs: number;
  autoConverge: boolean;
  /** Source-host power budget in watts and how to hold it (docs/power.md); sent only when a budget is set. */
  powerCap?: number;
  capping?: string;
}

/** The agent refused a request: its `{error: {code, message}}` body, the code checked against livemig's list. */
export class ApiError extends LivemigError {
  override readonly name = 'ApiError';
}

/** The error an agent's answer `status` with body `json` means; a code livemig does not know is PROTOCOL. */
export function apiError(status: number, json: unknown): ApiError {
  const e = typeof json === 'object' && json !== null && 'error' in json ? json.error : undefined;
  const field = (k: string): unknown =>
    typeof e === 'object' && e !== null && k in e ? (e as Record<string, unknown>)[k] : undefined;
  const code = field('code');
  const message = field('message');
  const text = typeof message === 'string' ? message : `HTTP ${status}`;
  if (isLivemigErrorCode(code)) return new ApiError(code, text, { status });
  return new ApiError('PROTOCOL', `the agent answered ${status} without a known error code: ${text}`, {
    status,
  });
}

const TOKEN_KEY = 'livemig-api-token';
let memoryToken: string | undefined;

/**
 * The agent's API token (agents started with --api-token-file print the page's address as
 * `/dashboard/#token=…`): taken from the URL fragment — which the browser never sends to a server, nor in a
 * Referer — kept in this tab's sessionStorage, and removed from the address bar so it is not bookmarked or shared.
 */
export function takeToken(): string | undefined {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    try {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]!));
    } catch {
      // storage refused (private mode): the token lives until the page is reloaded
      memoryToken = decodeURIComponent(m[1]!);
    }
    history.replaceState(null, '', location.pathname + location.search);
  }
  return token();
}

function token(): string | undefined {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? memoryToken;
  } catch {
    return memoryToken;
  }
}

/** One call; a successful answer is checked by `schema` (live-schemas.ts) before the page uses it. */
async function call<T>(schema: AnswerSchema, method: string, path: string, body?: unknown): Promise<T> {
  const t = token();
  const auth: Record<string, string> = t ? { authorization: `Bearer ${t}` } : {};
  const res = await fetch(path, {
    method,
    headers: method === 'GET' ? auth : { ...auth, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    throw new ApiError('PROTOCOL', `the agent answered ${res.status} with something other than JSON`);
  }
  if (!res.ok) throw apiError(res.status, json);
  const r = checkAnswer<T>(schema, json);
  if (r.ok) return r.value;
  throw new ApiError(
    'PROTOCOL',
    `the agent answered ${method} ${path} with a body the page cannot use (at ${r.field}: ${r.problem})`,
    { status: res.status, field: r.field },
  );
}

const g = (id: string) => `/v1/guests/${encodeURIComponent(id)}`;

export const api = {
  startGuest: (
    id: string | undefined,
    config: { ramBytes: number; vcpus: number; workload: { name: string; params: Record<string, number> } },
  ) => call<GuestRow>(guestSchema, 'POST', '/v1/guests', { ...(id ? { id } : {}), config }),
  throttle: (id: string, cap: number) => call<GuestRow>(guestSchema, 'POST', `${g(id)}/throttle`, { cap }),
  stopGuest: (id: string) => call<unknown>(stoppedSchema, 'DELETE', g(id)),
  migrate: (guest: string, destination: string, options: MigrationChoice) =>
    call<MigrationReport>(reportSchema, 'POST', '/v1/migrations', { guest, destination, options }),
  migration: (id: string) =>
    call<MigrationReport>(reportSchema, 'GET', `/v1/migrations/${encodeURIComponent(id)}`),
  cancel: (id: string) =>
    call<MigrationReport>(reportSchema, 'POST', `/v1/migrations/${encodeURIComponent(id)}/cancel`),
};
