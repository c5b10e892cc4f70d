import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { MigrationError } from '../errors.js';
import { FrameConnection, type SendPacer } from './connection.js';
import { pageCrc } from './ledger.js';
import { Command, forEachPageEntry, PagesFrameBuilder } from './protocol/index.js';
import { createLinkPair, disposeAfterEach } from './testing/index.js';

const track = disposeAfterEach();

/** Two connected FrameConnections over loopback; `pacer` on the first. */
async function pair(pacer?: SendPacer): Promise<[FrameConnection, FrameConnection]> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = connect(port, '127.0.0.1');
  await once(client, 'connect');
  const [socket] = await accepted;
  server.close();
  const a = new FrameConnection(client, { pacer });
  const b = new FrameConnection(socket);
  track(a);
  track(b);
  return [a, b];
}

describe('FrameConnection modes', () => {
  it('disableRateLimit: sends stop passing the pacer', async () => {
    let paced = 0;
    const [a, b] = await pair({ consume: async () => void paced++ });
    await a.sendFrame(Command.GO);
    expect(paced).toBe(1);
    a.disableRateLimit();
    await a.sendFrame(Command.GO);
    expect(paced).toBe(1);
    await b.expect(Command.GO, 10_000);
    await b.expect(Command.GO, 10_000);
  });

  it('unpaced: frames sent synchronously inside skip the pacer and reach the socket at once; pacing resumes after', async () => {
    let paced = 0;
    const [a, b] = await pair({ consume: async () => void paced++ });
    const written: number[] = [];
    const write = a.socket.write.bind(a.socket);
    a.socket.write = ((chunk: Uint8Array, ...rest: never[]) => {
      written.push(chunk.length);
      return write(chunk, ...rest);
    }) as typeof a.socket.write;
    const sent = a.unpaced(() => Promise.all([a.sendFrame(Command.READY), a.sendFrame(Command.GO)]));
    // Written in the call itself (a paced send would reach the socket only after the pacer's promise).
    expect(written).toHaveLength(2);
    await sent;
    expect(paced).toBe(0);
    await a.sendFrame(Command.GO);
    expect(paced).toBe(1);
    await b.expect(Command.READY, 10_000);
    await b.expect(Command.GO, 10_000);
    await b.expect(Command.GO, 10_000);
  });

  it('divertFrames: frames go to the handler until stopDiverting, then to the receive queue', async () => {
    const [a, b] = await pair();
    const diverted: Command[] = [];
    let seen: () => void = () => undefined;
    b.divertFrames((f) => {
      diverted.push(f.command);
      seen();
    });
    const got = new Promise<void>((resolve) => {
      seen = resolve;
    });
    await a.sendFrame(Command.GO);
    await got;
    expect(diverted).toEqual([Command.GO]);
    b.stopDiverting();
    await a.sendFrame(Command.RESUMED);
    expect((await b.expect(Command.RESUMED, 10_000)).command).toBe(Command.RESUMED);
    expect(diverted).toEqual([Command.GO]);
  });
});

describe('FrameConnection over an in-memory link', () => {
  it('divertFrames hands over frames that arrived before it, in order', async () => {
    const [x, y] = createLinkPair();
    const a = new FrameConnection(x);
    const b = new FrameConnection(y);
    track(a);
    track(b);
    await a.sendFrame(Command.RESUMED);
    await a.sendFrame(Command.PAGE_REQUEST, Buffer.from([0, 0, 0, 1, 0, 0, 0, 7]));
    expect((await b.expect(Command.RESUMED, 10_000)).command).toBe(Command.RESUMED);
    await new Promise((r) => setImmediate(r)); // the PAGE_REQUEST is queued by now
    const diverted: Command[] = [];
    b.divertFrames((f) => diverted.push(f.command));
    expect(diverted).toEqual([Command.PAGE_REQUEST]);
  });

  it("the peer's ERROR followed by its close fails the connection with the ERROR's code, not CONNECTION_LOST", async () => {
    const [x, y] = createLinkPair();
    const a = new FrameConnection(x);
    const b = new FrameConnection(y);
    track(a);
    track(b);
    const told = new Promise<MigrationError>((resolve) => b.onClose(resolve));
    await a.sendErrorAndClose(new MigrationError('RESOURCE_LIMIT', 'no room'));
    const e = await told;
    expect(e.code).toBe('RESOURCE_LIMIT');
    expect(e.context.remote).toBe(true);
    await expect(b.sendFrame(Command.GO)).rejects.toMatchObject({ code: 'RESOURCE_LIMIT' });
  });
});

describe('FrameConnection.sendSegments', () => {
  it('a PAGES frame in segments (page views) arrives whole and bound, between whole frames, over TCP', async () => {
    const [a, b] = await pair();
    // Bind both directions as the handshake does: b draws the nonce and tells a in its HELLO_ACK.
    const nonce = b.bindFramesWithNewNonce(Command.HELLO_ACK);
    a.bindFramesAfterReceiving(Command.HELLO_ACK, () => nonce);
    await b.sendFrame(Command.HELLO_ACK);
    await a.expect(Command.HELLO_ACK, 10_000);
    const ram = new Uint8Array(new SharedArrayBuffer(8 * 4096));
    for (let i = 0; i < ram.length; i++) ram[i] = (i * 7 + (i >>> 12)) & 255;
    const builder = new PagesFrameBuilder(
      64 * 1024,
      (f, release) => void a.send(f, release),
      4096,
      (segments, length, release) => void a.sendSegments(segments, length, release),
    );
    await a.sendFrame(Command.ROUND, Buffer.alloc(12));
    for (let p = 0; p < 8; p++) {
      const page = ram.subarray(p * 4096, p * 4096 + 4096);
      if (p === 3) {
        builder.reserve(4096).set(page);
        builder.commit(p, 1, 4096);
      } else builder.commitView(p, page, pageCrc(page));
    }
    builder.finishFrame();
    await a.sendFrame(Command.GO);
    await b.expect(Command.ROUND, 10_000);
    const f = await b.expect(Command.PAGES, 10_000);
    const pages: number[] = [];
    forEachPageEntry(f.payload, 8, 4096, (page, _encoding, data) => {
      expect(Buffer.from(data)).toEqual(Buffer.from(ram.subarray(page * 4096, page * 4096 + 4096)));
      pages.push(page);
    });
    expect(pages).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    await b.expect(Command.GO, 10_000);
  });
});
