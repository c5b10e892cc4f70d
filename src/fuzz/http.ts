/**
 * Hostile HTTP against the agent's control API (and the dashboard's read-only listener): methods, request
 * targets, headers (Host, Origin, authorization, content-type, odd ones) and bodies, each a mutation of a valid
 * request or random, sent as raw bytes over TCP. The contract: every request gets a complete, well-formed answer —
 * 2xx/3xx/4xx, JSON unless it is the page, a redirect, a RAM dump or the event stream, with `{error: {code,
 * message}}` on a 4xx — never a 5xx, a hang or a crash; and the agent answers GET /v1/status afterwards.
 */
import { connect } from 'node:net';
import { type Agent, newApiToken, startAgent } from '../agent/index.js';
import { Rng } from '../codec/fuzz.js';
import { listenDashboard } from '../web/index.js';
import { mutateBody, type TargetCounts } from './targets.js';

/** One request to send and what came back. */
export interface HttpExchange {
  request: string;
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

const METHODS = ['GET', 'GET', 'GET', 'POST', 'POST', 'POST', 'DELETE', 'PUT', 'PATCH', 'HEAD', 'OPTIONS'];
const IDS = ['g1', 'g1', 'g2', 'x', '', '..', '%2e%2e', 'constructor', '__proto__', '%00', 'a'.repeat(300)];
const GUEST_ACTIONS = ['pause', 'resume', 'throttle', 'state', 'ram', 'constructor', 'toString', ''];
const MIGRATION_ACTIONS = ['cancel', 'resume', '', 'hasOwnProperty'];
const DASHBOARD_FILES = [
  '',
  'index.html',
  'app.js',
  'app.css',
  'constructor',
  '__proto__',
  '../package.json',
];
const CONTENT_TYPES = [
  'application/json',
  'application/json',
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  '',
];

function pick<T>(rng: Rng, list: readonly T[]): T {
  return list[rng.int(list.length)]!;
}

/** Random printable characters a request target may hold, and some it may not (the parser refuses those). */
function junk(rng: Rng, n: number): string {
  const chars = 'abcXYZ019-._~%/?#&=+;:@!$\'()*,[]{}|\\^`"<> \t';
  let s = '';
  for (let i = 0; i < n; i++) s += chars[rng.int(rng.int(20) === 0 ? chars.length : chars.length - 9)]!;
  return s;
}

function target(rng: Rng): string {
  const id = pick(rng, IDS);
  const base = pick(rng, [
    '/',
    '/v1',
    '/v1/',
    '/v1/status',
    '/v1/status',
    '/v1/events',
    `/v1/power?since=${rng.int(3) ? rng.int(1e6) : junk(rng, 4)}&model=${pick(rng, ['cubic', 'linear', 'x', ''])}&sample=${rng.int(2)}`,
    '/v1/guests',
    '/v1/guests',
    `/v1/guests/${id}`,
    `/v1/guests/${id}/${pick(rng, GUEST_ACTIONS)}`,
    `/v1/guests/${id}/${pick(rng, GUEST_ACTIONS)}`,
    '/v1/migrations',
    `/v1/migrations/${id}`,
    `/v1/migrations/${id}/${pick(rng, MIGRATION_ACTIONS)}`,
    '/dashboard',
    `/dashboard/${pick(rng, DASHBOARD_FILES)}`,
    '/v2/status',
    '//v1/status',
    '/v1/../v1/status',
  ]);
  const k = rng.int(10);
  if (k === 0) return `${base}${junk(rng, 1 + rng.int(12))}`;
  if (k === 1) return base.replace(/[a-z]/, (c) => `%${c.charCodeAt(0).toString(16)}`);
  if (k === 2) return rng.int(4) === 0 ? `http://agent${base}` : rng.int(2) ? '*' : junk(rng, rng.int(10));
  return base;
}

/** The request's body: a valid one for its target (mutated, usually), or JSON oddities, or bytes. */
function body(rng: Rng, path: string): Buffer | undefined {
  const k = rng.int(16);
  if (k === 0) return undefined;
  if (k === 1) return Buffer.from(rng.bytes(rng.int(64)));
  if (k === 2) return Buffer.from(pick(rng, ['null', '[]', '"x"', '7', 'true', '{', '{"a":', '{}', '']));
  if (k === 3) return Buffer.from(`${'['.repeat(5000)}${']'.repeat(5000)}`);
  if (k === 4 && rng.int(8) === 0) return Buffer.alloc((1 << 20) + 10, 0x20); // over the 1 MiB limit
  const valid: Record<string, unknown> = path.includes('/throttle')
    ? { cap: 50, frequency: 0.5 }
    : path.startsWith('/v1/migrations/') && path.endsWith('/resume')
      ? { destination: '127.0.0.1:1' }
      : path.startsWith('/v1/migrations')
        ? { guest: 'g1', destination: '127.0.0.1:1', options: { strategy: 'precopy', maxBandwidth: 1 << 20 } }
        : path.startsWith('/v1/guests') && !path.slice(11)
          ? {
              id: `f${rng.int(1000)}`,
              run: rng.int(2) === 0,
              config: { ramBytes: 65536, workload: { name: 'idle' } },
            }
          : {};
  const v = rng.int(3) === 0 ? valid : mutateBody(rng, valid);
  // Never a real address: a mutation could name another agent on this host (127.0.0.1:7070) and send it g1.
  if (v && typeof v === 'object' && typeof (v as { destination?: unknown }).destination === 'string') {
    const d = (v as { destination: string }).destination;
    if (/:\d+\/?$/.test(d)) (v as { destination: string }).destination = '127.0.0.1:1';
  }
  return Buffer.from(JSON.stringify(v) ?? 'null');
}

/**
 * A whole request, framed (Content-Length right, or a mutated one), with fuzzed headers. `lenient`: the request is
 * incomplete (more body announced than sent, a chunked body that is not) or too large (a body over 1 MiB, a header
 * over Node's 16 KiB), so the agent may close the connection without an answer (then a reset may beat its answer).
 */
export function fuzzRequest(rng: Rng, address: string, token: string): { bytes: Buffer; lenient: boolean } {
  const method =
    rng.int(30) === 0 ? pick(rng, ['get', 'FOO', 'M-SEARCH', 'PRI', 'CONNECT']) : pick(rng, METHODS);
  const path = target(rng);
  const b = method === 'GET' && rng.int(4) ? undefined : body(rng, path);
  const headers: [string, string][] = [];
  const host = rng.int(5)
    ? address
    : pick(rng, [
        'localhost',
        'evil.example',
        `evil.example:${address.split(':').pop()}`,
        '',
        '[::1]',
        '127.0.0.1.nip.io',
        junk(rng, 8),
      ]);
  if (rng.int(30)) headers.push(['Host', host]);
  if (rng.int(5) === 0)
    headers.push([
      'Origin',
      pick(rng, [`http://${address}`, 'http://evil.example', 'null', 'file://', junk(rng, 6)]),
    ]);
  if (rng.int(4))
    headers.push([
      'Authorization',
      rng.int(5)
        ? `Bearer ${token}`
        : pick(rng, [`Bearer ${newApiToken()}`, 'Bearer', 'Basic eDp5', `bearer  ${token} `, '']),
    ]);
  if (method !== 'GET' && rng.int(6)) headers.push(['Content-Type', pick(rng, CONTENT_TYPES)]);
  if (rng.int(10) === 0)
    headers.push([pick(rng, ['X-Forwarded-For', 'Cookie', 'Accept', 'X-A']), junk(rng, 20)]);
  const big = rng.int(40) === 0;
  if (big) headers.push(['X-Big', 'a'.repeat(20_000)]); // over Node's header limit
  const length = b?.length ?? 0;
  const k = rng.int(25);
  if (k === 0)
    headers.push(['Transfer-Encoding', 'chunked']); // a chunked body that is not: refused by the parser
  else if (k === 1)
    headers.push(['Content-Length', String(length + 1 + rng.int(10))]); // the body falls short
  else if (k === 2)
    headers.push(['Content-Length', pick(rng, ['-1', 'x', '1e3', `${length}, ${length + 1}`])]);
  else if (b !== undefined || rng.int(2)) headers.push(['Content-Length', String(length)]);
  headers.push(['Connection', 'close']);
  const head = `${method} ${path} HTTP/1.1\r\n${headers.map(([k2, v]) => `${k2}: ${v}\r\n`).join('')}\r\n`;
  return {
    bytes: Buffer.concat([Buffer.from(head, 'latin1'), b ?? Buffer.alloc(0)]),
    lenient: k === 0 || k === 1 || big || length > 1 << 20,
  };
}

/**
 * Sends raw bytes and reads one answer (the event stream: its head only). Rejects on no answer in `timeoutMs`.
 * `halfClose`: end our side after the request (for one that is incomplete, so the agent sees its end).
 */
export function exchange(
  address: string,
  request: Buffer,
  timeoutMs: number,
  halfClose = false,
): Promise<HttpExchange> {
  const port = Number(address.split(':').pop());
  const host = address.slice(0, address.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  return new Promise((resolve, reject) => {
    const s = connect(port, host);
    let buf = Buffer.alloc(0);
    let settled = false;
    const done = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      if (err) return reject(err);
      const end = buf.indexOf('\r\n\r\n');
      const head = buf.subarray(0, end).toString('latin1').split('\r\n');
      const status =
        end < 0 ? Number.NaN : Number(/^HTTP\/1\.[01] (\d{3}) /.exec(head[0] ?? '')?.[1] ?? Number.NaN);
      const headers: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({
        request: request.subarray(0, 200).toString('latin1'),
        status,
        headers,
        body: buf.subarray(end + 4),
      });
    };
    const timer = setTimeout(() => done(new Error(`no complete answer in ${timeoutMs} ms`)), timeoutMs);
    s.on('connect', () => {
      if (halfClose) s.end(request);
      else s.write(request);
    });
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      if (/\r\ncontent-type: text\/event-stream/i.test(head)) return done();
      const len = /\r\ncontent-length: (\d+)/i.exec(head);
      if (len && buf.length - end - 4 >= Number(len[1])) done();
    });
    s.on('end', () => done());
    s.on('close', () => done());
    s.on('error', (e: NodeJS.ErrnoException) => {
      // The agent may close a refused request before reading all of it: an answer already read still counts.
      if (buf.includes('\r\n\r\n')) done();
      else if (e.code === 'ECONNRESET' || e.code === 'EPIPE')
        done(new Error(`connection ${e.code} without an answer`));
      else done(e);
    });
  });
}

/** Why an answer breaks the contract, or undefined if it keeps it. */
export function checkAnswer(x: HttpExchange): string | undefined {
  if (!Number.isInteger(x.status)) return 'no status line';
  const type = x.headers['content-type'] ?? '';
  if (x.status >= 500) {
    // The page's bundle missing from this installation is the one 5xx: an environment fact, said in text.
    const notBuilt = x.status === 503 && type.startsWith('text/plain') && /not built/.test(x.body.toString());
    if (notBuilt && /^\S+ \/dashboard\/(index\.html|app\.js|app\.css)?[ ?]/.test(x.request)) return undefined;
    return `status ${x.status}: ${x.body.subarray(0, 200).toString()}`;
  }
  if (x.status >= 300 && x.status < 400)
    return x.headers.location ? undefined : `${x.status} without a location`;
  if (x.status === 200 && /^text\/event-stream|^application\/octet-stream/.test(type)) return undefined;
  // The dashboard's file server: the page's files, and its refusals in text.
  // (URL parsing reads a backslash as a slash, as browsers do: /dashboard\x is a page path too.)
  const page = /^\S+ \/dashboard[/\\]/.test(x.request);
  if (page && x.status === 200 && /^text\/(html|javascript|css)/.test(type)) return undefined;
  if (page && x.status >= 400 && type.startsWith('text/plain')) return undefined;
  if (!type.startsWith('application/json')) return `status ${x.status} with content-type "${type}"`;
  if (x.request.startsWith('HEAD ')) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(x.body.toString('utf8'));
  } catch {
    return `status ${x.status}: body is not JSON`;
  }
  if (x.status >= 400) {
    const e = (json as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    if (typeof e?.code !== 'string' || typeof e.message !== 'string' || !e.message)
      return `status ${x.status} without {error: {code, message}}`;
  }
  return undefined;
}

export interface HttpFuzzOptions {
  iterations: number;
  seed: number;
  /** An answer slower than this is a failure (ms). */
  slowMs?: number;
}

/**
 * Runs the HTTP target against a fresh in-process agent (with an API token, a 1 MiB RAM limit and the dashboard on
 * its port) and its read-only dashboard listener; a guest `g1` is kept there so that commands reach a real guest.
 */
export async function fuzzHttpApi(o: HttpFuzzOptions): Promise<TargetCounts> {
  const token = newApiToken();
  const agent = await startAgent({
    host: '127.0.0.1',
    port: 0,
    maxRamBytes: 1 << 20,
    dashboard: true,
    apiToken: token,
    // Hundreds of connections a second from one address: past --connect-rate, every one would meet the door's 429.
    limits: { connectRate: 1e6, connectBurst: 1e6 },
  });
  const dash = await listenDashboard(agent.handleDashboardHttp, '127.0.0.1', 0);
  const c: TargetCounts = {
    name: 'HTTP control API (raw requests)',
    inputs: 0,
    accepted: 0,
    rejected: 0,
    maxMs: 0,
    failures: [],
  };
  const fail = (what: string) => {
    if (c.failures.length < 20) c.failures.push(what);
  };
  const rng = new Rng(o.seed);
  try {
    for (let k = 0; k < o.iterations; k++) {
      await keepG1(agent);
      const one = new Rng(rng.next());
      const address = one.int(5) === 0 ? dash.address : agent.address;
      const { bytes, lenient } = fuzzRequest(one, address, token);
      c.inputs++;
      const t0 = performance.now();
      let x: HttpExchange;
      try {
        x = await exchange(address, bytes, o.slowMs ?? 10_000, lenient);
      } catch (err) {
        if (lenient && /without an answer/.test((err as Error).message)) {
          c.rejected++;
          continue;
        }
        fail(
          `http seed=${o.seed} input=${k}: ${(err as Error).message} for ${JSON.stringify(bytes.subarray(0, 120).toString('latin1'))}`,
        );
        continue;
      }
      c.maxMs = Math.max(c.maxMs, performance.now() - t0);
      if (lenient && Number.isNaN(x.status)) {
        c.rejected++; // closed without an answer: allowed for an incomplete or oversized request
        await tidy(agent);
        continue;
      }
      const why = checkAnswer(x);
      if (why) fail(`http seed=${o.seed} input=${k}: ${why} for ${JSON.stringify(x.request)}`);
      else if (x.status < 400) c.accepted++;
      else c.rejected++;
      await tidy(agent);
    }
    const alive = await exchange(
      agent.address,
      Buffer.from(`GET /v1/status HTTP/1.1\r\nHost: ${agent.address}\r\nConnection: close\r\n\r\n`),
      10_000,
    ).catch((err: Error) => ({ status: 0, error: err.message }));
    if (alive.status !== 200)
      fail(`http seed=${o.seed}: the agent no longer answers GET /v1/status (${alive.status})`);
  } finally {
    await dash.close();
    await agent.close();
  }
  return c;
}

/** Guest g1 exists (running), whatever the previous request did to it. */
async function keepG1(agent: Agent): Promise<void> {
  if (!agent.listGuests().some((g) => g.id === 'g1'))
    await agent.startGuest({ ramBytes: 65536, seed: 1, workload: { name: 'idle' } }, 'g1');
}

/** Stops the guests and migrations the fuzzer started, so that each request meets the same agent. */
async function tidy(agent: Agent): Promise<void> {
  const status = agent.status() as { outgoing: { id: string; status: string }[] };
  for (const m of status.outgoing)
    if (m.status !== 'completed' && m.status !== 'failed' && m.status !== 'cancelled')
      agent.cancelMigration(m.id);
  for (const g of agent.listGuests()) {
    if (g.id === 'g1' || g.status === 'migrating') continue;
    await agent.stopGuest(g.id).catch(() => undefined);
  }
}
