/**
 * Post-copy recovery (QEMU's postcopy-recover): the link breaks after switch-over, both sides keep their state,
 * and the migration finishes over a new connection with nothing lost — reconnecting by itself, or when told
 * `resume` with a new address. The link runs through a relay in this process that can cut it and refuse new
 * connections, like a network outage.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent, AgentClient } from '../src/agent/index.js';
import type { GuestConfig } from '../src/guest/index.js';
import { FrameConnection } from '../src/migration/connection.js';
import type { MigrationReport } from '../src/migration/index.js';
import { Command, encodeRecover, PREAMBLE } from '../src/migration/protocol/index.js';
import { expectOracle, localAgent, MiB, sleep, waitFor } from './helpers.js';

class Relay {
  readonly sockets = new Set<Socket>();
  refuse = false;
  private server!: Server;
  address = '';
  constructor(private readonly target: string) {}
  async start(): Promise<void> {
    const [host, port] = [
      this.target.slice(0, this.target.lastIndexOf(':')),
      Number(this.target.split(':').pop()),
    ];
    this.server = createServer((a) => {
      if (this.refuse) return void a.destroy();
      const b = connect(port, host);
      for (const s of [a, b]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => {
          this.sockets.delete(s);
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
  cut(): void {
    for (const s of this.sockets) s.destroy();
  }
  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

const config = (seed: number): GuestConfig => ({
  ramBytes: 48 * MiB,
  vcpus: 1,
  seed,
  workload: { name: 'gap', params: { workingSetBytes: 24 * MiB, writeRate: 2000 } },
});

describe('post-copy recovery', () => {
  let a: { agent: Agent; client: AgentClient };
  let b: { agent: Agent; client: AgentClient };
  let relay: Relay;

  beforeAll(async () => {
    [a, b] = await Promise.all([localAgent(), localAgent()]);
    relay = new Relay(b.agent.address);
    await relay.start();
  });
  afterAll(async () => {
    await relay.stop();
    await Promise.all([a.agent.close(), b.agent.close()]);
  });

  /** Starts a slow post-copy through the relay and waits until it is well into the post-copy phase. */
  async function startPostcopy(id: string, seed: number): Promise<string> {
    await a.client.startGuest(config(seed), id);
    await sleep(200);
    const started = await a.client.migrate(id, relay.address, {
      strategy: 'postcopy',
      maxBandwidth: 12 * MiB,
    });
    await waitFor(
      async () => {
        const r = await a.client.migration(started.id);
        return r.status === 'postcopy-active' && r.postcopy.pushedPages > 500;
      },
      20_000,
      'post-copy to be under way',
    );
    return started.id;
  }

  it('reconnects by itself after a link cut and finishes with nothing lost', async () => {
    const id = await startPostcopy('rec-auto', 11);
    relay.cut();
    const r: MigrationReport = await a.client.follow(id, () => undefined);
    expect(r.error).toBeUndefined();
    expect(r.status).toBe('completed');
    expect(r.verified).toBe(true);
    expect(r.postcopy.recoveries).toBeGreaterThanOrEqual(1);
    expect(r.events.some((e) => e.includes('post-copy paused'))).toBe(true);
    // The guest lives on the destination only, with exactly the memory of a guest that never moved.
    expect((await a.client.guests()).find((g) => g.id === 'rec-auto')).toBeUndefined();
    await expectOracle(b.client, 'rec-auto', config(11));
    await b.client.stopGuest('rec-auto');
  });

  it('waits in postcopy-paused while the destination is unreachable; resume to a new address finishes it', async () => {
    const id = await startPostcopy('rec-resume', 12);
    relay.refuse = true;
    relay.cut();
    await waitFor(async () => (await a.client.migration(id)).status === 'postcopy-paused', 10_000, 'paused');
    // Both sides keep their state: the destination waits too, and its guest is there (running, on faults).
    type Status = { incoming: { id: string; phase: string }[] };
    await waitFor(
      async () =>
        ((await b.client.status()) as unknown as Status).incoming.some(
          (m) => m.id === id && m.phase === 'postcopy-paused',
        ),
      10_000,
      'destination paused',
    );
    expect((await b.client.guests()).some((g) => g.id === 'rec-resume')).toBe(true);
    await sleep(1500); // retries against a dead address keep failing; nothing is lost meanwhile
    expect((await a.client.migration(id)).status).toBe('postcopy-paused');
    // The operator points the source at the destination directly (a new route).
    await a.client.resumeMigration(id, b.agent.address);
    const r = await a.client.follow(id, () => undefined);
    relay.refuse = false;
    expect(r.status).toBe('completed');
    expect(r.verified).toBe(true);
    expect(r.postcopy.recoveries).toBe(1);
    expect(r.postcopy.pausedMs).toBeGreaterThan(0);
    await expectOracle(b.client, 'rec-resume', config(12));
    await b.client.stopGuest('rec-resume');
  });

  it('refuses a RECOVER for an unknown migration or with the wrong token, and keeps serving', async () => {
    const [host, port] = b.agent.address.split(':');
    const socket = connect(Number(port), host);
    await new Promise((r) => socket.once('connect', r));
    const conn = new FrameConnection(socket);
    conn.writeRaw(PREAMBLE);
    await conn.sendFrame(
      Command.RECOVER,
      encodeRecover({ migrationId: 'ab'.repeat(16), token: 'cd'.repeat(16) }),
    );
    await expect(conn.receive(5000)).rejects.toMatchObject({ code: 'RECOVER_REFUSED' });
    conn.destroy();
    expect((await b.client.status()).address).toBe(b.agent.address);
  });

  it('resume refuses a migration that is not paused', async () => {
    await a.client.startGuest(config(13), 'rec-none');
    const started = await a.client.migrate('rec-none', b.agent.address, { strategy: 'precopy' });
    const r = await a.client.follow(started.id, () => undefined);
    expect(r.status).toBe('completed');
    await expect(a.client.resumeMigration(started.id)).rejects.toThrow(/not postcopy-paused/);
    await b.client.stopGuest('rec-none');
  });
});
