import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CodecError } from '../errors.js';
import { encodeHeader, HEADER_BYTES, type TraceCompression, TraceReader } from './format.js';
import { resealTrace } from './reseal.js';
import { TraceWriter } from './writer.js';

interface Rec {
  ts: number;
  pages: number[];
  deltas: Uint8Array;
}

/** A trace as plain data: records of ascending distinct pages with arbitrary delta bytes. */
function arbTrace(pageSize: number) {
  const pageCount = 40;
  const rec = (ts: number) =>
    fc.uniqueArray(fc.integer({ min: 0, max: pageCount - 1 }), { maxLength: 12 }).chain((pages) => {
      const sorted = [...pages].sort((a, b) => a - b);
      return fc
        .uint8Array({ minLength: sorted.length * pageSize, maxLength: sorted.length * pageSize })
        .map((deltas): Rec => ({ ts, pages: sorted, deltas }));
    });
  return fc.record({
    compression: fc.constantFrom<TraceCompression>('deflate', 'brotli'),
    chunkPages: fc.integer({ min: 1, max: 5 }),
    records: fc.array(fc.integer({ min: 0, max: 500 }), { maxLength: 6 }).chain((steps) => {
      let t = 0;
      const times = [0, ...steps.map((s) => (t += s))];
      return fc.tuple(...times.map((ts) => rec(ts)));
    }),
    pageCount: fc.constant(pageCount),
  });
}

function build(
  t: { compression: TraceCompression; chunkPages: number; records: Rec[]; pageCount: number },
  ps: number,
) {
  const w = new TraceWriter({
    pageSize: ps,
    intervalMs: 100,
    method: 'page-compare',
    compression: t.compression,
    chunkPages: t.chunkPages,
    meta: { program: 'prop', command: ['a', 'b c'], notes: 'ünïcode' },
  });
  for (const r of t.records) w.add(r.ts, r.pages, r.deltas);
  return w.finish(t.pageCount).trace!;
}

const SMALL = 512;

describe('trace format', () => {
  it('round-trips any trace: header, timestamps, pages and deltas', () => {
    fc.assert(
      fc.property(arbTrace(SMALL), (t) => {
        const bytes = build(t, SMALL);
        const r = TraceReader.open(bytes);
        expect(r.header).toMatchObject({
          version: 1,
          pageSize: SMALL,
          intervalMs: 100,
          method: 'page-compare',
          compression: t.compression,
          chunkPages: t.chunkPages,
          pageCount: t.pageCount,
          recordCount: t.records.length,
          meta: { program: 'prop', command: ['a', 'b c'], notes: 'ünïcode' },
        });
        expect(r.records.map((e) => e.timestampMs)).toEqual(t.records.map((x) => x.ts));
        t.records.forEach((want, i) => {
          expect([...r.pages(i)]).toEqual(want.pages);
          const got: number[] = [];
          const deltas: Uint8Array[] = [];
          r.forEachPage(i, (p, d) => {
            got.push(p);
            deltas.push(Uint8Array.from(d));
          });
          expect(got).toEqual(want.pages);
          expect(Buffer.concat(deltas).equals(Buffer.from(want.deltas))).toBe(true);
        });
      }),
      { numRuns: 60 },
    );
  });

  it('refuses every truncation and every single-byte corruption with a CodecError', () => {
    fc.assert(
      fc.property(arbTrace(SMALL), fc.nat(), fc.integer({ min: 1, max: 255 }), (t, at, x) => {
        const bytes = build(t, SMALL);
        const cut = at % bytes.length;
        expect(() => TraceReader.open(bytes.subarray(0, cut))).toThrow(CodecError);
        const bad = Buffer.from(bytes);
        bad[cut] = bad[cut]! ^ x;
        // A flipped byte is caught by a checksum, a bound or the magic; reading every record must not pass.
        expect(() => {
          const r = TraceReader.open(bad);
          for (let i = 0; i < r.records.length; i++) r.forEachPage(i, () => {});
          if (Buffer.compare(bad, bytes) !== 0) throw new CodecError('undetected');
        }).toThrow(CodecError);
      }),
      { numRuns: 150 },
    );
  });

  it('refuses corruptions with recomputed checksums by its bounds alone (CodecError or a valid trace, nothing else)', () => {
    fc.assert(
      fc.property(arbTrace(SMALL), fc.nat(), fc.integer({ min: 1, max: 255 }), (t, at, x) => {
        const bad = Buffer.from(build(t, SMALL));
        bad[at % bad.length] = bad[at % bad.length]! ^ x;
        try {
          const r = TraceReader.open(resealTrace(bad));
          for (let i = 0; i < r.records.length; i++) r.forEachPage(i, () => {});
        } catch (err) {
          if (!(err instanceof CodecError)) throw err;
        }
      }),
      { numRuns: 120 },
    );
  });

  it('bounds what a hostile header or record may claim before allocating', () => {
    const header = Buffer.from(
      encodeHeader({
        pageSize: 4096,
        intervalMs: 10,
        method: 'soft-dirty',
        compression: 'deflate',
        pageCount: 1 << 20,
        recordCount: 1_000_000,
        meta: { program: 'x', command: [] },
      }),
    );
    expect(() => TraceReader.open(header)).toThrow(/cannot fit/);
    // A record that claims 2^20 pages but holds no chunk table for them.
    const h = Buffer.from(
      encodeHeader({
        pageSize: 4096,
        intervalMs: 10,
        method: 'soft-dirty',
        compression: 'deflate',
        pageCount: 1 << 20,
        recordCount: 1,
        meta: { program: 'x', command: [] },
      }),
    );
    const rec = Buffer.alloc(28);
    rec.writeUInt32LE(20, 0);
    rec.writeUInt32LE(0, 8);
    rec.writeUInt32LE(1 << 20, 12);
    rec.writeUInt32LE(crc32(rec.subarray(8)), 4);
    expect(() => TraceReader.open(Buffer.concat([h, rec]))).toThrow(/do not fit/);
    expect(() => TraceReader.open(Buffer.from('LMTRACE\0'))).toThrow(CodecError);
    expect(() => TraceReader.open(Buffer.alloc(HEADER_BYTES))).toThrow(/magic/);
  });

  it('refuses a decompression bomb in a chunk (inflates no more than the chunk holds)', () => {
    const w = new TraceWriter({
      pageSize: SMALL,
      intervalMs: 1,
      method: 'page-compare',
      compression: 'deflate',
      meta: { program: 'x', command: [] },
    });
    w.add(0, [0], new Uint8Array(SMALL));
    const good = w.finish(1).trace!;
    expect(() => TraceReader.open(good).chunk(0, 0)).not.toThrow();
    expect(() => TraceReader.open(good).chunk(0, 1)).toThrow(CodecError);
    expect(() => TraceReader.open(good).pages(5)).toThrow(CodecError);
  });

  it('the writer refuses unsorted pages, wrong delta lengths and time going back', () => {
    const w = new TraceWriter({
      pageSize: SMALL,
      intervalMs: 1,
      method: 'page-compare',
      compression: 'deflate',
      meta: { program: 'x', command: [] },
    });
    expect(() => w.add(5, [0], new Uint8Array(SMALL))).toThrow(/0 ms/);
    w.add(0, [1, 2], new Uint8Array(2 * SMALL));
    expect(() => w.add(10, [2, 1], new Uint8Array(2 * SMALL))).toThrow(/ascend/);
    expect(() => w.add(10, [1], new Uint8Array(3))).toThrow(/delta bytes/);
    w.add(10, [1], new Uint8Array(SMALL));
    expect(() => w.add(5, [1], new Uint8Array(SMALL))).toThrow(/back in time/);
  });
});

describe('trace meta', () => {
  it('is schema-checked: program a string, command strings, the optional fields strings', () => {
    const metas: unknown[] = [
      { program: 'x', command: [1, 2] },
      { program: 7, command: [] },
      { program: 'x' },
      { program: 'x', command: [], kernel: 6 },
      [],
    ];
    const ok = { program: 'sqlite3', command: ['sqlite3', 'db'], kernel: '6.1', extra: { n: 1 } };
    const open = (meta: unknown) => {
      const w = new TraceWriter({
        pageSize: 512,
        intervalMs: 10,
        method: 'page-compare',
        compression: 'deflate',
        chunkPages: 2,
        meta: meta as { program: string; command: string[] },
      });
      w.add(0, [0], new Uint8Array(512).fill(1));
      return TraceReader.open(w.finish(1).trace!);
    };
    expect(open(ok).header.meta).toEqual(ok);
    expect.assertions(1 + metas.length);
    for (const m of metas) expect(() => open(m), JSON.stringify(m)).toThrow(CodecError);
  });
});
