import { connect, createServer, type Socket } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MigrationError } from '../errors.js';
import { FrameConnection } from './connection.js';
import { runDestination } from './destination.js';
import { OwnershipRegistry } from './ownership.js';
import {
  Command,
  decodeOwner,
  decodeReconcile,
  encodeJson,
  encodeOwner,
  encodeReconcile,
  OWNER_STATES,
  PREAMBLE,
} from './protocol/index.js';

const ID = 'ab'.repeat(16);
const TOKEN = 'cd'.repeat(16);

describe('RECONCILE and OWNER payloads', () => {
  it('round-trip', () => {
    for (const action of ['query', 'abort'] as const) {
      expect(decodeReconcile(encodeReconcile({ migrationId: ID, token: TOKEN, action }))).toEqual({
        migrationId: ID,
        token: TOKEN,
        action,
      });
    }
    for (const s of OWNER_STATES) expect(decodeOwner(encodeOwner(s))).toBe(s);
  });

  it('refuse anything else with a typed PROTOCOL error', () => {
    const bad = [
      { migrationId: ID, token: TOKEN },
      { migrationId: ID, token: TOKEN, action: 'go' },
      { migrationId: 'x', token: TOKEN, action: 'query' },
      { migrationId: ID, token: TOKEN.toUpperCase(), action: 'query' },
      null,
    ];
    for (const b of bad) expect(() => decodeReconcile(encodeJson(b))).toThrow(MigrationError);
    expect(() => decodeOwner(encodeJson({ state: 'running' }))).toThrow(/OWNER/);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        for (const decode of [decodeReconcile, decodeOwner]) {
          let err: unknown;
          try {
            decode(Buffer.from(bytes));
          } catch (e) {
            err = e;
          }
          // One assertion whichever way it goes: nothing thrown, or a MigrationError.
          expect(err === undefined || err instanceof MigrationError, String(err)).toBe(true);
        }
      }),
    );
  });
});

describe('OwnershipRegistry', () => {
  const handle = (
    state: 'in-flight' | 'held' | 'resumed',
    onDiscard?: (e: MigrationError) => void,
    extra: { migrationId?: string; peer?: string; onSupersede?: () => void } = {},
  ) => ({
    migrationId: extra.migrationId ?? ID,
    guestId: 'g1',
    token: TOKEN,
    state: () => state,
    reconcile: () => undefined,
    adopt: () => undefined,
    discard: (e: MigrationError) => onDiscard?.(e),
    peer: extra.peer ?? '10.0.0.1',
    supersede: () => extra.onSupersede?.(),
  });

  it("a newer HELLO from the same host supersedes an in-flight copy, never a held one or another host's", () => {
    const reg = new OwnershipRegistry();
    const superseded: string[] = [];
    const id = (n: number) => n.toString(16).padStart(32, '0');
    const mark = (n: number) => () => superseded.push(id(n));
    reg.register(
      handle('in-flight', undefined, { migrationId: id(1), peer: '10.0.0.1', onSupersede: mark(1) }),
    );
    reg.register(handle('held', undefined, { migrationId: id(2), peer: '10.0.0.1', onSupersede: mark(2) }));
    reg.register(
      handle('in-flight', undefined, { migrationId: id(3), peer: '10.0.0.2', onSupersede: mark(3) }),
    );
    reg.supersedeStale('g1', '10.0.0.1');
    reg.supersedeStale('g1', '10.0.0.1'); // once only
    expect(superseded).toEqual([id(1)]);
    expect(reg.holdsGuest('g1')).toBe(true); // the held copy and the other host's stream still hold the name
    reg.settle(id(2), 'g1', 'discarded');
    reg.settle(id(3), 'g1', 'discarded');
    expect(reg.holdsGuest('g1')).toBe(false); // the superseded one, still tearing down, does not
  });

  it('answers from the live migration, then from its recorded fate; unknown ids are unknown', () => {
    const reg = new OwnershipRegistry();
    expect(reg.record(ID).state).toBe('unknown');
    reg.register(handle('held'));
    expect(reg.record(ID)).toMatchObject({ state: 'held', guestId: 'g1' });
    expect(reg.holdsGuest('g1')).toBe(true);
    reg.settle(ID, 'g1', 'resumed');
    expect(reg.handle(ID)).toBeUndefined();
    expect(reg.record(ID).state).toBe('resumed');
    expect(reg.holdsGuest('g1')).toBe(false);
  });

  it('close discards held guests and refuses new holds', () => {
    expect.assertions(3);
    const reg = new OwnershipRegistry();
    reg.register(handle('held', (e) => expect(e.code).toBe('CANCELLED')));
    const held = reg.close(new MigrationError('CANCELLED', 'shutting down'));
    expect(held).toHaveLength(1);
    expect(reg.closed).toBe(true);
  });

  it('keeps a bounded number of fates', () => {
    const reg = new OwnershipRegistry();
    for (let i = 0; i < 5000; i++) reg.settle(i.toString(16).padStart(32, '0'), 'g', 'discarded');
    expect(reg.record('0'.padStart(32, '0')).state).toBe('unknown');
    expect(reg.record((4999).toString(16).padStart(32, '0')).state).toBe('discarded');
  });
});

/** A loopback connection: the destination's end goes to runDestination, the source's end is returned. */
async function pairThrough(serve: (conn: FrameConnection) => void): Promise<FrameConnection> {
  const server = createServer((s: Socket) => serve(new FrameConnection(s, { expectPreamble: true })));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const s = connect({ host: '127.0.0.1', port });
  await new Promise<void>((r) => s.once('connect', () => r()));
  server.close();
  return new FrameConnection(s);
}

describe('RECONCILE at the destination', () => {
  it('hands the connection to the live migration only with its token; else refuses, or answers the fate', async () => {
    const reg = new OwnershipRegistry();
    const reached: string[] = [];
    reg.register({
      migrationId: ID,
      guestId: 'g1',
      token: TOKEN,
      state: () => 'held',
      reconcile: (conn, rec) => {
        reached.push(rec.action);
        conn.destroy();
      },
      adopt: () => undefined,
      discard: () => undefined,
      peer: '127.0.0.1',
      supersede: () => undefined,
    });
    const ask = async (migrationId: string, token: string) => {
      const c = await pairThrough(
        (conn) => void runDestination(conn, { onGuestResumed: () => undefined, ownership: reg }),
      );
      c.writeRaw(PREAMBLE);
      await c.sendFrame(Command.RECONCILE, encodeReconcile({ migrationId, token, action: 'query' }));
      try {
        return decodeOwner((await c.expect(Command.OWNER, 10_000)).payload);
      } catch (err) {
        return (err as MigrationError).code;
      } finally {
        c.destroy();
      }
    };
    // A wrong token never reaches the held guest (it could otherwise send GO or abort).
    expect(await ask(ID, 'ef'.repeat(16))).toBe('RECOVER_REFUSED');
    expect(reached).toEqual([]);
    expect(await ask(ID, TOKEN)).toBe('CONNECTION_LOST'); // taken over (the fake handle just closes it)
    expect(reached).toEqual(['query']);
    // Ended or never seen: answered from the record, no token needed to learn that.
    expect(await ask('01'.repeat(16), TOKEN)).toBe('unknown');
    reg.settle(ID, 'g1', 'discarded');
    expect(await ask(ID, 'ef'.repeat(16))).toBe('discarded');
  });
});
