import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MIGRATION_ERROR_CODES, MigrationError } from '../../errors.js';
import { remoteErrorToMigrationError } from '../connection.js';
import {
  decodeChannelHello,
  decodeCompleteBody,
  decodeErrorBody,
  decodeMultifdRequest,
  decodeOwner,
  decodeReconcile,
  decodeRecover,
  decodeResumedBody,
  decodeVcpuState,
  encodeChannelHello,
  encodeResumedBody,
  MAX_MULTIFD_CHANNELS,
} from './bodies.js';
import { decodeChannelAck, decodeSync, encodeChannelAck, encodeSync } from './messages.js';
import { decodeJson, encodeJson } from './payload.js';
import { Command } from './wire.js';

/** What JSON.parse can produce, with the field names these bodies look for. */
const key = fc.oneof(
  fc.constantFrom(
    'code',
    'message',
    'verified',
    'faults',
    'faultLatencyMs',
    'missing',
    'config',
    'vcpus',
    'index',
    'step',
    'rng',
    'registers',
    'migrationId',
    'token',
    'action',
    'state',
    'channel',
    'channels',
    'ok',
    'times',
    'drainMs',
    'verifyMs',
    'resumeMs',
  ),
  fc.string(),
);
const json = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.double(),
    fc.integer(),
    fc.string(),
    fc.constantFrom('VERSION', 'NOPE', 'query', 'held', '0123456789abcdef0123456789abcdef'),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(key, tie('value'), { maxKeys: 5 }),
  ),
})).value;

const DECODERS: [string, (payload: Buffer) => unknown][] = [
  ['VCPU_STATE', decodeVcpuState],
  ['COMPLETE', decodeCompleteBody],
  ['ERROR', decodeErrorBody],
  ['RECOVER', decodeRecover],
  ['RECONCILE', decodeReconcile],
  ['OWNER', decodeOwner],
  ['CHANNEL', decodeChannelHello],
  ['HELLO multifd', (p) => decodeMultifdRequest(decodeJson(p, 'HELLO'))],
  ['RESUMED', decodeResumedBody],
];

/** Runs `fn`; returns 'ok', or 'PROTOCOL' for the one refusal allowed. Anything else propagates and fails the test. */
function outcome(fn: () => unknown): 'ok' | 'PROTOCOL' {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (err instanceof MigrationError && err.code === 'PROTOCOL') return 'PROTOCOL';
    throw err;
  }
}

describe('JSON bodies from the peer: a value, or MigrationError(PROTOCOL), never a crash', () => {
  for (const [what, decode] of DECODERS) {
    it(`${what}: arbitrary JSON`, () => {
      fc.assert(
        fc.property(json, (v) => {
          outcome(() => decode(encodeJson(v)));
        }),
        { numRuns: 1500 },
      );
    });
    it(`${what}: arbitrary bytes`, () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
          outcome(() => decode(Buffer.from(b)));
        }),
        { numRuns: 500 },
      );
    });
  }

  it('refuses the malformed bodies that a cast used to let through', () => {
    const bad: [(p: Buffer) => unknown, unknown][] = [
      [decodeVcpuState, null],
      [decodeVcpuState, { config: {}, vcpus: 'all of them' }],
      [
        decodeVcpuState,
        { config: {}, vcpus: [{ index: 0, step: 1, rng: [1, 2, 3, 4], registers: { a: 'x' } }] },
      ],
      [decodeVcpuState, { vcpus: [{ index: 0, step: 1, rng: [1, 2, 3, 4], registers: {} }] }],
      [decodeCompleteBody, [1, 2]],
      [decodeCompleteBody, { verified: 'yes' }],
      [decodeCompleteBody, { faults: -1 }],
      [decodeCompleteBody, { faultLatencyMs: ['fast'] }],
      [decodeErrorBody, { code: 'BAD_REQUEST', message: 'not one of ours' }],
      [decodeErrorBody, { code: 7 }],
      [decodeErrorBody, 'ERROR'],
      [decodeRecover, { migrationId: 'x', token: 'y' }],
      [decodeReconcile, { migrationId: '0'.repeat(32), token: '0'.repeat(32), action: 'steal' }],
      [decodeOwner, { state: 'mine' }],
      [
        decodeChannelHello,
        { migrationId: '0'.repeat(32), token: '0'.repeat(32), channel: MAX_MULTIFD_CHANNELS },
      ],
      [decodeChannelHello, { migrationId: '0'.repeat(32), token: '0'.repeat(32), channel: -1 }],
      [decodeChannelHello, { migrationId: '0'.repeat(32), token: '0'.repeat(32), channel: 0.5 }],
      [decodeChannelHello, { migrationId: '0'.repeat(32), token: '0'.repeat(32), channel: 0, extra: 1 }],
      [decodeChannelHello, { migrationId: '0'.repeat(32), channel: 0 }],
      [decodeResumedBody, { ok: 'yes' }],
      [decodeResumedBody, { times: [1, 2] }],
      [decodeResumedBody, { times: { verifyMs: -1 } }],
      [decodeResumedBody, { times: { resumeMs: 'quick' } }],
      [decodeResumedBody, { times: { totalMs: 1e12 } }],
      [decodeResumedBody, { priority: { nice: -40, threads: 1, scope: 'window' } }],
      [decodeResumedBody, { priority: { nice: -10, threads: 1, scope: 'always' } }],
      [decodeResumedBody, { priority: { nice: -10.5, threads: 1, scope: 'window' } }],
    ];
    expect.assertions(bad.length);
    for (const [decode, v] of bad) expect(outcome(() => decode(encodeJson(v)))).toBe('PROTOCOL');
  });

  it('names the broken field, never a key the peer chose', () => {
    expect.assertions(2);
    try {
      decodeVcpuState(
        encodeJson({
          config: {},
          vcpus: [{ index: 0, step: 1, rng: [1], registers: { '\u001b[31mevil': 'x' } }],
        }),
      );
    } catch (err) {
      expect((err as MigrationError).context.field).toBe('vcpus[0].registers[?]');
      expect((err as MigrationError).message).not.toContain('evil');
    }
  });

  it('accepts well-formed bodies, and VCPU_STATE exactly as sent (its digest covers unknown fields too)', () => {
    const state = {
      config: { workload: 'idle', ramMiB: 4 },
      vcpus: [{ index: 0, step: 5, rng: [1, 2, 3, 4], registers: { a: 1 }, future: true }],
      extra: { kept: 1 },
    };
    expect(decodeVcpuState(encodeJson(state))).toEqual(state);
    expect(
      decodeCompleteBody(encodeJson({ verified: true, faults: 2, faultLatencyMs: [0.5, 3], missing: 0 })),
    ).toEqual({ verified: true, faults: 2, faultLatencyMs: [0.5, 3], missing: 0 });
    expect(decodeCompleteBody(encodeJson({}))).toEqual({});
    for (const code of MIGRATION_ERROR_CODES) {
      expect(decodeErrorBody(encodeJson({ code, message: 'm' }))).toEqual({ code, message: 'm' });
    }
    expect(decodeErrorBody(encodeJson({ code: 'TIMEOUT' }))).toEqual({ code: 'TIMEOUT' });
    const channel = { migrationId: 'ab'.repeat(16), token: 'cd'.repeat(16), channel: 3 };
    expect(decodeChannelHello(encodeChannelHello(channel))).toEqual(channel);
    expect(decodeMultifdRequest({ channels: 4 })).toEqual({ channels: 4 });
  });
});

describe('multifd: HELLO request, SYNC, CHANNEL_ACK', () => {
  it('HELLO multifd: 2..16 channels, nothing else', () => {
    for (const v of [
      undefined,
      {},
      { channels: 1 },
      { channels: 17 },
      { channels: 2, more: 1 },
      { channels: '4' },
    ]) {
      expect(outcome(() => decodeMultifdRequest(v))).toBe('PROTOCOL');
    }
  });

  it('SYNC and CHANNEL_ACK round-trip; any other length is PROTOCOL', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), (seq) => {
        expect(decodeSync(encodeSync(seq))).toBe(seq);
      }),
    );
    const nonce = Buffer.alloc(16, 7);
    expect(decodeChannelAck(encodeChannelAck(nonce), true)).toEqual(nonce);
    expect(decodeChannelAck(encodeChannelAck(), false)).toBeUndefined();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.boolean(), (b, bound) => {
        const ok = b.length === (bound ? 16 : 0);
        expect(outcome(() => decodeChannelAck(Buffer.from(b), bound))).toBe(ok ? 'ok' : 'PROTOCOL');
        expect(outcome(() => decodeSync(Buffer.from(b)))).toBe(b.length === 4 ? 'ok' : 'PROTOCOL');
      }),
    );
  });

  it('RESUMED: the destination step times round-trip; an old peer ({ok: true}) and unknown keys are fine', () => {
    const times = {
      drainMs: 0.012,
      verifyMs: 0.031,
      loadStateMs: 0.2,
      goMs: 0,
      resumeMs: 0.004,
      totalMs: 0.26,
    };
    expect(decodeResumedBody(encodeResumedBody({ ok: true, times }))).toEqual({ ok: true, times });
    expect(decodeResumedBody(encodeJson({ ok: true }))).toEqual({ ok: true });
    // What the destination's switch-over threads ran at (switchover-priority.ts), raised or not and why.
    for (const priority of [
      { nice: -10, threads: 2, scope: 'window' as const },
      { nice: null, threads: 0, scope: 'window' as const, reason: 'EACCES' },
    ]) {
      expect(decodeResumedBody(encodeResumedBody({ ok: true, times, priority }))).toEqual({
        ok: true,
        times,
        priority,
      });
    }
    expect(decodeResumedBody(encodeJson({ ok: true, times: { verifyMs: 1, later: 2 }, more: 1 }))).toEqual({
      ok: true,
      times: { verifyMs: 1 },
    });
  });
});

describe('remoteErrorToMigrationError', () => {
  it("keeps a documented code and escapes the peer's message", () => {
    const e = remoteErrorToMigrationError({
      command: Command.ERROR,
      payload: encodeJson({ code: 'VERSION', message: 'no\u001b[2Jway' }),
    });
    expect(e.code).toBe('VERSION');
    expect(e.message).not.toContain('\u001b');
    expect(e.context.remote).toBe(true);
  });

  it('turns a malformed or unknown-code ERROR into PROTOCOL', () => {
    fc.assert(
      fc.property(json, (v) => {
        const e = remoteErrorToMigrationError({ command: Command.ERROR, payload: encodeJson(v) });
        expect(e).toBeInstanceOf(MigrationError);
        const known = (MIGRATION_ERROR_CODES as readonly unknown[]).includes(
          (v as { code?: unknown } | null)?.code,
        );
        if (!known) expect(e.code).toBe('PROTOCOL');
      }),
      { numRuns: 1000 },
    );
    const e = remoteErrorToMigrationError({
      command: Command.ERROR,
      payload: encodeJson({ code: 'BAD_REQUEST', message: 'x' }),
    });
    expect(e.code).toBe('PROTOCOL');
  });
});
