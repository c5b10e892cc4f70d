/**
 * What a destination reads before it has accepted a peer: frames of at most MAX_HELLO_PAYLOAD, raised to the
 * migration's maximum once a HELLO or a RECOVER is accepted.
 */
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { MigrationError } from '../errors.js';
import { FrameConnection } from './connection.js';
import { type PausedIncoming, runDestination } from './destination.js';
import { Command, encodeFrame, encodeRecover, MAX_HELLO_PAYLOAD, PREAMBLE } from './protocol/index.js';

const open: Socket[] = [];
afterAll(() => {
  for (const s of open) s.destroy();
});

/** A destination connection set up as the agent sets it up, and the raw peer socket. */
async function link(): Promise<{ peer: Socket; conn: FrameConnection }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const peer = connect((server.address() as { port: number }).port, '127.0.0.1');
  const [socket] = (await accepted) as [Socket];
  server.close();
  open.push(peer, socket);
  return { peer, conn: new FrameConnection(socket, { expectPreamble: true, maxPayload: MAX_HELLO_PAYLOAD }) };
}

describe('frame size before and after the handshake', () => {
  it('before HELLO a frame larger than MAX_HELLO_PAYLOAD is refused before it is buffered', async () => {
    const { peer, conn } = await link();
    const done = runDestination(conn, { onGuestResumed: () => undefined });
    const header = Buffer.alloc(8);
    header.writeUInt32BE(4 << 20, 0);
    header[4] = Command.HELLO;
    peer.write(Buffer.concat([PREAMBLE, header]));
    const m = await done;
    expect(m?.error?.code).toBe('PROTOCOL');
    expect(m?.error?.message).toMatch(/exceeds the limit/);
  });

  it('after an accepted RECOVER, frames may be as large as the migration allows (4 MiB)', async () => {
    const { peer, conn } = await link();
    const token = 'ab'.repeat(16);
    const migrationId = 'cd'.repeat(16);
    let attached: (c: FrameConnection) => void = () => undefined;
    const got = new Promise<FrameConnection>((r) => {
      attached = r;
    });
    const paused: PausedIncoming = {
      migrationId,
      guestId: 'g',
      token,
      attach: (c) => attached(c),
      abandon: () => undefined,
    };
    void runDestination(conn, { onGuestResumed: () => undefined, findPaused: () => paused });
    peer.write(PREAMBLE);
    peer.write(encodeFrame(Command.RECOVER, encodeRecover({ migrationId, token })));
    const c = await got;
    peer.write(encodeFrame(Command.PAGES, Buffer.alloc(2 << 20)));
    const f = await c.receive(30_000).catch((e: MigrationError) => e);
    expect(f).not.toBeInstanceOf(MigrationError);
    expect((f as { payload: Buffer }).payload.length).toBe(2 << 20);
  });
});
