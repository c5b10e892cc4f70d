import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CodecError } from '../errors.js';
import { COMPRESSOR_NAMES, compressor } from './compressors.js';

describe.each(COMPRESSOR_NAMES.map((name) => [name]))('%s', (name) => {
  const c = compressor(name);

  it('round-trips random and compressible pages', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), fc.nat(4096), (noise, zeros) => {
        const page = new Uint8Array(noise.length + zeros);
        page.set(noise);
        expect(new Uint8Array(c.decompress(c.compress(page), page.length))).toEqual(page);
      }),
      { numRuns: 100 },
    );
  });

  it('compresses a zero page well', () => {
    expect(c.compress(new Uint8Array(4096)).length).toBeLessThan(64);
  });

  it('refuses output larger than maxOutput (decompression bomb)', () => {
    const bomb = c.compress(new Uint8Array(1 << 20));
    expect(() => c.decompress(bomb, 4096)).toThrow(CodecError);
    expect(c.decompress(bomb, 1 << 20).length).toBe(1 << 20);
  });

  it('malformed input gives CodecError, never another exception', () => {
    expect.assertions(500);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (data) => {
        try {
          expect(c.decompress(data, 4096).length).toBeLessThanOrEqual(4096);
        } catch (err) {
          expect(err).toBeInstanceOf(CodecError);
        }
      }),
      { numRuns: 500 },
    );
  });
});

it('an unknown compressor name is a CodecError', () => {
  expect(() => compressor('brotli' as never)).toThrow(CodecError);
});
