/** PAGES frames: built in place at the source, walked and verified in one pass at the destination. */
import { MigrationError } from '../../errors.js';
import { Crc32cShifter, crc32cCombine, crc32cNative, crc32cUpdate } from '../crc.js';
import { checksumError, protocolError } from './errors.js';
import {
  PAGE_ENTRY_HEADER_BYTES,
  PAGES_COUNT_BYTES,
  type PageEntryHeader,
  pageEntryScratch,
  readPageEntryHeader,
  writePageEntryHeader,
} from './page-entry.js';
import { type Frame, writeFrameHeader } from './reader.js';
import { Command, FRAME_HEADER_BYTES, FRAME_TRAILER_BYTES, PageEncoding } from './wire.js';

/**
 * Where a sealed frame goes. `flush` gets a frame whose bytes are all in one buffer. `flushSegments`, when given, gets
 * a frame some of whose page data are views of guest RAM (entries added by {@link PagesFrameBuilder.commitView}):
 * the segments, in order, are the frame, and the last one ends with the trailer.
 */
export type FrameFlush = (frame: Buffer, release: () => void) => void;
export type FrameSegmentsFlush = (segments: Uint8Array[], length: number, release: () => void) => void;

/**
 * Builds PAGES frames in place, without intermediate copies: the caller asks for room for one page entry, writes
 * the page's data straight into the frame buffer, and commits. When the frame is full it is sealed and handed to
 * `flush`. Where the page cannot change until the socket has taken it (the guest is paused), `commitView` puts a raw
 * page in the frame as a view of guest RAM, not a copy: the frame then leaves as segments (one writev).
 */
export class PagesFrameBuilder {
  private frame: Buffer;
  private offset = FRAME_HEADER_BYTES + PAGES_COUNT_BYTES;
  private count = 0;
  /** CRC32C of the committed entries (everything after the count), kept as they are committed. */
  private entriesCrc = 0;
  /** Combines a whole page's CRC into `entriesCrc` with four table lookups. */
  private readonly shifter: Crc32cShifter | undefined;
  /** Frame buffers the socket has finished with, reused so that a stream of frames does not churn the GC. */
  private readonly pool: Buffer[] = [];
  /** The frame so far when it holds views: buffer pieces and page views in wire order (empty: no views). */
  private segments: Uint8Array[] = [];
  /** Where the buffer piece not yet in `segments` starts. */
  private segmentStart = 0;
  /** Bytes of the frame in views (not in `frame`). */
  private external = 0;

  constructor(
    private readonly maxPayload: number,
    private readonly flush: FrameFlush,
    pageSize?: number,
    private readonly flushSegments?: FrameSegmentsFlush,
  ) {
    this.shifter = pageSize === undefined ? undefined : new Crc32cShifter(pageSize);
    this.frame = this.take();
  }

  private take(): Buffer {
    return this.pool.pop() ?? Buffer.allocUnsafe(FRAME_HEADER_BYTES + this.maxPayload + FRAME_TRAILER_BYTES);
  }

  get entries(): number {
    return this.count;
  }

  /** True when the builder can send page views (its owner takes segmented frames). */
  get takesViews(): boolean {
    return this.flushSegments !== undefined && this.shifter !== undefined;
  }

  /** Takes back a frame buffer that was handed on without its release (it went to another thread and came back). */
  recycle(full: Buffer): void {
    const size = FRAME_HEADER_BYTES + this.maxPayload + FRAME_TRAILER_BYTES;
    if (full.length === size && this.pool.length < 16) this.pool.push(full);
  }

  /** Makes room for an entry of `needed` bytes (header included), sealing the frame first if it would not fit. */
  private room(needed: number): void {
    if (needed + 4 > this.maxPayload)
      throw new RangeError(`page entry of ${needed} bytes exceeds the frame limit`);
    if (this.offset + this.external + needed > FRAME_HEADER_BYTES + this.maxPayload) this.finishFrame();
  }

  /** Returns a view of `maxData` writable bytes for the next entry's data, flushing first if it would not fit. */
  reserve(maxData: number): Buffer {
    this.room(PAGE_ENTRY_HEADER_BYTES + maxData);
    const dataStart = this.offset + PAGE_ENTRY_HEADER_BYTES;
    return this.frame.subarray(dataStart, dataStart + maxData);
  }

  /**
   * Commits the entry whose data (of `length` bytes) was written into the last reserved view. `dataCrc`, when the
   * caller already has the CRC32C of exactly those bytes (the ledger's page CRC of a raw page), spares the frame
   * trailer a second pass over them.
   */
  commit(page: number, encoding: PageEncoding, length: number, dataCrc?: number): void {
    const f = this.frame;
    const at = this.offset;
    writePageEntryHeader(f, at, page, encoding, length);
    let crc = crc32cUpdate(this.entriesCrc, f, at, at + PAGE_ENTRY_HEADER_BYTES);
    if (length > 0) {
      const dataAt = at + PAGE_ENTRY_HEADER_BYTES;
      if (dataCrc === undefined) crc = crc32cNative(f.subarray(dataAt, dataAt + length), crc);
      else if (length === this.shifter?.length) crc = this.shifter.combine(crc, dataCrc);
      else crc = crc32cCombine(crc, dataCrc, length);
    }
    this.entriesCrc = crc;
    this.offset = at + PAGE_ENTRY_HEADER_BYTES + length;
    this.count++;
  }

  /**
   * Adds a RAW entry whose data is `page` itself (a whole page, of CRC32C `crc`), not a copy. Only for a page that
   * cannot change until the socket has taken the frame: the trailer covers these bytes as they are now. Needs
   * {@link takesViews}.
   */
  commitView(p: number, page: Uint8Array, crc: number): void {
    const shifter = this.shifter;
    if (this.flushSegments === undefined || shifter === undefined || page.length !== shifter.length) {
      throw new RangeError('this frame builder does not take page views');
    }
    this.room(PAGE_ENTRY_HEADER_BYTES + page.length);
    const f = this.frame;
    const at = this.offset;
    writePageEntryHeader(f, at, p, PageEncoding.RAW, page.length);
    const end = at + PAGE_ENTRY_HEADER_BYTES;
    this.entriesCrc = shifter.combine(crc32cUpdate(this.entriesCrc, f, at, end), crc);
    this.segments.push(f.subarray(this.segmentStart, end), page);
    this.segmentStart = end;
    this.offset = end;
    this.external += page.length;
    this.count++;
  }

  /** Seals and flushes the current frame if it holds any entry. */
  finishFrame(): void {
    if (this.count === 0) return;
    const payloadLength = this.offset + this.external - FRAME_HEADER_BYTES;
    writeFrameHeader(this.frame, Command.PAGES, payloadLength);
    this.frame.writeUInt32BE(this.count, FRAME_HEADER_BYTES);
    // crc(header ‖ count ‖ entries), from the entries' running CRC: no pass over the page data here.
    const head = crc32cUpdate(0, this.frame, 0, FRAME_HEADER_BYTES + PAGES_COUNT_BYTES);
    const entriesLength = payloadLength - PAGES_COUNT_BYTES;
    this.frame.writeUInt32BE(crc32cCombine(head, this.entriesCrc, entriesLength), this.offset);
    const full = this.frame;
    const tail = full.subarray(this.segmentStart, this.offset + FRAME_TRAILER_BYTES);
    const segments = this.segments;
    // The socket holds the frame until it is written; the next frame takes another buffer.
    this.frame = this.take();
    this.offset = FRAME_HEADER_BYTES + PAGES_COUNT_BYTES;
    this.count = 0;
    this.entriesCrc = 0;
    this.segments = [];
    this.segmentStart = 0;
    this.external = 0;
    let released = false;
    const release = () => {
      if (!released && this.pool.length < 16) this.pool.push(full);
      released = true;
    };
    if (segments.length === 0) {
      this.flush(tail, release);
      return;
    }
    segments.push(tail);
    this.flushSegments!(segments, FRAME_HEADER_BYTES + payloadLength + FRAME_TRAILER_BYTES, release);
  }
}

export interface PageEntry {
  page: number;
  encoding: PageEncoding;
  data: Buffer;
}

/**
 * Walks the entries of a PAGES payload, checking every bound before the caller touches RAM: page index within the
 * guest, known encoding, data length legal for the encoding (zero: 0; raw: page size; others: 1..page size + 64).
 */
export function forEachPageEntry(
  payload: Buffer,
  pageCount: number,
  pageSize: number,
  visit: (page: number, encoding: PageEncoding, data: Buffer) => void,
): number {
  if (payload.length < PAGES_COUNT_BYTES) throw protocolError('PAGES payload truncated');
  const count = payload.readUInt32BE(0);
  let offset = PAGES_COUNT_BYTES;
  const e = pageEntryScratch();
  for (let i = 0; i < count; i++) {
    const { page, encoding, length } = checkPageEntry(payload, offset, i, count, pageCount, pageSize, e);
    offset += PAGE_ENTRY_HEADER_BYTES;
    visit(page, encoding as PageEncoding, payload.subarray(offset, offset + length));
    offset += length;
  }
  if (offset !== payload.length) throw protocolError('PAGES: trailing bytes after the last entry');
  return count;
}

/**
 * Checks every bound of the entry at `offset` (header and data inside the payload, page within the guest, known
 * encoding, data length legal for it: zero 0, raw the page size, others 1..page size + 64), reading its header
 * into `into`, which it returns. The one place these rules live, for both ways of walking a PAGES
 * payload (the page-sink thread applies only entries that passed here).
 */
function checkPageEntry(
  payload: Buffer,
  offset: number,
  i: number,
  count: number,
  pageCount: number,
  pageSize: number,
  into: PageEntryHeader,
): PageEntryHeader {
  if (offset + PAGE_ENTRY_HEADER_BYTES > payload.length) {
    throw protocolError(`PAGES: entry ${i} of ${count} truncated`);
  }
  const { page, encoding, length } = readPageEntryHeader(payload, offset, into);
  if (page >= pageCount) throw protocolError(`PAGES: page ${page} beyond the guest's ${pageCount} pages`);
  if (encoding > PageEncoding.LZ4) throw protocolError(`PAGES: unknown page encoding ${encoding}`, { page });
  const ok =
    encoding === PageEncoding.ZERO
      ? length === 0
      : encoding === PageEncoding.RAW
        ? length === pageSize
        : length >= 1 && length <= pageSize + 64;
  if (!ok) {
    throw protocolError(
      `PAGES: ${PageEncoding[encoding]} entry for page ${page} has illegal length ${length}`,
    );
  }
  if (offset + PAGE_ENTRY_HEADER_BYTES + length > payload.length) {
    throw protocolError(`PAGES: entry ${i} data truncated`, { page });
  }
  return into;
}

/**
 * Checks a PAGES frame whose checksum the reader deferred, in one pass: every bound (as {@link forEachPageEntry}),
 * then the frame's CRC32C assembled from each entry's data CRC. `entryCrcs[i]` receives the CRC32C of entry i's
 * data (for a RAW entry, the page's ledger CRC); it is grown if too small and returned. Throws
 * MigrationError(PROTOCOL | CHECKSUM); nothing in the payload may be used if it throws.
 */
export function verifyPagesFrame(
  frame: Frame,
  pageCount: number,
  pageSize: number,
  shifter: Crc32cShifter,
  entryCrcs: Uint32Array,
): { count: number; entryCrcs: Uint32Array } {
  try {
    return walkPagesFrame(frame, pageCount, pageSize, shifter, entryCrcs);
  } catch (err) {
    // A corrupt frame is a checksum error first, as when the reader checks it, even if the damage broke a bound.
    const pending = frame.unverified;
    if (
      pending &&
      !(err instanceof MigrationError && (err.code === 'CHECKSUM' || err.code === 'FOREIGN_FRAME'))
    ) {
      checkDeferred(pending, crc32cNative(frame.payload, pending.headerCrc), frame.payload.length);
    }
    throw err;
  }
}

/** Checks a deferred frame's trailer against its plain CRC (of header ‖ payload), bound when the stream is bound. */
function checkDeferred(
  pending: NonNullable<Frame['unverified']>,
  plain: number,
  payloadLength: number,
): void {
  const bound = pending.binding;
  const actual = bound ? crc32cCombine(bound.seed, plain, FRAME_HEADER_BYTES + payloadLength) : plain;
  if (actual === pending.expected) return;
  const why = bound?.of.explain(
    Command.PAGES,
    pending.expected,
    plain,
    FRAME_HEADER_BYTES + payloadLength,
    bound.sequence,
  );
  throw why ?? checksumError(Command.PAGES, pending.expected, actual, bound !== undefined);
}

/** walkPagesFrame's entry header: it calls out to nothing while using it, so one is enough. */
const walkScratch = pageEntryScratch();

function walkPagesFrame(
  frame: Frame,
  pageCount: number,
  pageSize: number,
  shifter: Crc32cShifter,
  entryCrcs: Uint32Array,
): { count: number; entryCrcs: Uint32Array } {
  const payload = frame.payload;
  const pending = frame.unverified;
  if (payload.length < PAGES_COUNT_BYTES) throw protocolError('PAGES payload truncated');
  const count = payload.readUInt32BE(0);
  // Every entry takes at least its header: bound the CRC array by the bytes actually received.
  if (count > (payload.length - PAGES_COUNT_BYTES) / PAGE_ENTRY_HEADER_BYTES) {
    throw protocolError(`PAGES: ${count} entries cannot fit in ${payload.length} bytes`);
  }
  if (entryCrcs.length < count) entryCrcs = new Uint32Array(Math.max(count, entryCrcs.length * 2));
  let crc = 0;
  let offset = PAGES_COUNT_BYTES;
  const e = walkScratch;
  for (let i = 0; i < count; i++) {
    const length = checkPageEntry(payload, offset, i, count, pageCount, pageSize, e).length;
    if (pending) crc = crc32cUpdate(crc, payload, offset, offset + PAGE_ENTRY_HEADER_BYTES);
    offset += PAGE_ENTRY_HEADER_BYTES;
    if (length > 0) {
      const c = crc32cNative(payload.subarray(offset, offset + length));
      entryCrcs[i] = c;
      if (pending) crc = length === shifter.length ? shifter.combine(crc, c) : crc32cCombine(crc, c, length);
    } else {
      entryCrcs[i] = 0;
    }
    offset += length;
  }
  if (offset !== payload.length) throw protocolError('PAGES: trailing bytes after the last entry');
  if (pending) {
    // crc(header ‖ count ‖ entries)
    const head = crc32cUpdate(pending.headerCrc, payload, 0, PAGES_COUNT_BYTES);
    checkDeferred(pending, crc32cCombine(head, crc, payload.length - PAGES_COUNT_BYTES), payload.length);
  }
  return { count, entryCrcs };
}
