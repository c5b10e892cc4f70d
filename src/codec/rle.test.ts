import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CodecError } from '../errors.js';
import { decodeRle, encodeRle, encodeRleInto, rleMaxEncodedLength } from './rle.js';

/** Pages made of runs: the shapes RLE exists for, mixed with literal noise. */
const runnyPage = fc
  .array(fc.tuple(fc.integer({ min: 1, max: 600 }), fc.integer({ min: 0, max: 255 }), fc.boolean()), {
    maxLength: 30,
  })
  .map((runs) => {
    const out: number[] = [];
    let noise = 1;
    for (const [len, byte, literal] of runs) {
      for (let k = 0; k < len; k++) {
        noise = (noise * 73 + 41) & 0xff;
        out.push(literal ? noise : byte);
      }
    }
    return Uint8Array.from(out);
  });

function roundTrip(page: Uint8Array): Uint8Array {
  const back = new Uint8Array(page.length).fill(0x33);
  decodeRle(encodeRle(page), back);
  return back;
}

describe('RLE', () => {
  it('encodes a zero page in 3 bytes and a random page with a few bytes of overhead', () => {
    expect([...encodeRle(new Uint8Array(4096))]).toEqual([0x81, 0x40, 0]);
    const random = Uint8Array.from({ length: 4096 }, (_, k) => (k * 151 + (k >> 3)) & 0xff);
    expect(encodeRle(random).length).toBeLessThanOrEqual(rleMaxEncodedLength(4096));
  });

  it('emits a repeat exactly for runs of 4 or more equal bytes, literals for the rest', () => {
    // literal 1 2 2 2 | repeat 4 x 3 | literal 4
    expect([...encodeRle(Uint8Array.of(1, 2, 2, 2, 3, 3, 3, 3, 4))]).toEqual([8, 1, 2, 2, 2, 9, 3, 2, 4]);
    // repeat 5 x 7 | literal 1 | repeat 4 x 7
    expect([...encodeRle(Uint8Array.of(7, 7, 7, 7, 7, 1, 7, 7, 7, 7))]).toEqual([11, 7, 2, 1, 9, 7]);
  });

  it('round-trips pages of runs and random pages', () => {
    fc.assert(
      fc.property(runnyPage, (page) => {
        expect(roundTrip(page)).toEqual(page);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), (page) => {
        expect(roundTrip(page)).toEqual(page);
      }),
    );
  });

  it('round-trips runs longer than one 3-byte header can state', () => {
    const page = new Uint8Array((1 << 20) + 10).fill(9);
    page.fill(1, 0, 3);
    expect(roundTrip(page)).toEqual(page);
  });

  it('encodeRleInto agrees with encodeRle, or reports -1 when maxLength is too small', () => {
    fc.assert(
      fc.property(runnyPage, fc.nat(200), (page, limit) => {
        const out = new Uint8Array(rleMaxEncodedLength(page.length)).fill(0xee);
        const len = encodeRleInto(page, out, limit);
        const whole = encodeRle(page);
        if (whole.length <= limit) expect(out.subarray(0, len)).toEqual(whole);
        else expect(len).toBe(-1);
        expect(out.subarray(limit).every((b) => b === 0xee)).toBe(true);
      }),
    );
  });

  it.each([
    ['an empty stream for a non-empty page', []],
    ['a 0-length run', [0x00]],
    ['a repeat without its byte', [0x09]],
    ['a literal cut short', [0x08, 1, 2]],
    ['a 4-byte header', [0x81, 0x80, 0x80, 0x01, 0]],
    ['a run past the page', [0x81, 0x01, 7]],
    ['a stream that stops short of the page', [0x09, 7]],
  ])('rejects %s with CodecError', (_name, bytes) => {
    expect(() => decodeRle(Uint8Array.from(bytes), new Uint8Array(16))).toThrow(CodecError);
  });

  it('random streams give CodecError or success, never a write outside the page', () => {
    expect.assertions(3 * 2000);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.integer({ min: 0, max: 64 }), (stream, size) => {
        const outer = new Uint8Array(size + 16).fill(0x5a);
        const page = outer.subarray(8, 8 + size);
        let err: unknown;
        try {
          decodeRle(stream, page);
        } catch (e) {
          err = e;
        }
        expect(err === undefined || err instanceof CodecError, String(err)).toBe(true);
        expect(outer.subarray(0, 8).every((b) => b === 0x5a)).toBe(true);
        expect(outer.subarray(8 + size).every((b) => b === 0x5a)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});
