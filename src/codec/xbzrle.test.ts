import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CodecError } from '../errors.js';
import { modelDecodeXbzrle, modelEncodeXbzrle } from './fuzz.js';
import { decodeXbzrle, decodeXbzrleEnd, encodeXbzrle, encodeXbzrleInto, XBZRLE_ENGINES } from './xbzrle.js';
import { allocatePageArena } from './xbzrle-wasm.js';

const PAGE = 4096;

/** Copies `bytes` into a fresh buffer at byte offset `at`, so word alignment varies between the two pages. */
function placed(bytes: Uint8Array, at: number): Uint8Array {
  const buf = new Uint8Array(bytes.length + at + 8);
  buf.set(bytes, at);
  return buf.subarray(at, at + bytes.length);
}

function apply(old: Uint8Array, encoded: Uint8Array): Uint8Array {
  const page = old.slice();
  decodeXbzrle(encoded, page);
  return page;
}

/** A page and a copy of it changed in `runs` places (offset, length, xor mask), like a resent guest page. */
const realisticPair = (size: number, maxRuns: number) =>
  fc
    .tuple(
      fc.uint8Array({ minLength: size, maxLength: size }),
      fc.array(
        fc.tuple(fc.nat(size - 1), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 255 })),
        {
          maxLength: maxRuns,
        },
      ),
    )
    .map(([old, runs]) => {
      const cur = old.slice();
      for (const [at, len, mask] of runs) {
        for (let k = at; k < Math.min(size, at + len); k++) cur[k] = old[k]! ^ mask;
      }
      return { old, cur };
    });

/** Two random pages of the same size, mostly equal where `sameBias` is high. */
const randomPair = fc
  .tuple(fc.integer({ min: 0, max: 700 }), fc.integer({ min: 0, max: 100 }))
  .chain(([size, sameBias]) =>
    fc
      .tuple(
        fc.uint8Array({ minLength: size, maxLength: size }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 99 }), fc.integer({ min: 0, max: 255 })), {
          minLength: size,
          maxLength: size,
        }),
      )
      .map(([old, picks]) => ({
        old,
        cur: Uint8Array.from(old, (b, k) => (picks[k]![0] < sameBias ? b : picks[k]![1])),
      })),
  );

describe('XBZRLE encoder', () => {
  it('encodes the documented example: one changed run after an unchanged one', () => {
    const old = new Uint8Array(PAGE);
    const cur = old.slice();
    cur.set([1, 2, 3], 200);
    // zrun 200 = 0xc8 0x01, nzrun 3, then the bytes; the unchanged tail is left out.
    expect([...encodeXbzrle(old, cur, PAGE)!]).toEqual([0xc8, 0x01, 3, 1, 2, 3]);
  });

  it('encodes identical pages to nothing, but overflows below a limit of 2', () => {
    const page = new Uint8Array(PAGE).fill(7);
    expect(encodeXbzrle(page, page.slice(), 2)).toEqual(new Uint8Array(0));
    expect(encodeXbzrle(page, page.slice(), 1)).toBeUndefined();
    expect(encodeXbzrle(page, page.slice(), 0)).toBeUndefined();
  });

  it('needs 2 spare bytes before an unchanged tail, none when the change reaches the end', () => {
    const old = new Uint8Array(PAGE);
    const first = old.slice();
    first[0] = 1; // encodes to 00 01 01, then the unchanged tail needs 2 more
    expect(encodeXbzrle(old, first, 4)).toBeUndefined();
    expect(encodeXbzrle(old, first, 5)?.length).toBe(3);
    const last = old.slice();
    last[PAGE - 1] = 1; // ff 1f 01 01, nothing after it
    expect(encodeXbzrle(old, last, 4)?.length).toBe(4);
    expect(encodeXbzrle(old, last, 3)).toBeUndefined();
  });

  it('treats a negative limit as overflow and an infinite one as no limit, like QEMU', () => {
    const old = new Uint8Array(64);
    const cur = old.slice();
    cur[9] = 1;
    for (const engine of XBZRLE_ENGINES) {
      expect(encodeXbzrle(old, cur, -5, engine)).toBeUndefined();
      expect(encodeXbzrle(old, old, -5, engine)).toBeUndefined();
      expect(encodeXbzrle(new Uint8Array(0), new Uint8Array(0), -5, engine)).toEqual(new Uint8Array(0));
      expect([...encodeXbzrle(old, cur, Number.POSITIVE_INFINITY, engine)!]).toEqual([9, 1, 1]);
    }
    expect(() => encodeXbzrle(old, cur, Number.NaN)).toThrow(CodecError);
  });

  it('returns encodings the caller owns: right-sized, untouched by later calls; unchanged pages a frozen empty array', () => {
    const old = new Uint8Array(PAGE);
    const a = old.slice();
    a[10] = 1;
    const b = old.slice();
    b.fill(7, 100, 200);
    for (const engine of XBZRLE_ENGINES) {
      const first = encodeXbzrle(old, a, PAGE, engine)!;
      const firstBytes = [...first];
      const second = encodeXbzrle(old, b, PAGE, engine)!;
      expect(first.length).toBe(3);
      expect(first.buffer.byteLength).toBe(3);
      expect([...first]).toEqual(firstBytes);
      expect(apply(old, second)).toEqual(b);
      second[0] = 0xff; // the caller's to change: the next call is unaffected
      expect(encodeXbzrle(old, b, PAGE, engine)).toEqual(modelEncodeXbzrle(old, b, PAGE));
      const none = encodeXbzrle(old, old.slice(), PAGE, engine)!;
      expect(none.length).toBe(0);
      expect(Object.isFrozen(none)).toBe(true);
    }
  });

  it('encodes the largest page the format allows, every byte changed, without a limit', () => {
    const n = 16383;
    const old = new Uint8Array(n);
    const cur = new Uint8Array(n).fill(1);
    for (const engine of XBZRLE_ENGINES) {
      const got = encodeXbzrle(old, cur, Number.POSITIVE_INFINITY, engine)!;
      expect(got).toEqual(modelEncodeXbzrle(old, cur, Number.POSITIVE_INFINITY));
      expect(apply(old, got)).toEqual(cur);
    }
  });

  it('rejects pages of different sizes and pages too long for 14-bit runs', () => {
    expect(() => encodeXbzrle(new Uint8Array(8), new Uint8Array(16), 64)).toThrow(CodecError);
    expect(() => encodeXbzrle(new Uint8Array(16384), new Uint8Array(16384), 64)).toThrow(CodecError);
    expect(() => encodeXbzrleInto(new Uint8Array(64), new Uint8Array(64), new Uint8Array(4), 64)).toThrow(
      CodecError,
    );
  });

  it('gives the model encoder’s bytes for random pairs and limits, at any alignment', () => {
    fc.assert(
      fc.property(
        randomPair,
        fc.integer({ min: 0, max: 1600 }),
        fc.nat(7),
        fc.nat(7),
        ({ old, cur }, limit, a, b) => {
          const expected = modelEncodeXbzrle(old, cur, limit);
          const got = encodeXbzrle(placed(old, a), placed(cur, b), limit);
          expect(got).toEqual(expected);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('has the WebAssembly SIMD engine on Node 20 (the TypeScript one is the fallback)', () => {
    expect(XBZRLE_ENGINES).toEqual(['wasm-simd', 'typescript']);
  });

  it.each(XBZRLE_ENGINES.map((e) => [e]))('engine %s agrees with the model byte for byte', (engine) => {
    fc.assert(
      fc.property(
        fc.oneof(randomPair, realisticPair(PAGE, 30), realisticPair(1000, 8)),
        fc.integer({ min: 0, max: 2 * PAGE }),
        fc.nat(7),
        fc.nat(7),
        ({ old, cur }, limit, a, b) => {
          const got = encodeXbzrle(placed(old, a), placed(cur, b), limit, engine);
          expect(got).toEqual(modelEncodeXbzrle(old, cur, limit));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('engines agree on edge pages: empty, 1 byte, page-sized runs, limits 0..4', () => {
    const cases: [Uint8Array, Uint8Array][] = [
      [new Uint8Array(0), new Uint8Array(0)],
      [Uint8Array.of(1), Uint8Array.of(1)],
      [Uint8Array.of(1), Uint8Array.of(2)],
      [new Uint8Array(PAGE), new Uint8Array(PAGE).fill(1)],
      [new Uint8Array(17), Uint8Array.from({ length: 17 }, (_, k) => k & 1)],
    ];
    for (const [old, cur] of cases) {
      for (const limit of [0, 1, 2, 3, 4, 2 * PAGE + 2]) {
        const expected = modelEncodeXbzrle(old, cur, limit);
        for (const engine of XBZRLE_ENGINES) expect(encodeXbzrle(old, cur, limit, engine)).toEqual(expected);
      }
    }
  });

  it('reads pages in a page arena in place and gives the same bytes wherever the pages live', () => {
    const arenaA = allocatePageArena(8 * PAGE);
    const arenaB = allocatePageArena(2 * PAGE);
    expect(arenaA.every((b) => b === 0)).toBe(true);
    fc.assert(
      fc.property(
        realisticPair(PAGE, 20),
        fc.integer({ min: 0, max: PAGE }),
        fc.nat(5),
        ({ old, cur }, limit, slot) => {
          const expected = modelEncodeXbzrle(old, cur, limit);
          const prevInA = arenaA.subarray(slot * PAGE, (slot + 1) * PAGE);
          prevInA.set(old);
          const curInA = arenaA.subarray(7 * PAGE, 8 * PAGE);
          curInA.set(cur);
          const curInB = arenaB.subarray(PAGE, 2 * PAGE);
          curInB.set(cur);
          const prevInB = arenaB.subarray(0, PAGE);
          prevInB.set(old);
          // A view below the arena's pages reaches the encoder's own scratch (its output at 96 KiB): copied, never
          // read in place, or the encoding would overwrite the page it reads.
          const inScratch = new Uint8Array(arenaA.buffer, 96 * 1024, PAGE);
          for (const engine of XBZRLE_ENGINES) {
            expect(encodeXbzrle(prevInA, cur, limit, engine)).toEqual(expected);
            expect(encodeXbzrle(prevInA, curInA, limit, engine)).toEqual(expected);
            expect(encodeXbzrle(prevInA, curInB, limit, engine)).toEqual(expected);
            expect(encodeXbzrle(old, curInA, limit, engine)).toEqual(expected);
            expect(encodeXbzrle(prevInB, curInA, limit, engine)).toEqual(expected);
            inScratch.set(cur);
            expect(encodeXbzrle(prevInA, inScratch, limit, engine)).toEqual(expected);
          }
        },
      ),
      { numRuns: 150 },
    );
    // Identical pages in one arena take the no-memcmp path: empty encoding, or overflow below a 2-byte limit.
    const same = arenaA.subarray(0, PAGE);
    same.fill(7);
    arenaA.subarray(7 * PAGE, 8 * PAGE).fill(7);
    for (const limit of [0, 1, 2, PAGE]) {
      expect(encodeXbzrle(same, arenaA.subarray(7 * PAGE, 8 * PAGE), limit, 'wasm-simd')).toEqual(
        modelEncodeXbzrle(same, same, limit),
      );
    }
    expect(() => allocatePageArena(-1)).toThrow(CodecError);
  });

  it('encodes pages that live in a SharedArrayBuffer (guest RAM) like any other', () => {
    const ram = new Uint8Array(new SharedArrayBuffer(4 * PAGE + 8));
    fc.assert(
      fc.property(realisticPair(PAGE, 10), fc.nat(8), ({ old, cur }, at) => {
        const page = ram.subarray(at, at + PAGE);
        page.set(cur);
        for (const engine of XBZRLE_ENGINES) {
          expect(encodeXbzrle(old, page, PAGE, engine)).toEqual(modelEncodeXbzrle(old, cur, PAGE));
        }
      }),
      { numRuns: 100 },
    );
  });

  it('encodeXbzrleInto writes the same bytes as encodeXbzrle and nothing past maxLength', () => {
    fc.assert(
      fc.property(realisticPair(PAGE, 12), fc.integer({ min: 0, max: PAGE }), ({ old, cur }, limit) => {
        const out = new Uint8Array(PAGE + 16).fill(0xee);
        const len = encodeXbzrleInto(old, cur, out, limit);
        const whole = encodeXbzrle(old, cur, limit);
        if (whole === undefined) expect(len).toBe(-1);
        else expect(out.subarray(0, len)).toEqual(whole);
        expect(out.subarray(limit).every((b) => b === 0xee)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('XBZRLE round trip', () => {
  it('decode(encode(old, new)) = new for realistic pages (few and many changed runs)', () => {
    fc.assert(
      fc.property(realisticPair(PAGE, 40), ({ old, cur }) => {
        const encoded = encodeXbzrle(old, cur, 2 * PAGE);
        expect(encoded).toBeDefined();
        expect(apply(old, encoded!)).toEqual(cur);
      }),
      { numRuns: 300 },
    );
  });

  it('decode(encode(old, new)) = new for random pages and limits, or the encoder overflows', () => {
    fc.assert(
      fc.property(randomPair, fc.integer({ min: 0, max: 1600 }), ({ old, cur }, limit) => {
        const encoded = encodeXbzrle(old, cur, limit);
        if (encoded === undefined) return;
        expect(encoded.length).toBeLessThanOrEqual(limit);
        expect(apply(old, encoded)).toEqual(cur);
      }),
      { numRuns: 400 },
    );
  });

  it('never overflows a limit of twice the page', () => {
    fc.assert(
      fc.property(randomPair, ({ old, cur }) => {
        expect(encodeXbzrle(old, cur, 2 * old.length + 2)).toBeDefined();
      }),
    );
  });
});

describe('XBZRLE decoder on malformed input', () => {
  it('accepts a non-minimal 2-byte length and returns the end of the last run', () => {
    const page = new Uint8Array(16);
    expect(decodeXbzrleEnd(Uint8Array.of(0x85, 0x00, 0x81, 0x00, 0xcc), page)).toBe(6);
    expect(page[5]).toBe(0xcc);
  });

  it.each([
    ['a lone 0x80', [0x80]],
    ['a 3-byte length', [0x80, 0x80, 0x01, 0x01, 0xaa]],
    ['an empty changed run', [0x05, 0x00, 0xaa]],
    ['an empty second zero run', [0x00, 0x01, 0xaa, 0x00, 0x01, 0xbb]],
    ['a changed run cut short', [0x05, 0x03, 0xaa, 0xbb]],
    ['one trailing byte', [0x00, 0x01, 0xaa, 0x07]],
    ['a zero run past the page', [0x81, 0x20, 0x01, 0xaa]],
  ])('rejects %s with CodecError', (_name, bytes) => {
    expect(() => decodeXbzrle(Uint8Array.from(bytes), new Uint8Array(PAGE))).toThrow(CodecError);
  });

  it('random streams give CodecError or success as the model says, never a write outside the page', () => {
    expect.assertions(5 * 2000);
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 64 }),
        fc.integer({ min: 0, max: 300 }),
        fc.nat(7),
        (stream, size, at) => {
          const outer = new Uint8Array(size + 32).fill(0x5a);
          const page = outer.subarray(8 + at, 8 + at + size);
          const model = page.slice();
          const expected = modelDecodeXbzrle(stream, model);
          let end = -1;
          let err: unknown;
          try {
            end = decodeXbzrleEnd(stream, page);
          } catch (e) {
            err = e;
          }
          expect(err === undefined || err instanceof CodecError, String(err)).toBe(true);
          expect(end).toBe(expected);
          // Decoded: the page is the model's; refused: the model is left as it was, compared to itself.
          expect(end >= 0 ? page : model).toEqual(model);
          expect(outer.subarray(0, 8 + at).every((b) => b === 0x5a)).toBe(true);
          expect(outer.subarray(8 + at + size).every((b) => b === 0x5a)).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
