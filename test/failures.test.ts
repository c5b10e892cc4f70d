/**
 * Failures before switch-over, across real processes: a destination killed with SIGKILL mid-round, a source
 * killed mid-round, a hostile or broken peer (corrupt frame, wrong digest, not a migration stream). After each,
 * the guest runs in exactly one place and a retry succeeds.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentClient } from '../src/agent/index.js';
import type { ChildAgent } from '../src/agent/spawn.js';
import type { GuestConfig } from '../src/guest/index.js';
import { FrameConnection } from '../src/migration/connection.js';
import { fullRamDigest, vcpuDigest } from '../src/migration/ledger.js';
import {
  Command,
  encodeDigest,
  encodeFrame,
  encodeJson,
  PageEncoding,
  PagesFrameBuilder,
  PREAMBLE,
} from '../src/migration/protocol/index.js';
import { childAgent, expectOracle, isAdvancing, MiB, rawHello, sleep, waitFor } from './helpers.js';

const config: GuestConfig = {
  ramBytes: 32 * MiB,
  seed: 21,
  workload: { name: 'gap', params: { workingSetBytes: 24 * MiB, writeRate: 3000 } },
};

let src: { child: ChildAgent; client: AgentClient };

beforeAll(async () => {
  src = await childAgent();
});
afterAll(async () => {
  await src?.child.stop();
});

describe('killed processes', () => {
  it('destination SIGKILLed mid-round: CONNECTION_LOST, guest keeps running on the source, retry succeeds', async () => {
    const dst = await childAgent();
    await src.client.startGuest(config, 'k1');
    // Slow link so the migration is surely mid-round when the destination dies.
    const m = await src.client.migrate('k1', dst.child.address, { maxBandwidth: 8 * MiB });
    await waitFor(
      async () => (await src.client.migration(m.id)).transferredBytes > 2 * MiB,
      20_000,
      'round 1',
    );
    dst.child.process.kill('SIGKILL');
    const r = await src.client.follow(m.id, undefined, 50);
    expect(r.status).toBe('failed');
    expect(r.error?.code).toBe('CONNECTION_LOST');
    expect(await isAdvancing(src.client, 'k1')).toBe(true);

    const dst2 = await childAgent();
    try {
      const m2 = await src.client.migrate('k1', dst2.child.address, { maxBandwidth: 0 });
      const r2 = await src.client.follow(m2.id, undefined, 50);
      expect(r2.status).toBe('completed');
      expect(r2.verified).toBe(true);
      await expectOracle(dst2.client, 'k1', config);
    } finally {
      await dst2.child.stop();
    }
  });

  it('source SIGKILLed mid-round: the destination discards the partial guest and keeps serving', async () => {
    const s2 = await childAgent();
    const dst = await childAgent();
    try {
      await s2.client.startGuest(config, 'k2');
      const m = await s2.client.migrate('k2', dst.child.address, { maxBandwidth: 8 * MiB });
      await waitFor(
        async () => (await s2.client.migration(m.id)).transferredBytes > 2 * MiB,
        20_000,
        'round 1',
      );
      s2.child.process.kill('SIGKILL');
      await waitFor(
        async () => {
          const st = (await fetch(`http://${dst.child.address}/v1/status`).then((r) => r.json())) as {
            incoming: { guestId: string; phase: string }[];
          };
          return st.incoming.some((i) => i.guestId === 'k2' && i.phase === 'discarded');
        },
        10_000,
        'the destination to discard',
      );
      expect(await dst.client.guests()).toEqual([]);
      // Still serves: a migration from another source lands.
      await src.client.startGuest(config, 'k3');
      const m3 = await src.client.migrate('k3', dst.child.address, { maxBandwidth: 0 });
      expect((await src.client.follow(m3.id, undefined, 50)).status).toBe('completed');
      await dst.client.stopGuest('k3');
    } finally {
      await s2.child.stop();
      await dst.child.stop();
    }
  });

  it.each([
    ['--timeout', 'TIMEOUT', 'failed'],
    ['cancel', 'CANCELLED', 'cancelled'],
  ])(
    'destination SIGSTOPped mid-send, then %s: %s, guest running on the source',
    async (how, code, status) => {
      const dst = await childAgent();
      const id = `k4-${how}`;
      try {
        await src.client.startGuest(config, id);
        const m = await src.client.migrate(id, dst.child.address, {
          maxBandwidth: 0,
          ...(how === '--timeout' ? { timeoutMs: 2500 } : {}),
        });
        await waitFor(
          async () => (await src.client.migration(m.id)).transferredBytes > 1 * MiB,
          20_000,
          'round 1',
        );
        dst.child.process.kill('SIGSTOP');
        // The source is now blocked writing to a peer that reads nothing; cancel and timeout must still work.
        if (how === 'cancel') {
          await sleep(300);
          await src.client.cancel(m.id);
        }
        const r = await src.client.follow(m.id, undefined, 50);
        expect(r.status).toBe(status);
        expect(r.error?.code).toBe(code);
        expect(await isAdvancing(src.client, id)).toBe(true);
        dst.child.process.kill('SIGCONT');
        await waitFor(async () => (await dst.client.guests()).length === 0, 10_000, 'destination to discard');
        await expectOracle(src.client, id, config);
        await src.client.stopGuest(id);
      } finally {
        dst.child.process.kill('SIGCONT');
        await dst.child.stop();
      }
    },
  );
});

/** A hand-driven source: speaks the protocol directly to a destination agent. */
async function fakeSource(address: string): Promise<FrameConnection> {
  const [host, port] = address.split(':');
  const socket = connect({ host: host!, port: Number(port) });
  await new Promise<void>((res, rej) => {
    socket.once('connect', () => res());
    socket.once('error', rej);
  });
  return new FrameConnection(socket);
}

function hello(id: string, pages = 16): Buffer {
  return rawHello({ id, config: { ramBytes: pages * 4096, workload: { name: 'idle' } } });
}

describe('hostile or broken peers', () => {
  let dst: { child: ChildAgent; client: AgentClient };
  beforeAll(async () => {
    dst = await childAgent(['--max-ram', '64MiB']);
  });
  afterAll(async () => {
    await dst?.child.stop();
  });

  it('a corrupt frame is refused with CHECKSUM and nothing is kept', async () => {
    const c = await fakeSource(dst.child.address);
    c.writeRaw(PREAMBLE);
    await c.sendFrame(Command.HELLO, hello('bad1'));
    await c.expect(Command.HELLO_ACK, 5000);
    const frame = encodeFrame(Command.ROUND, Buffer.alloc(12));
    frame[10] = frame[10]! ^ 0xff;
    c.socket.write(frame);
    await expect(c.receive(5000)).rejects.toMatchObject({ code: 'CHECKSUM' });
    expect(await dst.client.guests()).toEqual([]);
  });

  it('a wrong digest at switch-over is refused with DIGEST_MISMATCH; the guest never runs there', async () => {
    const c = await fakeSource(dst.child.address);
    c.writeRaw(PREAMBLE);
    await c.sendFrame(Command.HELLO, hello('bad2'));
    await c.expect(Command.HELLO_ACK, 5000);
    const frames: Buffer[] = [];
    const b = new PagesFrameBuilder(64 * 1024, (f) => frames.push(f));
    b.reserve(4096).fill(0x5a);
    b.commit(3, PageEncoding.RAW, 4096);
    b.finishFrame();
    for (const f of frames) await c.send(f);
    const state = {
      config: { ramBytes: 16 * 4096, workload: { name: 'idle' } },
      vcpus: [{ index: 0, step: 0, rng: [1, 2, 3, 4], registers: {} }],
    };
    await c.sendFrame(Command.VCPU_STATE, encodeJson(state));
    // Claim page 3 holds 0x6b bytes instead of the 0x5a that was sent.
    const wrong = fullRamDigest(16, (i) => new Uint8Array(4096).fill(i === 3 ? 0x6b : 0));
    await c.sendFrame(
      Command.SWITCHOVER,
      encodeDigest({ method: 'ledger', ram: wrong, vcpu: vcpuDigest(state) }),
    );
    await expect(c.receive(5000)).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
    expect(await dst.client.guests()).toEqual([]);
  });

  it('a guest larger than --max-ram is refused before any allocation', async () => {
    const c = await fakeSource(dst.child.address);
    c.writeRaw(PREAMBLE);
    await c.sendFrame(Command.HELLO, hello('huge', 1 << 20));
    await expect(c.receive(5000)).rejects.toMatchObject({ code: 'RESOURCE_LIMIT' });
  });

  it('garbage instead of a migration stream gets an HTTP error, and the agent keeps serving', async () => {
    const res = await fetch(`http://${dst.child.address}/no/such/thing`);
    expect(res.status).toBe(404);
    const c = await fakeSource(dst.child.address);
    c.writeRaw(Buffer.from('LVMGxxxxnot a stream at all'));
    await expect(c.receive(5000)).rejects.toMatchObject({
      code: expect.stringMatching(/PROTOCOL|CONNECTION_LOST/),
    });
    expect((await dst.client.status()).version).toBeTruthy();
  });

  it('control API errors name the field and the accepted form', async () => {
    const res = await fetch(`http://${dst.child.address}/v1/guests`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ config: { ramBytes: 12345, workload: { name: 'idle' } } }),
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('BAD_ARGUMENT');
    expect(body.error.message).toMatch(/ramBytes/);
    const bad = await fetch(`http://${dst.child.address}/v1/migrations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{nope',
    });
    expect(bad.status).toBe(400);
    // Without the JSON content type (what a cross-site form or text/plain fetch would send): refused.
    const csrf = await fetch(`http://${dst.child.address}/v1/guests/x/pause`, { method: 'POST', body: 'x' });
    expect(csrf.status).toBe(415);
  });
});
