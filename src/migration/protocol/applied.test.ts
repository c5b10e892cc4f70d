/** APPLIED (capability APPLIED_ACK): its payload, its frame, and its number and bit beside the others. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MigrationError } from '../../errors.js';
import { decodeApplied, encodeApplied } from './messages.js';
import { encodeFrame, FrameReader } from './reader.js';
import { Capability, Command } from './wire.js';

function outcome(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return err instanceof MigrationError ? err.code : err instanceof RangeError ? 'RangeError' : String(err);
  }
}

describe('APPLIED', () => {
  it('round-trips every sync point 1..2^32-1, in a frame however TCP splits it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 32 - 1 }), fc.nat(), (seq, cut) => {
        expect(decodeApplied(encodeApplied(seq))).toBe(seq);
        const frame = encodeFrame(Command.APPLIED, encodeApplied(seq));
        const at = cut % (frame.length + 1);
        const reader = new FrameReader(1 << 16);
        const got = [...reader.push(frame.subarray(0, at)), ...reader.push(frame.subarray(at))];
        expect(got).toHaveLength(1);
        expect(got[0]!.command).toBe(Command.APPLIED);
        expect(decodeApplied(got[0]!.payload)).toBe(seq);
      }),
    );
  });

  it('a payload of any other length, or sync point 0, is PROTOCOL', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 12 }), (b) => {
        const zero = b.length === 4 && b.every((x) => x === 0);
        expect(outcome(() => decodeApplied(Buffer.from(b)))).toBe(
          b.length === 4 && !zero ? 'ok' : 'PROTOCOL',
        );
      }),
    );
  });

  it('the encoder refuses what the decoder would: 0, negatives, fractions, beyond u32', () => {
    for (const v of [0, -1, 1.5, 2 ** 32, Number.NaN])
      expect(outcome(() => encodeApplied(v))).toBe('RangeError');
  });

  it('command 20 and capability bit 1 << 9 are its alone', () => {
    expect(Command.APPLIED).toBe(20);
    const values = Object.values(Command).filter((v) => typeof v === 'number');
    expect(values.filter((v) => v === 20)).toHaveLength(1);
    expect(Capability.APPLIED_ACK).toBe(1 << 9);
    const others = Object.entries(Capability).filter(([k]) => k !== 'APPLIED_ACK');
    for (const [, bit] of others) expect(bit & Capability.APPLIED_ACK).toBe(0);
  });
});
