import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { copiesByteWise, copyPageInto } from './page-copy.js';

describe('copyPageInto: a page from a frame (any offset) into RAM', () => {
  it('goes through the bounce buffer only where a direct copy would be byte-wise: shared and misaligned', () => {
    const shared = new Uint8Array(new SharedArrayBuffer(8192));
    const frame = new Uint8Array(16384);
    expect(copiesByteWise(frame.subarray(21, 21 + 4096), shared.subarray(0, 4096))).toBe(true);
    expect(copiesByteWise(frame.subarray(16, 16 + 4096), shared.subarray(0, 4096))).toBe(false);
    expect(copiesByteWise(frame.subarray(21, 21 + 4096), frame.subarray(8192, 8192 + 4096))).toBe(false);
    expect(copiesByteWise(shared.subarray(4096), frame.subarray(3, 3 + 4096))).toBe(true);
  });

  it('writes exactly the bytes given, whatever the offsets, sizes and kind of memory', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 9000 }),
        fc.nat(15),
        fc.nat(15),
        fc.boolean(),
        (bytes, from, to, sharedTarget) => {
          const frame = new Uint8Array(bytes.length + from);
          frame.set(bytes, from);
          const size = bytes.length + to + 8;
          const ram = new Uint8Array(sharedTarget ? new SharedArrayBuffer(size) : new ArrayBuffer(size)).fill(
            0xa5,
          );
          copyPageInto(frame.subarray(from), ram.subarray(to, to + bytes.length));
          expect(Buffer.from(ram.subarray(to, to + bytes.length)).equals(Buffer.from(bytes))).toBe(true);
          // Nothing around the target was touched.
          expect(ram.subarray(0, to).every((b) => b === 0xa5)).toBe(true);
          expect(ram.subarray(to + bytes.length).every((b) => b === 0xa5)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });
});
