/**
 * Who can drive the control API (docs/security.md, "The control API"): a Host or Origin that does not name the
 * agent is refused (DNS rebinding), commands and RAM reads need the API token when the agent has one, the
 * `--dashboard PORT` listener is read-only even on a mutual-TLS agent, and every request body is checked by a
 * strict schema (no coercion, `null` refused with 400).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Agent,
  AgentClient,
  makeCerts,
  newApiToken,
  readApiToken,
  startAgent,
  type TlsMaterial,
} from '../src/agent/index.js';
import { cliCommand } from '../src/agent/spawn.js';
import { MigrationError } from '../src/errors.js';
import { listenDashboard } from '../src/web/index.js';
import { runCli, tlsFlags } from './helpers.js';

const GUEST = { config: { ramBytes: 1 << 20, seed: 1, workload: { name: 'idle' as const } } };

interface Answer {
  status: number;
  type: string;
  body: { error?: { code: string; message: string } } & Record<string, unknown>;
}

/** One plain-HTTP request with exactly the headers given (Host included, or none with host: null). */
function call(
  address: string,
  method: string,
  path: string,
  o: { headers?: Record<string, string | null>; body?: string } = {},
): Promise<Answer> {
  const [, host, port] = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address)!;
  const headers: Record<string, string> = {};
  let setHost = true;
  for (const [k, v] of Object.entries(o.headers ?? {})) {
    if (k === 'host' && v === null) setHost = false;
    else if (v !== null) headers[k] = v;
  }
  if (o.body !== undefined) {
    headers['content-type'] ??= 'application/json';
    // Explicit: Node sends a DELETE's body unframed otherwise.
    headers['content-length'] = String(Buffer.byteLength(o.body));
  }
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(port), method, path, headers, setHost, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      // An event stream never ends: its headers are the answer.
      if (/event-stream/.test(res.headers['content-type'] ?? '')) {
        res.destroy();
        return resolve({ status: res.statusCode!, type: res.headers['content-type']!, body: {} });
      }
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const type = res.headers['content-type'] ?? '';
        resolve({
          status: res.statusCode!,
          type,
          body: /json/.test(type) && text ? JSON.parse(text) : { text },
        });
      });
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

describe('Host and Origin: a rebound DNS name or a foreign page is refused', () => {
  let agent: Agent;
  beforeAll(async () => {
    agent = await startAgent({ host: '127.0.0.1', port: 0 });
  });
  afterAll(() => agent.close());

  it('refuses a Host that is not an IP literal, localhost or the listen host, on reads and commands', async () => {
    for (const [method, path, body] of [
      ['GET', '/v1/status', undefined],
      ['POST', '/v1/guests', JSON.stringify(GUEST)],
      ['GET', '/v1/guests/g1/ram', undefined],
      ['POST', '/v1/migrations', JSON.stringify({ guest: 'g1', destination: '127.0.0.1:9' })],
    ] as const) {
      const r = await call(agent.address, method, path, { headers: { host: 'evil.example' }, body });
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(r.body.error?.code).toBe('FORBIDDEN');
      expect(r.body.error?.message).toMatch(/Host "evil\.example" does not name this agent/);
    }
    expect(
      (await call(agent.address, 'GET', '/v1/guests', { headers: { host: 'evil.example:80' } })).status,
    ).toBe(403);
    expect(agent.listGuests()).toEqual([]);
  });

  it('serves IP literals and localhost, whatever the port (e.g. through an SSH tunnel)', async () => {
    const port = agent.address.split(':').pop()!;
    for (const host of [agent.address, `localhost:${port}`, 'LOCALHOST:8080', '127.0.0.1', '[::1]:7070']) {
      const r = await call(agent.address, 'GET', '/v1/status', { headers: { host } });
      expect(r.status, String(host)).toBe(200);
    }
  });

  it('serves the names it was given: the --listen host and --allow-host', async () => {
    const named = await startAgent({ host: 'localhost', port: 0, allowHosts: ['Agent-A.test'] });
    try {
      const at = named.address; // 127.0.0.1 or [::1], as localhost resolves here
      for (const [host, status] of [
        ['agent-a.test:7070', 200],
        ['AGENT-A.TEST', 200],
        ['localhost:1', 200],
        ['agent-b.test', 403],
        ['agent-a.test.evil.example', 403],
      ] as const) {
        expect((await call(at, 'GET', '/v1/status', { headers: { host } })).status, host).toBe(status);
      }
    } finally {
      await named.close();
    }
  });

  it('refuses an Origin other than the agent itself, even with a good Host', async () => {
    for (const origin of ['http://evil.example', 'null', `http://localhost:1`, 'file://', 'garbage']) {
      const r = await call(agent.address, 'POST', '/v1/guests', {
        headers: { host: agent.address, origin },
        body: JSON.stringify(GUEST),
      });
      expect(r.status, origin).toBe(403);
      expect(r.body.error?.code).toBe('FORBIDDEN');
    }
    // The page the agent serves is same-origin: its requests pass.
    const ok = await call(agent.address, 'GET', '/v1/guests', {
      headers: { host: agent.address, origin: `http://${agent.address}` },
    });
    expect(ok.status).toBe(200);
    expect(agent.listGuests()).toEqual([]);
  });

  it('answers a malformed request or target with a JSON 400, and keeps serving', async () => {
    const raw = async (text: string) =>
      new Promise<string>((resolve, reject) => {
        const [, port] = /:(\d+)$/.exec(agent.address)!;
        const s = connect(Number(port), '127.0.0.1', () => s.end(text));
        const chunks: Buffer[] = [];
        s.on('data', (c: Buffer) => chunks.push(c));
        s.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
        s.on('error', reject);
      });
    for (const text of [
      'GET http://[ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
      'GET * HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
      'GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n',
      'NOT A REQUEST\r\n\r\n',
    ]) {
      const answer = await raw(text);
      expect(answer, JSON.stringify(text)).toMatch(/^HTTP\/1\.1 400 /);
      expect(answer).toMatch(/content-type: application\/json/i);
      expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)).error.code).toBe('BAD_REQUEST');
    }
    expect((await call(agent.address, 'GET', '/v1/status')).status).toBe(200);
  });
});

describe('request bodies: strict schemas', () => {
  let agent: Agent;
  let client: AgentClient;
  beforeAll(async () => {
    agent = await startAgent({ host: '127.0.0.1', port: 0 });
    client = new AgentClient(agent.address);
    await client.startGuest(GUEST.config, 'g1');
  });
  afterAll(() => agent.close());

  it('throttle: null, strings and unknown fields are 400 with a message, never 500 or coerced', async () => {
    const cases: [string, RegExp][] = [
      ['null', /throttle request: body/],
      ['[]', /throttle request: body/],
      ['{"cap":"50"}', /cap/],
      ['{"cap":50.5}', /cap/],
      ['{"cap":101}', /cap/],
      ['{"frequency":"0.5"}', /frequency/],
      ['{"frequency":0}', /frequency/],
      ['{"cap":10,"extra":1}', /extra/],
    ];
    for (const [body, message] of cases) {
      const r = await call(agent.address, 'POST', '/v1/guests/g1/throttle', { body });
      expect(r.status, body).toBe(400);
      expect(r.body.error?.code, body).toBe('BAD_ARGUMENT');
      expect(r.body.error?.message, body).toMatch(message);
    }
    expect((await client.guest('g1')).cap).toBe(0);
    const ok = await call(agent.address, 'POST', '/v1/guests/g1/throttle', { body: '{"cap":50}' });
    expect(ok.status).toBe(200);
    expect((await client.guest('g1')).cap).toBe(50);
  });

  it('commands without parameters take no body or {}; resume takes a HOST:PORT string', async () => {
    for (const [path, body] of [
      ['/v1/guests/g1/pause', 'null'],
      ['/v1/guests/g1/pause', '{"now":true}'],
      ['/v1/guests/g1/resume', '7'],
      ['/v1/migrations/m1/cancel', '{"force":1}'],
      ['/v1/migrations/m1/resume', '{"destination":5}'],
      ['/v1/migrations/m1/resume', 'null'],
    ] as const) {
      const r = await call(agent.address, 'POST', path, { body });
      expect(r.status, `${path} ${body}`).toBe(400);
      expect(r.body.error?.code).toBe('BAD_ARGUMENT');
    }
    expect((await call(agent.address, 'DELETE', '/v1/guests/g1', { body: '"x"' })).status).toBe(400);
    expect((await client.guest('g1')).status).toBe('running');
    expect((await call(agent.address, 'POST', '/v1/guests/g1/pause', { body: '{}' })).status).toBe(200);
    expect((await call(agent.address, 'POST', '/v1/guests/g1/resume', { body: '' })).status).toBe(200);
  });
});

describe('the API token', () => {
  let agent: Agent;
  const token = newApiToken();
  beforeAll(async () => {
    agent = await startAgent({ host: '127.0.0.1', port: 0, apiToken: token });
  });
  afterAll(() => agent.close());

  it('is required for commands and RAM reads, not for status', async () => {
    const start = { body: JSON.stringify({ ...GUEST, id: 'g1' }) };
    const none = await call(agent.address, 'POST', '/v1/guests', start);
    expect(none.status).toBe(401);
    expect(none.body.error?.code).toBe('AUTH_FAILED');
    expect(none.body.error?.message).toMatch(/--api-token-file/);
    const wrong = await call(agent.address, 'POST', '/v1/guests', {
      ...start,
      headers: { authorization: `Bearer ${newApiToken()}` },
    });
    expect(wrong.status).toBe(401);
    expect(agent.listGuests()).toEqual([]);
    const bearer = { authorization: `Bearer ${token}` };
    expect((await call(agent.address, 'POST', '/v1/guests', { ...start, headers: bearer })).status).toBe(201);
    // Reading guest memory and migrating it anywhere are exactly what the token guards.
    expect((await call(agent.address, 'GET', '/v1/guests/g1/ram')).status).toBe(401);
    expect((await call(agent.address, 'GET', '/v1/guests/g1/state')).status).toBe(401);
    const migrate = JSON.stringify({ guest: 'g1', destination: '127.0.0.1:9' });
    expect((await call(agent.address, 'POST', '/v1/migrations', { body: migrate })).status).toBe(401);
    for (const path of ['/v1/guests/g1/pause', '/v1/guests/g1/throttle'])
      expect((await call(agent.address, 'POST', path, { body: '{}' })).status).toBe(401);
    expect((await call(agent.address, 'DELETE', '/v1/guests/g1', { body: '' })).status).toBe(401);
    expect((await call(agent.address, 'GET', '/v1/status')).status).toBe(200);
    expect((await call(agent.address, 'GET', '/v1/guests/g1')).status).toBe(200);
    expect(
      (await call(agent.address, 'POST', '/v1/guests/g1/pause', { body: '', headers: bearer })).status,
    ).toBe(200);
    const ram = await call(agent.address, 'GET', '/v1/guests/g1/ram', { headers: bearer });
    expect(ram.status).toBe(200);
    expect(ram.type).toBe('application/octet-stream');
  });

  it('AgentClient sends it (given, or from $LIVEMIG_API_TOKEN_FILE)', async () => {
    await expect(new AgentClient(agent.address).pause('g1')).rejects.toMatchObject({ code: 'AUTH_FAILED' });
    expect((await new AgentClient(agent.address, { token }).resume('g1')).status).toBe('running');
    const dir = mkdtempSync(join(tmpdir(), 'livemig-token-'));
    const file = join(dir, 'token');
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    const before = process.env.LIVEMIG_API_TOKEN_FILE;
    process.env.LIVEMIG_API_TOKEN_FILE = file;
    try {
      expect((await new AgentClient(agent.address).pause('g1')).status).toBe('paused');
    } finally {
      if (before === undefined) delete process.env.LIVEMIG_API_TOKEN_FILE;
      else process.env.LIVEMIG_API_TOKEN_FILE = before;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a token file others can read, or that holds no token, is refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'livemig-token-'));
    try {
      const open = join(dir, 'open');
      writeFileSync(open, `${newApiToken()}\n`, { mode: 0o644 });
      expect(() => readApiToken(open)).toThrow(/chmod 600/);
      const empty = join(dir, 'empty');
      writeFileSync(empty, '\n', { mode: 0o600 });
      expect(() => readApiToken(empty)).toThrow(/does not hold a token/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the --dashboard PORT listener is read-only', () => {
  it('in process: the page and GET requests, no command, no RAM', async () => {
    const agent = await startAgent({ host: '127.0.0.1', port: 0 });
    const dash = await listenDashboard(agent.handleDashboardHttp, '127.0.0.1', 0);
    try {
      await new AgentClient(agent.address).startGuest(GUEST.config, 'g1');
      for (const [method, path, body] of [
        ['POST', '/v1/guests', JSON.stringify(GUEST)],
        ['POST', '/v1/guests/g1/pause', '{}'],
        ['DELETE', '/v1/guests/g1', ''],
        ['GET', '/v1/guests/g1/ram', undefined],
        ['POST', '/v1/migrations', JSON.stringify({ guest: 'g1', destination: '127.0.0.1:9' })],
      ] as const) {
        const r = await call(dash.address, method, path, { body });
        expect(r.status, `${method} ${path}`).toBe(403);
        expect(r.body.error?.message).toMatch(/read-only/);
      }
      expect((await call(dash.address, 'GET', '/v1/status')).status).toBe(200);
      expect((await call(dash.address, 'GET', '/v1/events')).type).toMatch(/^text\/event-stream/);
      expect(
        (await call(dash.address, 'GET', '/v1/status', { headers: { host: 'evil.example' } })).status,
      ).toBe(403);
      expect(agent.listGuests().map((g) => g.status)).toEqual(['running']);
    } finally {
      await dash.close();
      await agent.close();
    }
  });
});

describe('livemig agent with mutual TLS, --dashboard PORT and --api-token-file', () => {
  let dir: string;
  let files: ReturnType<typeof makeCerts>;
  let child: ChildProcess;
  let ready: { address: string; dashboard: string };
  const tokenFile = () => join(dir, 'sub', 'token');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'livemig-auth-'));
    files = makeCerts({ dir, names: ['a', 'c'] });
    const { file, execArgv } = cliCommand();
    child = spawn(
      process.execPath,
      [
        ...execArgv,
        file,
        'agent',
        '--listen',
        '127.0.0.1:0',
        '--ready-json',
        '--quiet',
        ...tlsFlags(files, 'a'),
        '--dashboard',
        '127.0.0.1:0',
        '--api-token-file',
        tokenFile(),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    ready = await new Promise((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', (l) => resolve(JSON.parse(l)));
      child.once('exit', (code) => reject(new Error(`agent exited with ${code}`)));
    });
  }, 60_000);

  afterAll(async () => {
    if (child.exitCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('made the token file, mode 0600, on first start', () => {
    expect(statSync(tokenFile()).mode & 0o777).toBe(0o600);
    expect(readApiToken(tokenFile())).toMatch(/^[\w-]{43}$/);
  });

  it('refuses POST /v1/guests on the dashboard port, which has no TLS', async () => {
    const dash = new URL(ready.dashboard).host;
    const r = await call(dash, 'POST', '/v1/guests', { body: JSON.stringify(GUEST) });
    expect(r.status).toBe(403);
    expect(r.body.error?.code).toBe('FORBIDDEN');
    const migrate = await call(dash, 'POST', '/v1/migrations', {
      body: JSON.stringify({ guest: 'g1', destination: '127.0.0.1:9' }),
    });
    expect(migrate.status).toBe(403);
    expect((await call(dash, 'GET', '/v1/status')).status).toBe(200);
  });

  it('on the TLS port, commands need the token as well as the certificate', async () => {
    const tls: TlsMaterial = {
      cert: readFileSync(files.agents.c!.cert),
      key: readFileSync(files.agents.c!.key),
      ca: readFileSync(files.ca),
    };
    const anonymous = new AgentClient(ready.address, { tls });
    const err = await anonymous.startGuest(GUEST.config, 'g1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as MigrationError).code).toBe('AUTH_FAILED');
    expect((await anonymous.status()).guests).toEqual([]);
    anonymous.close();
    const owner = new AgentClient(ready.address, { tls, token: readApiToken(tokenFile()) });
    expect((await owner.startGuest(GUEST.config, 'g1')).id).toBe('g1');
    owner.close();
  });

  it('livemig certs writes an API token beside the certificates, and keeps it when run again', () => {
    const out = join(dir, 'certs-out');
    const first = runCli(['certs', '--out', out, '--names', 'x']);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`API token: ${join(out, 'api-token')}\n`);
    expect(statSync(join(out, 'api-token')).mode & 0o777).toBe(0o600);
    const token = readApiToken(join(out, 'api-token'));
    const again = runCli(['certs', '--out', out, '--names', 'y', '--reuse-ca']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('(kept)');
    expect(readApiToken(join(out, 'api-token'))).toBe(token);
  });

  it('the CLI sends the token from --api-token-file', () => {
    const common = ['--agent', ready.address, ...tlsFlags(files, 'c')];
    const without = runCli(['guest', 'pause', '--guest', 'g1', ...common]);
    expect(without.code).not.toBe(0);
    expect(without.stderr).toMatch(/API token/);
    const withToken = runCli(['guest', 'pause', '--guest', 'g1', ...common, '--api-token-file', tokenFile()]);
    expect(withToken.stderr).toBe('');
    expect(withToken.code).toBe(0);
  });
});
