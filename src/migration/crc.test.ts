import { crc32c } from '@node-rs/crc32';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Crc32cShifter, crc32cCombine, crc32cShift, crc32cUpdate } from './crc.js';

const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));

describe('CRC32C arithmetic', () => {
  it('the JS update equals the native CRC, also continued', () => {
    fc.assert(
      fc.property(bytes(300), bytes(300), (a, b) => {
        expect(crc32cUpdate(0, a)).toBe(crc32c(a));
        expect(crc32cUpdate(crc32c(a), b)).toBe(crc32c(Buffer.concat([a, b])));
      }),
    );
  });

  it('combine(crc(A), crc(B), |B|) = crc(A ‖ B)', () => {
    fc.assert(
      fc.property(bytes(200), bytes(5000), (a, b) => {
        expect(crc32cCombine(crc32c(a), crc32c(b), b.length)).toBe(crc32c(Buffer.concat([a, b])));
      }),
    );
  });

  it('shifting is linear and shifting over nothing is the identity', () => {
    fc.assert(
      fc.property(fc.nat(), fc.nat(), fc.nat({ max: 1 << 24 }), (x, y, n) => {
        expect(crc32cShift(x >>> 0, 0)).toBe(x >>> 0);
        expect(crc32cShift((x ^ y) >>> 0, n)).toBe((crc32cShift(x, n) ^ crc32cShift(y, n)) >>> 0);
      }),
    );
  });

  it('the table shifter for a page equals the general shift', () => {
    for (const size of [1, 512, 4096, 65536]) {
      const s = new Crc32cShifter(size);
      fc.assert(
        fc.property(fc.nat(), (x) => {
          expect(s.shift(x >>> 0)).toBe(crc32cShift(x >>> 0, size));
        }),
        { numRuns: 200 },
      );
      for (let k = 0; k < 4; k++) {
        for (let b = 0; b < 256; b++)
          expect(s.shift((b << (8 * k)) >>> 0)).toBe(crc32cShift(b << (8 * k), size));
      }
      const a = Buffer.from('frame header');
      const b = Buffer.alloc(size, 7);
      expect(s.combine(crc32c(a), crc32c(b))).toBe(crc32c(Buffer.concat([a, b])));
    }
  });
});
