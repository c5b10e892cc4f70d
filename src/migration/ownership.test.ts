import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MigrationError } from '../errors.js';
import { OwnershipRegistry } from './ownership.js';
import {
  decodeOwner,
  decodeReconcile,
  encodeJson,
  encodeOwner,
  encodeReconcile,
  OWNER_STATES,
} from './protocol.js';

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
          try {
            decode(Buffer.from(bytes));
          } catch (err) {
            expect(err).toBeInstanceOf(MigrationError);
          }
        }
      }),
    );
  });
});

describe('OwnershipRegistry', () => {
  const handle = (state: 'in-flight' | 'held' | 'resumed', onDiscard?: (e: MigrationError) => void) => ({
    migrationId: ID,
    guestId: 'g1',
    token: TOKEN,
    state: () => state,
    reconcile: () => undefined,
    adopt: () => undefined,
    discard: (e: MigrationError) => onDiscard?.(e),
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
