/**
 * Replayed and spliced migration streams. Over mutual TLS: a recorded session's bytes replayed to the agent's
 * port fail the handshake (the server's fresh random makes the old Finished message worthless) and never reach
 * the migration receiver; bytes of another session spliced into a live migration fail TLS record authentication
 * and end the migration with the guest still on the source. In plain TCP (loopback only): a PAGES frame from
 * another migration spliced into the stream is refused on arrival (FOREIGN_FRAME): frames are bound to the
 * connection's nonce and their position (frame binding, docs/protocol.md), so it fails its check, or the real frame
 * after it does.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentClient, makeCerts, type TlsMaterial } from '../src/agent/index.js';
import type { ChildAgent } from '../src/agent/spawn.js';
import { FaultProxy } from '../src/faults/index.js';
import type { GuestConfig } from '../src/guest/index.js';
import { Command, PageEncoding, PagesFrameBuilder } from '../src/migration/protocol/index.js';
import { childAgent, expectOracle, isAdvancing, MiB, tlsFlags } from './helpers.js';

const config: GuestConfig = {
  ramBytes: 16 * MiB,
  seed: 9,
  workload: { name: 'gap', params: { workingSetBytes: 8 * MiB, writeRate: 1000 } },
};

let dir: string;
let files: ReturnType<typeof makeCerts>;
let a: ChildAgent;
let b: ChildAgent;
let ca: AgentClient;
let cb: AgentClient;
const proxies: FaultProxy[] = [];

const tlsArgs = (name: string) => tlsFlags(files, name);
const incomingCount = async (c: AgentClient) =>
  ((await c.status()) as unknown as { incoming: unknown[] }).incoming.length;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'livemig-replay-'));
  files = makeCerts({ dir, names: ['a', 'b', 'admin'] });
  const admin: TlsMaterial = {
    cert: readFileSync(files.agents.admin!.cert),
    key: readFileSync(files.agents.admin!.key),
    ca: readFileSync(files.ca),
  };
  [a, b] = await Promise.all([
    childAgent(tlsArgs('a')).then((x) => x.child),
    childAgent(tlsArgs('b')).then((x) => x.child),
  ]);
  ca = new AgentClient(a.address, { tls: admin });
  cb = new AgentClient(b.address, { tls: admin });
}, 60_000);

afterAll(async () => {
  for (const p of proxies) await p.close();
  ca?.close();
  cb?.close();
  await Promise.all([a?.stop(), b?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('replayed and spliced streams over mutual TLS', () => {
  let recorded: Buffer;

  it('a recorded migration session replayed to the port fails the handshake; nothing reaches the receiver', async () => {
    const chunks: Buffer[] = [];
    const rec = await FaultProxy.start({
      target: b.address,
      tap: (d, x) => d === 'forward' && chunks.push(x),
    });
    proxies.push(rec);
    await ca.startGuest(config, 'r1');
    const m = await ca.migrate('r1', rec.address, { maxBandwidth: 0 });
    expect((await ca.waitMigration(m.id)).status).toBe('completed');
    await cb.stopGuest('r1');
    recorded = Buffer.concat(chunks);
    expect(recorded.length).toBeGreaterThan(1 * MiB);

    const before = await incomingCount(cb);
    const [host, port] = b.address.split(':');
    const s = connect({ host: host!, port: Number(port) });
    s.on('error', () => undefined);
    const answer: Buffer[] = [];
    s.on('data', (x: Buffer) => answer.push(x));
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    s.write(recorded);
    await closed;
    // The agent answered with its own (new) handshake at most, then dropped the connection.
    expect(Buffer.concat(answer).length).toBeLessThan(16 * 1024);
    expect(await incomingCount(cb)).toBe(before);
    expect(await cb.guests()).toEqual([]);
  }, 60_000);

  it('bytes of another session spliced into a live TLS migration: refused, the guest stays on the source, a retry succeeds', async () => {
    const p = await FaultProxy.start({ target: b.address });
    proxies.push(p);
    p.at({ atByte: 2 * MiB }, { kind: 'inject', bytes: recorded.subarray(1 * MiB, 1 * MiB + 64 * 1024) });
    await ca.startGuest(config, 'r2');
    const m = await ca.migrate('r2', p.address, { maxBandwidth: 0 });
    const r = await ca.waitMigration(m.id);
    expect(p.stats.events).toHaveLength(1);
    expect(r.status).toBe('failed');
    // The destination's TLS layer rejects the foreign records (bad record MAC) and closes: the source reads its
    // alert as an authentication failure — unless the destination's reset overtakes the alert (the destination now
    // also writes during round 1, SWITCHOVER_ACK; on Linux a reset discards what the source had not read yet), and
    // then the source can only say the link was reset. Either way the migration is refused.
    const why = `${r.error?.code}: ${r.error?.message}`;
    expect(why).toMatch(/^AUTH_FAILED: .*bad record mac|^CONNECTION_LOST: .*(ECONNRESET|closed by the peer)/);
    expect(await isAdvancing(ca, 'r2')).toBe(true);
    expect(await cb.guests()).toEqual([]);
    const m2 = await ca.migrate('r2', b.address, { maxBandwidth: 0 });
    const r2 = await ca.waitMigration(m2.id);
    expect(r2.status, JSON.stringify(r2.error)).toBe('completed');
    await expectOracle(cb, 'r2', config);
    await cb.stopGuest('r2');
  }, 60_000);
});

describe('a frame from another migration spliced into a plain stream', () => {
  it('is refused on arrival (frame binding): FOREIGN_FRAME, the guest never runs on the destination', async () => {
    const [s, d] = await Promise.all([childAgent(), childAgent()]);
    try {
      const idle: GuestConfig = { ramBytes: 16 * MiB, seed: 3, workload: { name: 'idle' } };
      const foreign: Buffer[] = [];
      const builder = new PagesFrameBuilder(64 * 1024, (f) => foreign.push(Buffer.from(f)));
      builder.reserve(4096).fill(0xa5);
      builder.commit(7, PageEncoding.RAW, 4096);
      builder.finishFrame();
      const p = await FaultProxy.start({ target: d.child.address });
      proxies.push(p);
      // Just before round 1's marker: after every page of round 1, so nothing overwrites the foreign page.
      p.at({ atFrame: Command.ROUND }, { kind: 'inject', bytes: Buffer.concat(foreign) });
      await s.client.startGuest(idle, 'sp1');
      const m = await s.client.migrate('sp1', p.address, { maxBandwidth: 0 });
      const r = await s.client.waitMigration(m.id);
      expect(p.stats.events).toHaveLength(1);
      expect(r.status).toBe('failed');
      // The frames are bound to this connection's nonce and their position: the foreign one fails its check (or the
      // real frame after it does, bound one place earlier), long before the ledger would catch it at switch-over.
      // The destination refuses while round 1 still streams; its close lingers until the source has read the
      // ERROR and closed (up to 2 s), so no reset overtakes it (test/connection-linger.test.ts).
      expect(r.error?.code, r.error?.message).toBe('FOREIGN_FRAME');
      expect(r.error?.message).toMatch(/does not belong here/);
      expect(r.rounds).toBeLessThanOrEqual(1);
      expect((await s.client.guest('sp1')).status).toBe('running');
      expect(await d.client.guests()).toEqual([]);
      await expectOracle(s.client, 'sp1', idle);
    } finally {
      await Promise.all([s.child.stop(), d.child.stop()]);
    }
  }, 60_000);
});
