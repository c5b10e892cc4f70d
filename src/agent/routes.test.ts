/**
 * The control API's route table (routes.ts): every route answers from its own handler, and what matches no route
 * gets the same answers as the if-chain router it replaced (the cases below were recorded against that router).
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Agent, startAgent } from './agent.js';
import { matchRoute, ROUTES } from './routes.js';

const MIGRATION = '0123456789abcdef0123456789abcdef';

interface Case {
  method: string;
  path: string;
  body?: unknown;
  status: number;
  /** The error code of the JSON answer, when it is an error. */
  code?: string;
  message?: RegExp;
}

/** In order: some change the agent (a guest is started, paused, resumed, stopped). */
const CASES: Case[] = [
  { method: 'GET', path: '/', status: 200 },
  { method: 'HEAD', path: '/', status: 404 },
  { method: 'GET', path: '//', status: 404, code: 'BAD_REQUEST', message: /the API lives under \/v1/ },
  { method: 'GET', path: '/x', status: 404, code: 'BAD_REQUEST', message: /no such endpoint \/x; the API/ },
  { method: 'POST', path: '/x', body: {}, status: 404, code: 'BAD_REQUEST', message: /lives under \/v1/ },
  { method: 'GET', path: '/v1', status: 404, code: 'BAD_REQUEST', message: /^no such endpoint: GET \/v1 \(/ },
  { method: 'GET', path: '/v1/status', status: 200 },
  { method: 'GET', path: '/v1/status/extra', status: 200 },
  { method: 'HEAD', path: '/v1/status', status: 404 },
  {
    method: 'POST',
    path: '/v1/status',
    body: {},
    status: 404,
    code: 'BAD_REQUEST',
    message: /POST \/v1\/status/,
  },
  { method: 'GET', path: '/v1/power', status: 200 },
  {
    method: 'GET',
    path: '/v1/power?model=nope',
    status: 400,
    code: 'BAD_ARGUMENT',
    message: /model: must be one of/,
  },
  // Query strings and the bodies of commands without parameters go through a schema too.
  { method: 'GET', path: '/v1/power?since=abc', status: 400, code: 'BAD_ARGUMENT', message: /since/ },
  { method: 'GET', path: '/v1/power?since=1700000000000&sample=1&x=y', status: 200 },
  { method: 'GET', path: '/v1/events', status: 200 },
  { method: 'GET', path: '/v1/guests', status: 200 },
  {
    method: 'PUT',
    path: '/v1/guests',
    body: {},
    status: 404,
    code: 'BAD_REQUEST',
    message: /PUT \/v1\/guests /,
  },
  {
    method: 'POST',
    path: '/v1/guests',
    body: { id: 'g1', config: { ramBytes: 1 << 20, seed: 1, workload: { name: 'idle' } } },
    status: 201,
  },
  { method: 'GET', path: '/v1/guests/g1', status: 200 },
  { method: 'GET', path: '//v1//guests/g1/', status: 200 },
  { method: 'GET', path: '/v1/guests/nope', status: 404, code: 'GUEST_NOT_FOUND' },
  { method: 'PATCH', path: '/v1/guests/g1', body: {}, status: 404, code: 'BAD_REQUEST', message: /PATCH/ },
  {
    method: 'GET',
    path: '/v1/guests/g1/unknown',
    status: 404,
    code: 'BAD_REQUEST',
    message: /no such endpoint/,
  },
  { method: 'POST', path: '/v1/guests/g1/throttle', body: { cap: 50 }, status: 200 },
  { method: 'POST', path: '/v1/guests/g1/dirty-log', body: {}, status: 200 },
  // Snapshots (snapshots.ts): this agent has no --snapshot-dir.
  {
    method: 'POST',
    path: '/v1/guests/g1/snapshot',
    body: { file: 'x.snap' },
    status: 403,
    code: 'FORBIDDEN',
    message: /--snapshot-dir/,
  },
  { method: 'POST', path: '/v1/snapshots/restore', body: { file: 'x.snap' }, status: 403, code: 'FORBIDDEN' },
  {
    method: 'GET',
    path: '/v1/guests/g1/dirty-log',
    status: 404,
    code: 'BAD_REQUEST',
    message: /no such endpoint/,
  },
  { method: 'GET', path: '/v1/guests/g1/state', status: 409, code: 'GUEST_BUSY' },
  { method: 'GET', path: '/v1/guests/g1/ram', status: 409, code: 'GUEST_BUSY' },
  { method: 'POST', path: '/v1/guests/g1/pause', body: {}, status: 200 },
  { method: 'GET', path: '/v1/guests/g1/state', status: 200 },
  { method: 'GET', path: '/v1/guests/g1/ram', status: 200 },
  { method: 'POST', path: '/v1/guests/g1/resume', body: {}, status: 200 },
  {
    method: 'GET',
    path: '/v1/guests/g1/pause',
    status: 404,
    code: 'BAD_REQUEST',
    message: /GET \/v1\/guests\/g1/,
  },
  { method: 'POST', path: '/v1/guests/g9/pause/extra', body: {}, status: 404, code: 'GUEST_NOT_FOUND' },
  { method: 'GET', path: '/v1/migrations', status: 200 },
  {
    method: 'POST',
    path: '/v1/migrations',
    body: { guest: 'g9', destination: '127.0.0.1:1' },
    status: 404,
    code: 'GUEST_NOT_FOUND',
  },
  { method: 'DELETE', path: '/v1/migrations', body: {}, status: 404, code: 'BAD_REQUEST', message: /DELETE/ },
  {
    method: 'GET',
    path: '/v1/migrations/abc',
    status: 404,
    code: 'GUEST_NOT_FOUND',
    message: /no migration abc/,
  },
  { method: 'GET', path: '/v1/migrations/abc?wait=1', status: 404, code: 'GUEST_NOT_FOUND' },
  { method: 'GET', path: '/v1/migrations/abc?wait=yes', status: 400, code: 'BAD_ARGUMENT', message: /wait/ },
  // As before: GET .../incoming is read as a migration named "incoming".
  { method: 'GET', path: '/v1/migrations/incoming', status: 404, code: 'GUEST_NOT_FOUND' },
  {
    method: 'POST',
    path: '/v1/migrations/incoming',
    body: {},
    status: 400,
    code: 'BAD_ARGUMENT',
    message: /expected \/v1\/migrations\/incoming\//,
  },
  { method: 'GET', path: `/v1/migrations/incoming/${MIGRATION}`, status: 200 },
  {
    method: 'POST',
    path: `/v1/migrations/incoming/${MIGRATION}/adopt`,
    body: {},
    status: 409,
    code: 'TOO_LATE',
  },
  {
    method: 'DELETE',
    path: `/v1/migrations/incoming/${MIGRATION}`,
    body: {},
    status: 400,
    code: 'BAD_ARGUMENT',
    message: /no such endpoint: DELETE/,
  },
  { method: 'POST', path: '/v1/migrations/abc/reconcile', body: {}, status: 404, code: 'GUEST_NOT_FOUND' },
  {
    method: 'POST',
    path: '/v1/migrations/abc/reconcile',
    body: { force: true },
    status: 400,
    code: 'BAD_ARGUMENT',
    message: /reconcile request \(takes no fields\)/,
  },
  {
    method: 'POST',
    path: `/v1/migrations/incoming/${MIGRATION}/discard`,
    body: { now: 1 },
    status: 400,
    code: 'BAD_ARGUMENT',
    message: /takes no fields/,
  },
  { method: 'POST', path: '/v1/migrations/abc/cancel', body: {}, status: 404, code: 'GUEST_NOT_FOUND' },
  { method: 'POST', path: '/v1/migrations/abc/resume', body: {}, status: 404, code: 'GUEST_NOT_FOUND' },
  {
    method: 'GET',
    path: '/v1/migrations/abc/cancel',
    status: 404,
    code: 'BAD_REQUEST',
    message: /^no such endpoint: GET \/v1\/migrations\/abc\/cancel \(see docs\/agent.md\)$/,
  },
  {
    method: 'POST',
    path: '/v1/unknown',
    body: {},
    status: 404,
    code: 'BAD_REQUEST',
    message: /POST \/v1\/unknown/,
  },
  {
    method: 'POST',
    path: '/v1/evacuate',
    body: { to: [] },
    status: 400,
    code: 'BAD_ARGUMENT',
    message: /^evacuation request: to: at least one destination$/,
  },
  { method: 'DELETE', path: '/v1/guests/g1', body: {}, status: 200 },
];

interface Answer {
  status: number;
  body: { error?: { code: string; message: string } } & Record<string, unknown>;
}

async function call(address: string, c: Case): Promise<Answer> {
  const abort = new AbortController();
  const res = await fetch(`http://${address}${c.path}`, {
    method: c.method,
    signal: abort.signal,
    ...(c.body !== undefined
      ? { body: JSON.stringify(c.body), headers: { 'content-type': 'application/json' } }
      : {}),
  });
  const type = res.headers.get('content-type') ?? '';
  if (c.method === 'HEAD' || !type.startsWith('application/json')) {
    abort.abort(); // HEAD has no body; an event stream never ends; RAM is not JSON
    return { status: res.status, body: {} };
  }
  return { status: res.status, body: (await res.json()) as Answer['body'] };
}

describe('control API routes', () => {
  let agent: Agent;
  const answers: Answer[] = [];

  beforeAll(async () => {
    agent = await startAgent({ host: '127.0.0.1', port: 0 });
    for (const c of CASES) answers.push(await call(agent.address, c));
  });
  afterAll(() => agent?.close());

  it.each(CASES.map((c, i) => [`${c.method} ${c.path}`, i] as const))('%s', (_name, i) => {
    const c = CASES[i]!;
    const a = answers[i]!;
    expect({ status: a.status, code: a.body.error?.code }).toEqual({ status: c.status, code: c.code });
    if (c.message) expect(a.body.error?.message).toMatch(c.message);
  });

  it('reaches every route of the table from a request of the cases', () => {
    for (const route of ROUTES) {
      const reached = CASES.some((c, i) => {
        const url = new URL(`http://agent${c.path}`);
        const m = matchRoute(c.method, url);
        // Reached: this route matched, and the answer is not the "no such endpoint" of the router.
        return m?.route === route && !/^no such endpoint/.test(answers[i]!.body.error?.message ?? '');
      });
      expect(reached, `${route.method} ${route.path}`).toBe(true);
    }
  });

  it('answers CONNECT with a JSON 405, as before', async () => {
    const [host, port] = agent.address.split(':');
    const head = await new Promise<string>((resolve, reject) => {
      const s = connect({ host, port: Number(port) });
      let text = '';
      s.on('data', (d) => {
        text += d.toString('latin1');
      });
      s.on('end', () => resolve(text));
      s.on('error', reject);
      s.write(`CONNECT example.org:443 HTTP/1.1\r\nhost: ${agent.address}\r\n\r\n`);
    });
    expect(head).toMatch(/^HTTP\/1\.1 405 /);
    expect(head).toMatch(/"code":"BAD_REQUEST"/);
  });
});
