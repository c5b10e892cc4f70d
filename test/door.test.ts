/**
 * Resource accounting at the agent's door (docs/security.md, "Resource limits"), against in-process agents and raw
 * sockets, as an unauthenticated peer would try it: migration streams count from their first bytes, silent
 * connections are closed, a HELLO cannot buy threads or memory beyond the agent's budgets, a peer cannot make the
 * destination open a file, one address cannot open connections without bound, and the history stays bounded.
 */

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AdmissionLimits } from '../src/agent/admission.js';
import { type Agent, AgentClient, makeCerts, startAgent } from '../src/agent/index.js';
import type { MigrationError } from '../src/errors.js';
import { exchange } from '../src/fuzz/http.js';
import type { GuestConfig } from '../src/guest/index.js';
import { FrameConnection } from '../src/migration/connection.js';
import { Command, PREAMBLE } from '../src/migration/protocol/index.js';
import { traceChecksum } from '../src/trace/index.js';
import { expectOracle, MiB, rawHello, runCli, waitFor } from './helpers.js';

const agents: Agent[] = [];
const sockets: Socket[] = [];
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(agents.map((a) => a.close()));
});

async function agentWith(limits: Partial<AdmissionLimits>, extra: { maxRamBytes?: number } = {}) {
  const agent = await startAgent({ host: '127.0.0.1', port: 0, limits, ...extra });
  agents.push(agent);
  return { agent, client: new AgentClient(agent.address) };
}

async function raw(address: string, localAddress?: string): Promise<Socket> {
  const [host, port] = address.split(':');
  const socket = connect({ host: host!, port: Number(port), ...(localAddress ? { localAddress } : {}) });
  sockets.push(socket);
  socket.on('error', () => undefined);
  await new Promise<void>((res, rej) => {
    socket.once('connect', () => res());
    socket.once('error', rej);
  });
  return socket;
}

function closed(socket: Socket): Promise<void> {
  return socket.closed ? Promise.resolve() : new Promise((res) => socket.once('close', () => res()));
}

/** Resolves with the error a promise rejects with (or undefined if it resolves). */
function errorOf(p: Promise<unknown>): Promise<MigrationError | undefined> {
  return p.then(
    () => undefined,
    (e: unknown) => e as MigrationError,
  );
}

/** A hand-driven source that has sent the preamble. */
async function source(address: string): Promise<FrameConnection> {
  const c = new FrameConnection(await raw(address));
  c.writeRaw(PREAMBLE);
  return c;
}

/** Sends a HELLO and returns the error the destination answers with (undefined: it answered HELLO_ACK). */
async function answerTo(address: string, payload: Buffer): Promise<MigrationError | undefined> {
  const c = await source(address);
  await c.sendFrame(Command.HELLO, payload);
  const err = await errorOf(c.expect(Command.HELLO_ACK, 20_000));
  c.destroy();
  return err;
}

describe('connections at the door', () => {
  it('a migration stream counts against --max-incoming from its first bytes: 12 against 4, 8 refused', async () => {
    const { agent } = await agentWith({ maxIncoming: 4, helloTimeoutMs: 120_000 });
    const conns = await Promise.all(Array.from({ length: 12 }, () => source(agent.address)));
    const outcome: (string | undefined)[] = new Array(12).fill(undefined);
    conns.forEach((c, i) => {
      c.receive().catch((e: MigrationError) => {
        outcome[i] = e.code;
      });
    });
    await waitFor(async () => outcome.filter((o) => o !== undefined).length >= 8, 30_000, '8 refusals');
    expect(outcome.filter((o) => o === 'RESOURCE_LIMIT')).toHaveLength(8);
    // The four admitted streams are still open (waiting for their HELLO).
    const admitted = conns.filter((_, i) => outcome[i] === undefined);
    expect(admitted).toHaveLength(4);
    // Closing one frees its place: a real HELLO is then accepted.
    admitted[0]!.destroy();
    await waitFor(
      async () => (await answerTo(agent.address, rawHello({ id: 'x1', config: small(1) }))) === undefined,
      30_000,
      'a freed slot',
    );
  });

  it('a connection that sends nothing is closed after --first-byte-timeout (plain port)', async () => {
    const { agent } = await agentWith({ firstByteTimeoutMs: 1000 });
    const s = await raw(agent.address);
    await closed(s); // before the fix, never: the test times out
    // The agent still serves.
    expect(((await new AgentClient(agent.address).status()) as { version: string }).version).toBeTruthy();
  });

  it('on a TLS port: silence, and a TLS handshake that never completes, are both closed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'livemig-door-'));
    try {
      const files = makeCerts({ dir, names: ['a'] });
      const tls = {
        cert: readFileSync(files.agents.a!.cert),
        key: readFileSync(files.agents.a!.key),
        ca: readFileSync(files.ca),
      };
      const agent = await startAgent({
        host: '127.0.0.1',
        port: 0,
        tls,
        limits: { firstByteTimeoutMs: 1000 },
      });
      agents.push(agent);
      const silent = await raw(agent.address);
      const stuck = await raw(agent.address);
      stuck.write(Buffer.from([0x16, 0x03, 0x01])); // the start of a TLS record, and then nothing
      await Promise.all([closed(silent), closed(stuck)]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('over --max-connections a connection is closed at once, whatever it is', async () => {
    const { agent } = await agentWith({ maxConnections: 4, maxIncoming: 2, firstByteTimeoutMs: 120_000 });
    const held = await Promise.all(Array.from({ length: 4 }, () => raw(agent.address)));
    const extra = await raw(agent.address);
    await closed(extra); // before the fix, held open like the others
    expect(held.every((s) => !s.closed)).toBe(true);
    held[0]!.destroy();
    await closed(held[0]!);
    // A freed place serves the API again (a connection may take a moment to be counted closed).
    await waitFor(
      async () =>
        ((await new AgentClient(agent.address).status().catch(() => undefined)) as unknown) !== undefined,
      30_000,
      'the API to answer',
    );
  });

  it('one address holds at most --max-connections-per-peer; another address still gets in', async () => {
    const { agent } = await agentWith({ maxConnectionsPerPeer: 3, firstByteTimeoutMs: 120_000 });
    const held = await Promise.all(Array.from({ length: 3 }, () => raw(agent.address, '127.0.0.1')));
    await closed(await raw(agent.address, '127.0.0.1'));
    expect(held.every((s) => !s.closed)).toBe(true);
    const other = await raw(agent.address, '127.0.0.2');
    other.write(`GET /v1/status HTTP/1.1\r\nHost: ${agent.address}\r\nConnection: close\r\n\r\n`);
    let answer = '';
    other.on('data', (d: Buffer) => {
      answer += d.toString('latin1');
    });
    await closed(other);
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
  });

  it('a refused connection ends when its peer closes: refusals do not pile up against the per-peer limit', async () => {
    const { agent } = await agentWith({ connectRate: 0.001, connectBurst: 1, maxConnectionsPerPeer: 3 });
    const request = Buffer.from(
      `GET /v1/status HTTP/1.1\r\nHost: ${agent.address}\r\nConnection: close\r\n\r\n`,
    );
    const statuses: number[] = [];
    // The client closes as soon as it has the answer, as HTTP clients do.
    for (let i = 0; i < 10; i++) statuses.push((await exchange(agent.address, request, 20_000)).status);
    expect(statuses).toEqual([200, ...new Array(9).fill(429)]);
  });

  it('a migration stream without HELLO is refused with TIMEOUT after --hello-timeout', async () => {
    const { agent } = await agentWith({ helloTimeoutMs: 1000 });
    const c = await source(agent.address);
    expect((await errorOf(c.receive()))?.code).toBe('TIMEOUT');
  });

  it('an HTTP request whose headers never end gets 408 after --hello-timeout', async () => {
    const { agent } = await agentWith({ helloTimeoutMs: 1000 });
    const s = await raw(agent.address);
    let answer = '';
    s.on('data', (d: Buffer) => {
      answer += d.toString('latin1');
    });
    s.write(`GET /v1/status HTTP/1.1\r\nHost: ${agent.address}\r\n`);
    await closed(s);
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  });

  it('one address opening connections faster than --connect-rate is refused with 429', async () => {
    const { agent } = await agentWith({ connectRate: 0.001, connectBurst: 3 });
    const statuses: string[] = [];
    for (let i = 0; i < 5; i++) {
      const s = await raw(agent.address);
      let answer = '';
      s.on('data', (d: Buffer) => {
        answer += d.toString('latin1');
      });
      s.write(`GET /v1/status HTTP/1.1\r\nHost: ${agent.address}\r\nConnection: close\r\n\r\n`);
      await closed(s);
      statuses.push(answer.slice(9, 12));
      if (i === 4) expect(answer).toMatch(/RESOURCE_LIMIT.*--connect-rate/);
    }
    expect(statuses).toEqual(['200', '200', '200', '429', '429']);
  });
});

const small = (mib: number, vcpus = 1): GuestConfig => ({
  ramBytes: mib * MiB,
  vcpus,
  workload: { name: 'idle' },
});

describe('budgets', () => {
  it('a HELLO asking for 64 vCPUs in a 256 KiB guest is refused with RESOURCE_LIMIT before HELLO_ACK', async () => {
    const { agent } = await agentWith({});
    const config: GuestConfig = { ramBytes: 256 * 1024, vcpus: 64, workload: { name: 'idle' } };
    const err = await answerTo(agent.address, rawHello({ id: 'v64', config }, 64));
    expect(err?.code).toBe('RESOURCE_LIMIT');
    expect(err?.message).toMatch(/64 vCPUs.*one vCPU per 1(\.00)? MiB/);
    // Nothing was reserved or created (the guest is built only after HELLO_ACK).
    expect(agent.resources.usage()).toEqual({ ramBytes: 0, vcpus: 0, reservedRamBytes: 0, reservedVcpus: 0 });
    expect(agent.listGuests()).toEqual([]);
  });

  it('--max-ram-total counts running guests and incoming ones; refused before any allocation', async () => {
    // Each guest is charged its RAM and 8 MiB per vCPU: 12 + 11 of 30 MiB, then 10 more does not fit.
    const { agent, client } = await agentWith({ maxRamTotalBytes: 30 * MiB });
    await client.startGuest(small(4), 'a');
    await client.startGuest(small(3), 'b');
    const third = await errorOf(client.startGuest(small(2), 'c'));
    expect(third?.code).toBe('RESOURCE_LIMIT');
    expect(third?.message).toMatch(/--max-ram-total/);
    const incoming = await answerTo(agent.address, rawHello({ id: 'in1', config: small(2) }));
    expect(incoming?.code).toBe('RESOURCE_LIMIT');
    await client.stopGuest('b');
    expect(await answerTo(agent.address, rawHello({ id: 'in2', config: small(2) }))).toBeUndefined();
    // The refused HELLO and the abandoned one leave no reservation behind.
    await waitFor(
      async () => agent.resources.usage().reservedRamBytes === 0,
      20_000,
      'reservations released',
    );
    expect(agent.listGuests().map((g) => g.id)).toEqual(['a']);
  });

  it('--max-vcpus bounds the vCPU threads of all guests together', async () => {
    const { client } = await agentWith({ maxVcpus: 2 });
    await client.startGuest(small(4, 2), 'two');
    const more = await errorOf(client.startGuest(small(4, 1), 'one'));
    expect(more?.code).toBe('RESOURCE_LIMIT');
    expect(more?.message).toMatch(/--max-vcpus/);
  });

  it('frames being assembled share --max-buffered: other connections wait instead of buffering', async () => {
    const { agent } = await agentWith({ maxBufferedBytes: MiB, maxIncoming: 8, helloTimeoutMs: 120_000 });
    const half = Buffer.alloc(512 * 1024);
    const conns = await Promise.all(Array.from({ length: 6 }, () => source(agent.address)));
    for (const c of conns) {
      // A 1 MiB HELLO frame's header and half its payload, and then nothing.
      const header = Buffer.alloc(8);
      header.writeUInt32BE(MiB, 0);
      header[4] = Command.HELLO;
      c.socket.write(Buffer.concat([header, half]));
    }
    await waitFor(async () => agent.frameBudget.waiting === 5, 30_000, 'five connections waiting for room');
    expect(agent.frameBudget.inUse).toBeLessThanOrEqual(MiB + 12);
    // A stalled holder that goes away gives its room to the next one.
    for (const c of conns) c.destroy();
    await waitFor(
      async () => agent.frameBudget.inUse === 0 && agent.frameBudget.waiting === 0,
      30_000,
      'room freed',
    );
  });
});

describe('files and history', () => {
  it('a trace name from a peer never opens a file: /etc/passwd, /root and /nonexistent get one same error', async () => {
    const { agent } = await agentWith({});
    const answers: string[] = [];
    for (const file of ['/etc/passwd', '/root', '/nonexistent', 'traces/sqlite-tpcb.lmtrace']) {
      const config: GuestConfig = { ramBytes: MiB, workload: { name: `trace:${file}` } };
      const err = await answerTo(agent.address, rawHello({ id: 't1', config }));
      answers.push(`${err?.code} ${err?.message}`);
    }
    expect(new Set(answers).size).toBe(1);
    expect(answers[0]).toMatch(/^PROTOCOL .*must carry its trace in the stream/);
  });

  it('a received trace must match traceCrc and pass the trace parser', async () => {
    const { agent } = await agentWith({});
    const real = readFileSync('traces/sqlite-tpcb.lmtrace');
    const garbage = Buffer.alloc(4096, 0x41);
    const cases: [Buffer, number, RegExp][] = [
      [real, traceChecksum(real) ^ 1, /does not match the guest config's traceCrc/],
      [garbage, traceChecksum(garbage), /not a trace this agent can replay/],
    ];
    for (const [bytes, traceCrc, why] of cases) {
      const config: GuestConfig = {
        ramBytes: 8 * MiB,
        workload: { name: 'trace', params: { traceFile: 'x', traceCrc } },
      };
      const c = await source(agent.address);
      await c.sendFrame(Command.HELLO, rawHello({ id: 'tc', config, trace: { bytes: bytes.length } }));
      await c.expect(Command.HELLO_ACK, 20_000);
      for (let off = 0; off < bytes.length; off += 1 << 20)
        await c.sendFrame(Command.TRACE, bytes.subarray(off, off + (1 << 20)));
      const err = await errorOf(c.receive(20_000));
      expect(err?.code).toBe('PROTOCOL');
      expect(err?.message).toMatch(why);
      c.destroy();
    }
    await waitFor(
      async () => agent.resources.usage().reservedRamBytes === 0,
      20_000,
      'reservations released',
    );
    expect(agent.listGuests()).toEqual([]);
  });

  it('a trace guest migrates with its trace; the destination replays it and the oracle holds', async () => {
    const [a, b] = [await agentWith({}), await agentWith({})];
    const config: GuestConfig = {
      ramBytes: 8 * MiB,
      seed: 3,
      workload: { name: 'trace:traces/sqlite-tpcb.lmtrace' },
    };
    await a.client.startGuest(config, 'tr');
    const m = await a.client.migrate('tr', b.agent.address, {});
    const r = await a.client.follow(m.id, undefined, 50);
    expect(r.status).toBe('completed');
    await expectOracle(b.client, 'tr', config);
  });

  it('the migration history keeps the last --history finished migrations', async () => {
    const { agent, client } = await agentWith({ historySize: 3 });
    await client.startGuest(small(1), 'h');
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const m = await client.migrate('h', '127.0.0.1:1', {}); // nothing listens there: fails at once
      ids.push(m.id);
      expect((await client.follow(m.id, undefined, 20)).status).toBe('failed');
    }
    const list = (await (await fetch(`http://${agent.address}/v1/migrations`)).json()) as { id: string }[];
    const kept = list.map((m) => m.id);
    expect(kept).toEqual(ids.slice(3));
  });

  it('a guest with more RAM blocks than a migration carries is refused at creation, before anything is built', async () => {
    const { client } = await agentWith({});
    const err = await errorOf(
      client.startGuest({ ramBytes: 256 * MiB, blockBytes: 4096, workload: { name: 'idle' } }, 'blocks'),
    );
    expect(err?.message).toMatch(/65536 RAM blocks; a guest may have at most 4096/);
  });

  it('a guest with exactly 4096 RAM blocks migrates', async () => {
    const [a, b] = [await agentWith({}), await agentWith({})];
    const config: GuestConfig = { ramBytes: 16 * MiB, blockBytes: 4096, seed: 5, workload: { name: 'idle' } };
    await a.client.startGuest(config, 'b4k');
    const m = await a.client.migrate('b4k', b.agent.address, {});
    expect((await a.client.follow(m.id, undefined, 50)).status).toBe('completed');
    await expectOracle(b.client, 'b4k', config);
  });
});

describe('agent flags', () => {
  it('every limit flag is validated with a message naming it', () => {
    for (const [flag, value] of [
      ['--max-vcpus', '0'],
      ['--max-ram-total', 'lots'],
      ['--first-byte-timeout', '-1'],
      ['--hello-timeout', '0'],
      ['--connect-rate', 'fast'],
      ['--history', '1.5'],
      ['--max-buffered', '1k'],
    ] as const) {
      const r = runCli(['agent', '--listen', '127.0.0.1:0', flag, value], 60_000);
      expect(r.code, `${flag} ${value}`).toBe(2);
      expect(r.stderr).toContain(flag);
    }
  }, 180_000); // seven CLI processes
});
