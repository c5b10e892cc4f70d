/**
 * Post-copy preemption (QEMU's postcopy-preempt): the answers to the destination's page faults travel on a second
 * connection of their own, never behind the background push. Every finished migration is checked by the
 * determinism oracle; counters show the answers took the preempt channel. No timing is asserted (the figures are in
 * docs/postcopy-recovery.md).
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Agent, AgentClient, startAgent } from '../src/agent/index.js';
import type { GuestConfig } from '../src/guest/index.js';
import { FrameConnection } from '../src/migration/connection.js';
import { runDestination } from '../src/migration/destination.js';
import type { MigrationReport } from '../src/migration/index.js';
import { Command, encodePreempt, PREAMBLE } from '../src/migration/protocol/index.js';
import { expectOracle, localAgent, MiB, sleep, waitFor } from './helpers.js';

const config = (seed: number): GuestConfig => ({
  ramBytes: 48 * MiB,
  vcpus: 1,
  seed,
  workload: { name: 'gap', params: { workingSetBytes: 24 * MiB, writeRate: 2000 } },
});

/** A TCP relay that remembers its connections in the order they came, so that one of them can be cut. */
class Relay {
  readonly pairs: Socket[][] = [];
  private server!: Server;
  address = '';
  constructor(private readonly target: string) {}
  async start(): Promise<void> {
    const i = this.target.lastIndexOf(':');
    const [host, port] = [this.target.slice(0, i), Number(this.target.slice(i + 1))];
    this.server = createServer((a) => {
      const b = connect(port, host);
      this.pairs.push([a, b]);
      for (const s of [a, b]) {
        s.on('error', () => undefined);
        s.on('close', () => {
          a.destroy();
          b.destroy();
        });
      }
      a.pipe(b);
      b.pipe(a);
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    const addr = this.server.address();
    this.address = `127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  }
  async stop(): Promise<void> {
    for (const p of this.pairs) for (const s of p) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

async function openConn(address: string): Promise<FrameConnection> {
  const i = address.lastIndexOf(':');
  const socket = connect(Number(address.slice(i + 1)), address.slice(0, i));
  await new Promise((r) => socket.once('connect', r));
  return new FrameConnection(socket);
}

describe('postcopy-preempt', () => {
  let a: { agent: Agent; client: AgentClient };
  let b: { agent: Agent; client: AgentClient };

  beforeAll(async () => {
    [a, b] = await Promise.all([localAgent(), localAgent()]);
  });
  afterAll(async () => {
    await Promise.all([a.agent.close(), b.agent.close()]);
  });

  it('answers faults on the preempt channel under a bandwidth limit, and the guest arrives byte for byte', async () => {
    await a.client.startGuest(config(21), 'pre-1');
    await sleep(200);
    const started = await a.client.migrate('pre-1', b.agent.address, {
      strategy: 'postcopy',
      maxBandwidth: 12 * MiB,
      postcopyPreempt: true,
    });
    const r: MigrationReport = await a.client.follow(started.id, () => undefined);
    expect(r.error).toBeUndefined();
    expect(r.status).toBe('completed');
    expect(r.verified).toBe(true);
    // The gap workload faults on pages the push has not reached: their answers took the preempt channel.
    expect(r.postcopy.preemptPages).toBeGreaterThan(0);
    expect(r.postcopy.preemptPages).toBe(r.postcopy.requestedPages);
    expect(r.events.some((e) => e.includes('postcopy-preempt'))).toBe(true);
    // The destination counted them arriving there.
    type Status = { incoming: { id: string; preemptPages?: number }[] };
    const incoming = ((await b.client.status()) as unknown as Status).incoming.find((m) => m.id === r.id);
    expect(incoming?.preemptPages).toBeGreaterThan(0);
    await expectOracle(b.client, 'pre-1', config(21));
    await b.client.stopGuest('pre-1');
  });

  it('refuses with CAPABILITY when the destination cannot take a preempt channel; the guest stays on the source', async () => {
    // A destination engine without the agent's preempt registry: it does not grant POSTCOPY_PREEMPT.
    const server = createServer((socket) => {
      void runDestination(new FrameConnection(socket, { expectPreamble: true }), {
        onGuestResumed: () => undefined,
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    try {
      await a.client.startGuest(config(22), 'pre-cap');
      const started = await a.client.migrate('pre-cap', `127.0.0.1:${port}`, {
        strategy: 'postcopy',
        postcopyPreempt: true,
      });
      const r = await a.client.follow(started.id, () => undefined);
      expect(r.status).toBe('failed');
      expect(r.error?.code).toBe('CAPABILITY');
      expect(r.error?.message).toMatch(/postcopy-preempt/);
      const g = (await a.client.guests()).find((x) => x.id === 'pre-cap');
      expect(g?.status).toBe('running');
      await a.client.stopGuest('pre-cap');
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('the preempt channel has a place of its own beyond --max-incoming', async () => {
    const agent = await startAgent({ host: '127.0.0.1', port: 0, maxIncoming: 1 });
    const client = new AgentClient(agent.address);
    try {
      await a.client.startGuest(config(26), 'pre-max');
      const started = await a.client.migrate('pre-max', agent.address, {
        strategy: 'postcopy',
        maxBandwidth: 12 * MiB,
        postcopyPreempt: true,
      });
      const r = await a.client.follow(started.id, () => undefined);
      expect(r.error).toBeUndefined();
      expect(r.status).toBe('completed');
      expect(r.verified).toBe(true);
      await expectOracle(client, 'pre-max', config(26));
      await client.stopGuest('pre-max');
    } finally {
      await agent.close();
    }
  });

  it('refuses --postcopy-preempt without post-copy', async () => {
    await a.client.startGuest(config(23), 'pre-usage');
    await expect(
      a.client.migrate('pre-usage', b.agent.address, { strategy: 'precopy', postcopyPreempt: true }),
    ).rejects.toThrow(/postcopy/);
    await a.client.stopGuest('pre-usage');
  });

  it('refuses a foreign preempt connection (unknown migration, or a live one with the wrong token)', async () => {
    const unknown = await openConn(b.agent.address);
    unknown.writeRaw(PREAMBLE);
    await unknown.sendFrame(
      Command.PREEMPT,
      encodePreempt({ migrationId: 'ab'.repeat(16), token: 'cd'.repeat(16) }),
    );
    await expect(unknown.receive(5000)).rejects.toMatchObject({ code: 'RECOVER_REFUSED' });
    unknown.destroy();

    // A live post-copy with preempt: a stranger who knows its id but not its token is refused, and the
    // migration is not disturbed.
    await a.client.startGuest(config(24), 'pre-foreign');
    await sleep(200);
    const started = await a.client.migrate('pre-foreign', b.agent.address, {
      strategy: 'postcopy',
      maxBandwidth: 12 * MiB,
      postcopyPreempt: true,
    });
    await waitFor(
      async () => (await a.client.migration(started.id)).status === 'postcopy-active',
      30_000,
      'post-copy to be under way',
    );
    const stranger = await openConn(b.agent.address);
    stranger.writeRaw(PREAMBLE);
    await stranger.sendFrame(
      Command.PREEMPT,
      encodePreempt({ migrationId: started.id, token: 'ef'.repeat(16) }),
    );
    await expect(stranger.receive(5000)).rejects.toMatchObject({ code: 'RECOVER_REFUSED' });
    stranger.destroy();
    const r = await a.client.follow(started.id, () => undefined);
    expect(r.status).toBe('completed');
    expect(r.verified).toBe(true);
    expect(r.postcopy.recoveries ?? 0).toBe(0);
    await expectOracle(b.client, 'pre-foreign', config(24));
    await b.client.stopGuest('pre-foreign');
  });

  it('losing the preempt channel in post-copy pauses and recovers like losing the main link', async () => {
    const relay = new Relay(b.agent.address);
    await relay.start();
    try {
      await a.client.startGuest(config(25), 'pre-cut');
      await sleep(200);
      const started = await a.client.migrate('pre-cut', relay.address, {
        strategy: 'postcopy',
        maxBandwidth: 12 * MiB,
        postcopyPreempt: true,
      });
      await waitFor(
        async () => {
          const m = await a.client.migration(started.id);
          return m.status === 'postcopy-active' && m.postcopy.pushedPages > 500;
        },
        30_000,
        'post-copy to be under way',
      );
      // The second connection through the relay is the preempt channel (the first is the main one).
      expect(relay.pairs.length).toBeGreaterThanOrEqual(2);
      for (const s of relay.pairs[1]!) s.destroy();
      const r = await a.client.follow(started.id, () => undefined);
      expect(r.error).toBeUndefined();
      expect(r.status).toBe('completed');
      expect(r.verified).toBe(true);
      expect(r.postcopy.recoveries).toBeGreaterThanOrEqual(1);
      expect(r.events.some((e) => e.includes('preempt channel lost'))).toBe(true);
      await expectOracle(b.client, 'pre-cut', config(25));
      await b.client.stopGuest('pre-cut');
    } finally {
      await relay.stop();
    }
  });
});
