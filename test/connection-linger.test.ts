/**
 * The lingering close after an ERROR frame, over real sockets (TCP and TLS on loopback). The race it closes: the
 * destination refuses the stream while the source is still writing; if the destination then closes with the
 * source's bytes unread, its kernel resets the connection, and a source that has not read the ERROR yet (busy
 * writing, or slowed by a loaded host) loses it unread and reports a lost link instead of why.
 *
 * Made deterministic: the destination's receive queue is full (its socket paused for backpressure, as when the page
 * sink's verdict comes late and frames pile up) when it sends ERROR, and the source reads nothing until it has
 * written everything it meant to and the destination has closed.
 */
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCerts } from '../src/agent/index.js';
import { MigrationError } from '../src/errors.js';
import { FrameConnection } from '../src/migration/connection.js';
import { Command, encodeFrame } from '../src/migration/protocol/index.js';
import { disposeAfterEach } from '../src/migration/testing/index.js';

const MiB = 1 << 20;

const track = disposeAfterEach();

let certDir: string;
let cert: { key: Buffer; cert: Buffer };
beforeAll(() => {
  // A CA-signed certificate for the TLS case (the transport is what is tested, not peer authentication).
  certDir = mkdtempSync(join(tmpdir(), 'livemig-linger-'));
  const files = makeCerts({ dir: certDir, names: ['dst'], days: 1 });
  const dst = files.agents.dst!;
  cert = { key: readFileSync(dst.key), cert: readFileSync(dst.cert) };
});
afterAll(() => {
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

/** A connected pair of sockets over loopback: [the source's end, the destination's end]. */
async function sockets(transport: 'tcp' | 'tls'): Promise<[Socket, Socket]> {
  if (transport === 'tcp') {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    const client = connect((server.address() as { port: number }).port, '127.0.0.1');
    await once(client, 'connect');
    const [socket] = await accepted;
    server.close();
    return [client, socket];
  }
  const server = createTlsServer(cert);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'secureConnection') as Promise<[TLSSocket]>;
  const client = tlsConnect({
    port: (server.address() as { port: number }).port,
    host: '127.0.0.1',
    rejectUnauthorized: false,
  });
  await once(client, 'secureConnect');
  const [socket] = await accepted;
  server.close();
  return [client, socket];
}

async function until(what: string, ok: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe.each(['tcp', 'tls'] as const)('the lingering close after ERROR (%s)', (transport) => {
  it("a source still writing when the destination refuses reads the destination's ERROR, not a reset", async () => {
    expect.assertions(2);
    const [s, d] = await sockets(transport);
    const src = new FrameConnection(s);
    // The whole test within one linger, however loaded the host: only the bytes' fate is at stake here.
    const dst = new FrameConnection(d, { errorLingerMs: 30_000 });
    track(src);
    track(dst);
    // The source is busy writing: it reads only once its round is written.
    s.pause();
    const frame = encodeFrame(Command.PAGES, Buffer.alloc(1 * MiB, 0x5a));
    // Nobody takes frames at the destination: past its receive queue's limit it stops reading (backpressure).
    const filling = (async () => {
      for (let i = 0; i < 8; i++) await src.send(frame);
    })();
    await until('the destination to stop reading', () => d.isPaused());
    // Its verdict on a frame comes now (the page sink's FOREIGN_FRAME): ERROR, and its half of the close.
    const closed = dst.sendErrorAndClose(
      new MigrationError('FOREIGN_FRAME', 'migration stream: a frame does not belong here'),
    );
    let failure: unknown;
    try {
      await filling;
      // The source writes the rest of its round, far more than the kernels' buffers hold.
      for (let i = 0; i < 64; i++) await src.send(frame);
      s.resume();
      await src.receive(10_000);
    } catch (err) {
      failure = err;
    }
    await closed;
    expect(d.destroyed).toBe(true);
    const e = failure as MigrationError;
    expect(`${e.code}: ${e.message}`).toMatch(/^FOREIGN_FRAME: peer reported: /);
  }, 60_000);
});
