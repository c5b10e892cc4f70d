import { crc32c } from '@node-rs/crc32';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PageCache } from '../../cache/index.js';
import { allocatePageArena } from '../../codec/index.js';
import { DirtyLog, GuestRam } from '../../guest/index.js';
import { PageLedger, pageCrc } from '../ledger.js';
import type { CompressMethod } from '../options.js';
import { decodePageInto } from '../page-decode.js';
import { FrameReader, forEachPageEntry } from '../protocol/index.js';
import { FrameOutput } from './frame-output.js';
import { type PageCounters, PageEncoder } from './page-encoder.js';

const PAGE = 4096;
const PAGES = 64;

/** An encoder over a fresh 64-page guest; frames are counted and released at once. */
function setup(compress: CompressMethod, xbzrle: boolean) {
  const ram = new GuestRam({ ramBytes: PAGES * PAGE, pageSize: PAGE, blockBytes: 16 * PAGE });
  const dirtyLog = new DirtyLog(ram);
  const ledger = new PageLedger(PAGES, PAGE);
  let frames = 0;
  const out = new FrameOutput(
    () => ({
      send: async (_frame: Buffer, release?: () => void) => {
        frames++;
        release?.();
      },
    }),
    PAGE,
    256 * 1024,
  );
  const counters: PageCounters = {
    pages: { zero: 0, raw: 0, xbzrle: 0, rle: 0, compressed: 0, skipped: 0, redirtied: 0 },
    xbzrle: { encodedBytes: 0, pageBytes: 0, overflows: 0 },
  };
  const encoder = new PageEncoder({
    ram,
    dirtyLog,
    ledger,
    compressor: undefined,
    frames: out,
    counters,
    compress,
    verify: 'ledger',
  });
  if (xbzrle) {
    // As cache-sizing.ts does: the cache's copies and the scratch copy in one arena.
    encoder.cache = new PageCache({
      bytes: 16 * PAGE,
      pageSize: PAGE,
      ways: 2,
      allocate: (bytes) => {
        const arena = allocatePageArena(bytes + PAGE);
        encoder.scratch = arena.subarray(bytes, bytes + PAGE);
        return arena.subarray(0, bytes);
      },
    });
  }
  const sent = async () => {
    await out.flush();
    return frames;
  };
  return { ram, dirtyLog, ledger, encoder, counters, sent };
}

function random(seed: number): Uint8Array {
  const page = new Uint8Array(PAGE);
  let x = seed;
  for (let i = 0; i < PAGE; i++) {
    x = (Math.imul(x, 1103515245) + 12345) & 0x7fffffff;
    page[i] = x >>> 16;
  }
  return page;
}

describe('PageEncoder: the savers, tried in order', () => {
  it('zero pages travel only when the destination may hold something else; others go raw, in the ledger', async () => {
    const { ram, encoder, counters, ledger, sent } = setup('none', false);
    ram.writePage(1, random(1));
    encoder.encode(0, true, false); // zero, fresh: nothing to send
    expect(await sent()).toBe(0);
    encoder.encode(0, false, false); // zero, not fresh: a ZERO entry
    encoder.encode(1, true, false);
    expect(await sent()).toBe(1);
    expect(counters.pages).toMatchObject({ zero: 2, raw: 1 });
    const other = new PageLedger(PAGES, PAGE);
    other.set(1, pageCrc(random(1)));
    expect(ledger.digest()).toBe(other.digest());
  });

  it('XBZRLE: a miss goes whole, an unchanged page is skipped, a small change is a delta, a rewrite overflows', async () => {
    const { ram, encoder, counters, sent } = setup('none', true);
    const page = random(7);
    ram.writePage(3, page);
    encoder.encode(3, true, true);
    expect(counters.pages.raw).toBe(1);
    encoder.encode(3, false, true);
    expect(counters.pages.skipped).toBe(1);
    page[100] ^= 0xff;
    ram.writePage(3, page);
    encoder.encode(3, false, true);
    expect(counters.pages.xbzrle).toBe(1);
    expect(counters.xbzrle.encodedBytes).toBeGreaterThan(0);
    expect(counters.xbzrle.encodedBytes).toBeLessThan(64);
    ram.writePage(3, random(8));
    encoder.encode(3, false, true);
    expect(counters.xbzrle.overflows).toBe(1);
    expect(counters.pages.raw).toBe(2);
    expect(await sent()).toBe(1);
  });

  it('RLE when smaller than the page, raw otherwise; a page dirty again is left for the next sync', async () => {
    const { ram, dirtyLog, encoder, counters } = setup('rle', false);
    const runs = new Uint8Array(PAGE).fill(7);
    ram.writePage(5, runs);
    ram.writePage(6, random(2));
    encoder.encode(5, true, false);
    encoder.encode(6, true, false);
    expect(counters.pages).toMatchObject({ rle: 1, raw: 1 });
    const bitmap = new Int32Array(dirtyLog.buffers.bitmaps[0]!);
    Atomics.or(bitmap, 0, 1 << 5);
    encoder.skipRedirtied = true;
    encoder.encode(5, false, false);
    encoder.encode(6, false, false);
    expect(counters.pages).toMatchObject({ rle: 1, raw: 2, redirtied: 1 });
  });
});

/** Frames as they would reach the socket: whole buffers, or segments whose pages may be views of RAM. */
function capture(ram: GuestRam, stable: boolean, framePayload = 16 * 1024) {
  const wire: Buffer[] = [];
  let views = 0;
  const out = new FrameOutput(
    () => ({
      send: async (frame: Buffer, release?: () => void) => {
        wire.push(Buffer.from(frame));
        release?.();
      },
      sendSegments: async (segments: Uint8Array[], length: number, release?: () => void) => {
        // Count segments that are guest RAM itself (not copies), then take the bytes as a socket would.
        views += segments.filter((x) => ram.blocks.some((b) => b.buffer === x.buffer)).length;
        wire.push(Buffer.concat(segments, length));
        release?.();
      },
    }),
    PAGE,
    framePayload, // 16 KiB: three pages a frame, several frames, some mixed
  );
  const ledger = new PageLedger(PAGES, PAGE);
  const encoder = new PageEncoder({
    ram,
    dirtyLog: new DirtyLog(ram),
    ledger,
    compressor: undefined,
    frames: out,
    counters: {
      pages: { zero: 0, raw: 0, xbzrle: 0, rle: 0, compressed: 0, skipped: 0, redirtied: 0 },
      xbzrle: { encodedBytes: 0, pageBytes: 0, overflows: 0 },
    },
    compress: 'none',
    verify: 'ledger',
  });
  encoder.pagesStable = stable;
  return { wire, ledger, encoder, out, views: () => views };
}

describe('PageEncoder: pages of a paused guest (pagesStable)', () => {
  it('raw pages go as views of RAM, not copies, and the wire bytes and the ledger are those of copying', async () => {
    const ram = new GuestRam({ ramBytes: PAGES * PAGE, pageSize: PAGE, blockBytes: 16 * PAGE });
    for (let p = 0; p < PAGES; p += 3) ram.writePage(p, random(p + 1));
    const copied = capture(ram, false);
    const viewed = capture(ram, true);
    for (const c of [copied, viewed]) {
      for (let p = 0; p < PAGES; p++) c.encoder.encode(p, p % 2 === 0, false);
      await c.out.flush();
    }
    expect(copied.views()).toBe(0);
    expect(viewed.views()).toBe(Math.ceil(PAGES / 3));
    // Byte for byte the same frames: both judge a page before it takes room in the frame.
    expect(Buffer.concat(viewed.wire).equals(Buffer.concat(copied.wire))).toBe(true);
    const entries = (wire: Buffer[]) => {
      const seen: [number, number, string][] = [];
      for (const f of new FrameReader(16 * 1024).push(Buffer.concat(wire))) {
        forEachPageEntry(f.payload, PAGES, PAGE, (page, encoding, data) =>
          seen.push([page, encoding, data.toString('hex')]),
        );
      }
      return seen;
    };
    expect(entries(viewed.wire)).toEqual(entries(copied.wire));
    expect(entries(viewed.wire)).toHaveLength(PAGES / 2 + Math.ceil(PAGES / 3) / 2);
    expect(viewed.ledger.digest()).toBe(copied.ledger.digest());
  });
});

describe('PageEncoder: the wire bytes do not depend on the copy path (property)', () => {
  /** One page's content: zero, random, or zero but for one byte (the zero check must look at every byte). */
  const pageKind = fc.oneof(
    fc.constant<{ kind: 'zero' }>({ kind: 'zero' }),
    fc.record({ kind: fc.constant<'random'>('random'), seed: fc.nat() }),
    fc.record({
      kind: fc.constant<'one'>('one'),
      at: fc.nat(PAGE - 1),
      value: fc.integer({ min: 1, max: 255 }),
    }),
  );

  it('live copies and paused views give the same frames; every entry decodes to the page and its ledger CRC', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(pageKind, { minLength: PAGES, maxLength: PAGES }),
        fc.array(fc.boolean(), { minLength: PAGES, maxLength: PAGES }),
        fc.array(fc.boolean(), { minLength: PAGES, maxLength: PAGES }),
        fc.integer({ min: 5, max: 40 }),
        async (kinds, sendIt, fresh, framePages) => {
          const ram = new GuestRam({ ramBytes: PAGES * PAGE, pageSize: PAGE, blockBytes: 16 * PAGE });
          kinds.forEach((k, p) => {
            if (k.kind === 'random') ram.writePage(p, random(k.seed + 1));
            if (k.kind === 'one') {
              const page = new Uint8Array(PAGE);
              page[k.at] = k.value;
              ram.writePage(p, page);
            }
          });
          const framePayload = framePages * (PAGE + 9) + 4;
          const copied = capture(ram, false, framePayload);
          const viewed = capture(ram, true, framePayload);
          for (const c of [copied, viewed]) {
            for (let p = 0; p < PAGES; p++) if (sendIt[p]) c.encoder.encode(p, fresh[p]!, false);
            await c.out.flush();
          }
          const wire = Buffer.concat(copied.wire);
          expect(Buffer.concat(viewed.wire).equals(wire)).toBe(true);
          expect(viewed.ledger.digest()).toBe(copied.ledger.digest());
          // Apply the frames to a fresh guest (page data at odd offsets into shared RAM) and compare.
          const dst = new GuestRam({ ramBytes: PAGES * PAGE, pageSize: PAGE, blockBytes: 16 * PAGE });
          for (const f of new FrameReader(framePayload).push(wire)) {
            forEachPageEntry(f.payload, PAGES, PAGE, (page, encoding, data) => {
              decodePageInto(page, encoding, data, dst.page(page), new Map());
              if (data.length > 0) expect(crc32c(data as Buffer)).toBe(copied.ledger.crcs[page]);
            });
          }
          for (let p = 0; p < PAGES; p++) {
            if (!sendIt[p]) continue;
            expect(Buffer.from(dst.page(p)).equals(Buffer.from(ram.page(p)))).toBe(true);
            expect(copied.ledger.crcs[p]).toBe(pageCrc(ram.page(p)));
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
