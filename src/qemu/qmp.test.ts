import { mkdtempSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  parseQmpAddress,
  QmpClient,
  QmpClosedError,
  QmpError,
  type QmpEvent,
  QmpProtocolError,
  QmpTimeoutError,
} from './qmp.js';

const GREETING = {
  QMP: { version: { qemu: { major: 10, minor: 0, micro: 2 }, package: 'fake' }, capabilities: ['oob'] },
};

type Handler = (
  msg: { execute: string; arguments?: Record<string, unknown>; id?: unknown },
  sock: Socket,
) => void;

/** A fake QMP monitor: greets, accepts qmp_capabilities, hands every other command to `handler`. */
async function fakeQmp(
  handler: Handler,
  opts: { greeting?: string | null } = {},
): Promise<{ server: Server; path: string }> {
  const path = join(mkdtempSync(join(tmpdir(), 'qmp-')), 'qmp.sock');
  const server = createServer((sock) => {
    if (opts.greeting !== null) sock.write(opts.greeting ?? `${JSON.stringify(GREETING)}\r\n`);
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => {});
    sock.on('data', (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const msg = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (msg.execute === 'qmp_capabilities')
          sock.write(`${JSON.stringify({ return: {}, id: msg.id })}\r\n`);
        else handler(msg, sock);
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  servers.push(server);
  return { server, path };
}

const servers: Server[] = [];
const clients: QmpClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const s of servers.splice(0)) s.close();
});

async function client(path: string, commandTimeoutMs = 2000): Promise<QmpClient> {
  const c = await QmpClient.connect({ path }, { timeoutMs: 2000, commandTimeoutMs });
  clients.push(c);
  return c;
}

const send = (sock: Socket, obj: unknown): void => {
  sock.write(`${JSON.stringify(obj)}\r\n`);
};

describe('parseQmpAddress', () => {
  it('reads unix paths and tcp host:port', () => {
    expect(parseQmpAddress('unix:/run/q.sock')).toEqual({ path: '/run/q.sock' });
    expect(parseQmpAddress('/run/q.sock')).toEqual({ path: '/run/q.sock' });
    expect(parseQmpAddress('tcp:127.0.0.1:4444')).toEqual({ host: '127.0.0.1', port: 4444 });
    expect(parseQmpAddress('localhost:4444')).toEqual({ host: 'localhost', port: 4444 });
    expect(() => parseQmpAddress('tcp:nohost')).toThrow(TypeError);
  });
});

describe('QmpClient', () => {
  it('reads the greeting, negotiates, and returns typed results', async () => {
    const { path } = await fakeQmp((msg, sock) => {
      if (msg.execute === 'query-status')
        send(sock, { return: { running: true, status: 'running' }, id: msg.id });
    });
    const c = await client(path);
    expect(c.greeting?.QMP.version.qemu.major).toBe(10);
    const st = await c.execute('query-status');
    expect(st.running).toBe(true);
    expect(st.status).toBe('running');
  });

  it('passes arguments and matches answers by id even out of order', async () => {
    const held: { id: unknown; value: unknown }[] = [];
    const { path } = await fakeQmp((msg, sock) => {
      held.push({ id: msg.id, value: msg.arguments?.value });
      if (held.length === 2)
        for (const h of held.reverse()) send(sock, { return: { echo: h.value }, id: h.id });
    });
    const c = await client(path);
    const [a, b] = await Promise.all([
      c.execute<{ echo: number }>('echo', { value: 1 }),
      c.execute<{ echo: number }>('echo', { value: 2 }),
    ]);
    expect(a.echo).toBe(1);
    expect(b.echo).toBe(2);
  });

  it('delivers events interleaved with answers, to listeners, iterators and waitEvent', async () => {
    const { path } = await fakeQmp((msg, sock) => {
      send(sock, {
        event: 'MIGRATION',
        data: { status: 'setup' },
        timestamp: { seconds: 1, microseconds: 2 },
      });
      send(sock, {
        event: 'MIGRATION',
        data: { status: 'active' },
        timestamp: { seconds: 1, microseconds: 3 },
      });
      send(sock, { return: {}, id: msg.id });
      send(sock, { event: 'STOP', timestamp: { seconds: 1, microseconds: 4 } });
    });
    const c = await client(path);
    const seen: string[] = [];
    c.on('event', (e) => seen.push(e.event));
    const it = c.events();
    const stop = c.waitEvent('STOP', 2000);
    await c.execute('migrate', { uri: 'tcp:127.0.0.1:1' });
    const stopEvent = await stop;
    expect(stopEvent.data).toEqual({});
    const got: QmpEvent[] = [];
    for await (const e of it) {
      got.push(e);
      if (got.length === 3) break;
    }
    expect(got.map((e) => e.data.status ?? e.event)).toEqual(['setup', 'active', 'STOP']);
    expect(seen).toEqual(['MIGRATION', 'MIGRATION', 'STOP']);
  });

  it('rejects with QmpError carrying QEMU class and desc; the connection stays usable', async () => {
    const { path } = await fakeQmp((msg, sock) => {
      if (msg.execute === 'bad')
        send(sock, { error: { class: 'CommandNotFound', desc: 'no bad' }, id: msg.id });
      else send(sock, { return: { ok: 1 }, id: msg.id });
    });
    const c = await client(path);
    const err = await c.execute('bad').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpError);
    expect((err as QmpError).errorClass).toBe('CommandNotFound');
    expect((err as QmpError).desc).toBe('no bad');
    expect((err as QmpError).command).toBe('bad');
    expect(await c.execute('good')).toEqual({ ok: 1 });
  });

  it('times a command out, drops its late answer, and goes on', async () => {
    const { path } = await fakeQmp((msg, sock) => {
      if (msg.execute === 'slow') setTimeout(() => send(sock, { return: { late: true }, id: msg.id }), 150);
      else setTimeout(() => send(sock, { return: { fast: true }, id: msg.id }), 200);
    });
    const c = await client(path, 50);
    const err = await c.execute('slow').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpTimeoutError);
    expect((err as QmpTimeoutError).command).toBe('slow');
    expect(await c.execute('fast', undefined, { timeoutMs: 2000 })).toEqual({ fast: true });
  });

  it('times out a server that never greets', async () => {
    const { path } = await fakeQmp(() => {}, { greeting: null });
    const err = await QmpClient.connect({ path }, { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpTimeoutError);
  });

  it('closes on malformed JSON and rejects pending commands with QmpProtocolError', async () => {
    const { path } = await fakeQmp((_msg, sock) => {
      sock.write('{"return": {oops\r\n');
    });
    const c = await client(path);
    const closed = new Promise<Error | undefined>((r) => c.once('close', r));
    const err = await c.execute('anything').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpProtocolError);
    expect(await closed).toBeInstanceOf(QmpProtocolError);
    expect(c.closed).toBe(true);
    await expect(c.execute('again')).rejects.toBeInstanceOf(QmpProtocolError);
  });

  it('rejects a greeting that is not QMP', async () => {
    const { path } = await fakeQmp(() => {}, { greeting: '{"hello": 1}\r\n' });
    await expect(QmpClient.connect({ path }, { timeoutMs: 1000 })).rejects.toBeInstanceOf(QmpProtocolError);
  });

  it('on server hang-up rejects pending commands with QmpClosedError and ends event iterators', async () => {
    const { path } = await fakeQmp((_msg, sock) => {
      send(sock, { event: 'SHUTDOWN', data: {}, timestamp: { seconds: 0, microseconds: 0 } });
      sock.end();
    });
    const c = await client(path);
    const it = c.events();
    const err = await c.execute('quit').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpClosedError);
    const got: string[] = [];
    for await (const e of it) got.push(e.event);
    expect(got).toEqual(['SHUTDOWN']);
    await expect(c.waitEvent('STOP', 1000)).rejects.toBeInstanceOf(QmpClosedError);
  });

  it('retries while the socket does not exist yet', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'qmp-')), 'late.sock');
    const pending = QmpClient.connect({ path }, { timeoutMs: 3000, retry: true });
    await new Promise((r) => setTimeout(r, 150));
    const server = createServer((sock) => {
      sock.write(`${JSON.stringify(GREETING)}\r\n`);
      sock.on('data', (d) => {
        const msg = JSON.parse(d.toString());
        sock.write(`${JSON.stringify({ return: {}, id: msg.id })}\r\n`);
      });
    });
    await new Promise<void>((r) => server.listen(path, r));
    servers.push(server);
    const c = await pending;
    clients.push(c);
    expect(c.greeting?.QMP.capabilities).toEqual(['oob']);
  });

  it('fails fast without retry when nothing listens', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'qmp-')), 'none.sock');
    const err = (await QmpClient.connect({ path }, { timeoutMs: 500 }).catch(
      (e: unknown) => e,
    )) as NodeJS.ErrnoException;
    expect(err.code).toBe('ENOENT');
  });
});
