import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  PAGE_ENTRY_ENCODING_OFFSET,
  PAGE_ENTRY_HEADER_BYTES,
  PAGE_ENTRY_LENGTH_OFFSET,
  PAGE_ENTRY_PAGE_OFFSET,
  PAGES_COUNT_BYTES,
  pageEntryScratch,
  readPageEntryHeader,
  writePageEntryHeader,
} from './page-entry.js';
import { forEachPageEntry, PagesFrameBuilder } from './pages.js';
import { FRAME_HEADER_BYTES, FRAME_TRAILER_BYTES, PageEncoding } from './wire.js';

describe('PAGES entry layout', () => {
  it('is the documented one: page u32 BE at 0, encoding u8 at 4, length u32 BE at 5, 9 bytes', () => {
    expect([PAGE_ENTRY_PAGE_OFFSET, PAGE_ENTRY_ENCODING_OFFSET, PAGE_ENTRY_LENGTH_OFFSET]).toEqual([0, 4, 5]);
    expect(PAGE_ENTRY_HEADER_BYTES).toBe(9);
    expect(PAGES_COUNT_BYTES).toBe(4);
    const b = Buffer.alloc(11);
    writePageEntryHeader(b, 1, 0x01020304, 6, 0xfffffffe);
    expect(b.toString('hex')).toBe('000102030406fffffffe00');
  });

  it('reads back what it writes, at any offset, into one reused scratch header', () => {
    const scratch = pageEntryScratch();
    fc.assert(
      fc.property(
        fc.nat({ max: 0xffffffff }),
        fc.nat({ max: 255 }),
        fc.nat({ max: 0xffffffff }),
        fc.nat({ max: 32 }),
        (page, encoding, length, at) => {
          const b = Buffer.alloc(at + PAGE_ENTRY_HEADER_BYTES + 3, 0xa5);
          writePageEntryHeader(b, at, page, encoding, length);
          const got = readPageEntryHeader(b, at, scratch);
          expect(got).toBe(scratch);
          expect(got).toEqual({ page, encoding, length });
          expect(b.readUInt32BE(at)).toBe(page);
          expect(b.readUInt32BE(at + 5)).toBe(length);
        },
      ),
    );
  });

  it('walks the entries the builder wrote, with the same fields', () => {
    const pageSize = 512;
    const frames: Buffer[] = [];
    const b = new PagesFrameBuilder(8 * 1024, (f) => frames.push(Buffer.from(f)), pageSize);
    b.reserve(pageSize).fill(7);
    b.commit(3, PageEncoding.RAW, pageSize);
    b.reserve(0);
    b.commit(9, PageEncoding.ZERO, 0);
    b.finishFrame();
    expect(frames).toHaveLength(1);
    const payload = frames[0]!.subarray(FRAME_HEADER_BYTES, frames[0]!.length - FRAME_TRAILER_BYTES);
    const seen: [number, PageEncoding, number][] = [];
    forEachPageEntry(payload, 16, pageSize, (p, e, d) => seen.push([p, e, d.length]));
    expect(seen).toEqual([
      [3, PageEncoding.RAW, pageSize],
      [9, PageEncoding.ZERO, 0],
    ]);
    const h = readPageEntryHeader(
      payload,
      PAGES_COUNT_BYTES + PAGE_ENTRY_HEADER_BYTES + pageSize,
      pageEntryScratch(),
    );
    expect(h).toEqual({ page: 9, encoding: PageEncoding.ZERO, length: 0 });
  });
});
