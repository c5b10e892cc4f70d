import { afterEach, describe, expect, it } from 'vitest';
import { MigrationError } from '../../errors.js';
import { FrameConnection } from '../connection.js';
import { Command, encodeFrame, PREAMBLE } from '../protocol/index.js';
import { createLinkPair } from './link-pair.js';

const open: FrameConnection[] = [];
afterEach(() => {
  for (const c of open.splice(0)) c.destroy();
});

function connections(): [FrameConnection, FrameConnection] {
  const [a, b] = createLinkPair();
  const pair: [FrameConnection, FrameConnection] = [
    new FrameConnection(a),
    new FrameConnection(b, { expectPreamble: true }),
  ];
  open.push(...pair);
  return pair;
}

describe('createLinkPair', () => {
  it('carries frames both ways, in order, through real FrameConnections', async () => {
    const [src, dst] = connections();
    src.writeRaw(PREAMBLE);
    await src.sendFrame(Command.GO);
    await src.sendFrame(Command.ROUND, Buffer.alloc(12, 1));
    expect((await dst.expect(Command.GO, 10_000)).payload.length).toBe(0);
    expect((await dst.expect(Command.ROUND, 10_000)).payload).toEqual(Buffer.alloc(12, 1));
    await dst.sendFrame(Command.RESUMED);
    expect((await src.receive(10_000)).command).toBe(Command.RESUMED);
  });

  it('backpressure: megabytes larger than the buffers arrive whole, and a reused send buffer cannot change them', async () => {
    const [src, dst] = connections();
    src.writeRaw(PREAMBLE);
    const payload = Buffer.alloc(2 << 20, 7);
    const frame = encodeFrame(Command.PAGES, payload);
    let written = false;
    const sent = src.send(frame, () => {
      written = true;
    });
    const got = dst.expect(Command.PAGES, 10_000);
    await sent;
    const f = await got;
    expect(written).toBe(true);
    frame.fill(0); // the sender reuses its buffer once written: what was read is a copy
    expect(f.payload.equals(payload)).toBe(true);
  });

  it("one end's close is the other's CONNECTION_LOST, after what was sent before it", async () => {
    expect.assertions(3);
    const [src, dst] = connections();
    src.writeRaw(PREAMBLE);
    await src.sendFrame(Command.GO);
    src.socket.end();
    expect((await dst.receive(10_000)).command).toBe(Command.GO);
    const err = await dst.receive(10_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as MigrationError).code).toBe('CONNECTION_LOST');
  });

  it("destroying one end fails the other's waiting receive", async () => {
    const [src, dst] = connections();
    const waiting = dst.receive(10_000).catch((e: MigrationError) => e.code);
    src.destroy();
    expect(await waiting).toBe('CONNECTION_LOST');
  });

  it('a write after the peer went away is lost, never an exception', async () => {
    const [src, dst] = connections();
    dst.destroy();
    await new Promise((r) => setImmediate(r));
    expect(src.closed).toBe(true);
    await expect(src.sendFrame(Command.GO)).rejects.toMatchObject({ code: 'CONNECTION_LOST' });
  });
});
