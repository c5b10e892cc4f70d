/**
 * The trace file: how a real process's memory changed, interval by interval, as page-level deltas.
 *
 * Format, version 1 (little-endian throughout):
 *
 *   header   0  magic "LMTRACE\0"                      8 bytes
 *            8  version u16 (= 1)                      a reader refuses any other
 *           10  flags u16 (= 0, reserved)
 *           12  pageSize u32                           power of two, 512..65536
 *           16  intervalMs u32                         the recording interval
 *           20  method u8                              0 soft-dirty, 1 page-compare
 *           21  compression u8                         1 deflate (raw), 2 brotli
 *           22  chunkPages u16                         pages per compressed chunk (chunk <= 1 MiB raw)
 *           24  pageCount u32                          pages of the flat guest page space
 *           28  recordCount u32
 *           32  metaLength u32                         then metaLength bytes of UTF-8 JSON (TraceMeta)
 *           36  crc32 u32                              of bytes 0..35 and the meta
 *           40  meta
 *   record   0  length u32                             bytes of the record after this field
 *            4  crc32 u32                              of those bytes
 *            8  timestampMs u32                        since the first snapshot
 *           12  n u32                                  pages in this record, n <= pageCount
 *           16  indexLength u32
 *           20  chunkLength u32 x ceil(n / chunkPages)
 *               index: compressed u32 gaps (page - previous page - 1, the first from -1): ascending pages
 *               chunks: each compressed, min(chunkPages, rest) pages x pageSize bytes of XOR deltas
 *
 * Record 0 is the full snapshot of the recorded mappings with zero pages left out (a delta against zero is the
 * content). Every later record lists the pages that changed during its interval, each as new XOR old. A reader
 * checks every length against the bytes that are really there before it allocates anything: the index inflates
 * to at most 4n bytes, a chunk to at most chunkPages x pageSize (1 MiB), and n is bounded by the chunk table the
 * record really holds; a chunk is only inflated when a page in it is read.
 */
import {
  brotliCompressSync,
  brotliDecompressSync,
  constants,
  crc32,
  deflateRawSync,
  inflateRawSync,
} from 'node:zlib';
import { z } from 'zod';
import { CodecError } from '../errors.js';

export const TRACE_MAGIC = 'LMTRACE\0';
export const TRACE_VERSION = 1;
export const HEADER_BYTES = 40;
const RECORD_FIXED = 20;
/** A chunk inflates to at most this: bounds a reader's allocation per chunk. */
export const MAX_CHUNK_BYTES = 1 << 20;
/** The flat page space is at most 2^26 pages (256 GiB of 4 KiB pages). */
export const MAX_TRACE_PAGES = 1 << 26;
const MAX_META = 1 << 20;

/** How dirtied pages were found: the kernel's soft-dirty bits, or comparing each page with its last copy. */
export type TraceMethod = 'soft-dirty' | 'page-compare';
export const TRACE_METHODS: readonly TraceMethod[] = ['soft-dirty', 'page-compare'];
export type TraceCompression = 'deflate' | 'brotli';
export const TRACE_COMPRESSIONS: readonly TraceCompression[] = ['deflate', 'brotli'];

/** Free-form facts about the recording (JSON in the header). */
export interface TraceMeta {
  /** What ran: the program's name (e.g. "sqlite3"). */
  program: string;
  /** The command line, if livemig started it, else the process's /proc/PID/cmdline. */
  command: string[];
  /** When recording started, ISO 8601. */
  startedAt?: string;
  /** `uname -r` of the recording machine. */
  kernel?: string;
  /** Anything else worth knowing (what made the load, why the method). */
  notes?: string;
  [key: string]: unknown;
}

/** TraceMeta as a file must hold it; loose: a newer recorder's extra fields are kept. */
const metaSchema = z.looseObject({
  program: z.string(),
  command: z.array(z.string()),
  startedAt: z.string().optional(),
  kernel: z.string().optional(),
  notes: z.string().optional(),
});

export interface TraceHeader {
  version: number;
  pageSize: number;
  intervalMs: number;
  method: TraceMethod;
  compression: TraceCompression;
  chunkPages: number;
  pageCount: number;
  recordCount: number;
  meta: TraceMeta;
}

/** What a writer needs up front (counts are filled in by `encodeHeader`'s caller when known). */
export type TraceHeaderInit = Omit<TraceHeader, 'version' | 'chunkPages' | 'recordCount' | 'pageCount'> & {
  chunkPages?: number;
  pageCount?: number;
  recordCount?: number;
};

function bad(message: string, offset = -1): never {
  throw new CodecError(`trace: ${message}`, offset);
}

/** `fast` while recording (a snapshot must fit in its interval), `small` when packing a finished trace. */
export type TraceEffort = 'fast' | 'small';

function compressor(c: TraceCompression, effort: TraceEffort): (b: Uint8Array) => Buffer {
  const fast = effort === 'fast';
  return c === 'deflate'
    ? (b) => deflateRawSync(b, { level: fast ? 1 : 9 })
    : (b) =>
        brotliCompressSync(b, {
          params: {
            [constants.BROTLI_PARAM_QUALITY]: fast ? 1 : 9,
            [constants.BROTLI_PARAM_SIZE_HINT]: b.length,
            // A window no larger than the input: small chunks do not pay for a 4 MiB window.
            [constants.BROTLI_PARAM_LGWIN]: Math.max(16, Math.min(22, Math.ceil(Math.log2(b.length + 1)))),
          },
        });
}

/** Inflates at most `max` bytes and demands exactly `want` (a hostile file cannot make us allocate more). */
function inflate(c: TraceCompression, data: Uint8Array, want: number, what: string, offset: number): Buffer {
  let out: Buffer;
  try {
    out =
      c === 'deflate'
        ? inflateRawSync(data, { maxOutputLength: Math.max(1, want) })
        : brotliDecompressSync(data, { maxOutputLength: Math.max(1, want) });
  } catch (err) {
    bad(`${what} does not decompress (${err instanceof Error ? err.message : String(err)})`, offset);
  }
  if (out.length !== want) bad(`${what} holds ${out.length} bytes, expected ${want}`, offset);
  return out;
}

export function defaultChunkPages(pageSize: number): number {
  return Math.max(1, Math.min(256, Math.floor(MAX_CHUNK_BYTES / pageSize)));
}

function checkPageSize(pageSize: number): void {
  if (!Number.isInteger(pageSize) || pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0)
    bad(`page size ${pageSize} is not a power of two from 512 to 65536`);
}

/**
 * The header bytes (magic .. meta). The meta JSON is padded with spaces to `metaBytes` if given, so a writer can
 * rewrite the header at the end (counts, a changed method) in the same space.
 */
export function encodeHeader(init: TraceHeaderInit, metaBytes = 0): Uint8Array {
  checkPageSize(init.pageSize);
  const chunkPages = init.chunkPages ?? defaultChunkPages(init.pageSize);
  if (!Number.isInteger(chunkPages) || chunkPages < 1 || chunkPages * init.pageSize > MAX_CHUNK_BYTES)
    bad(`chunkPages ${chunkPages} x page size must be at most ${MAX_CHUNK_BYTES} bytes`);
  const json = Buffer.from(JSON.stringify(init.meta), 'utf8');
  if (metaBytes > 0 && json.length > metaBytes)
    bad(`meta grew to ${json.length} bytes, past its ${metaBytes}`);
  const meta = Buffer.alloc(Math.max(json.length, metaBytes), 0x20);
  json.copy(meta);
  if (meta.length > MAX_META) bad(`meta is ${meta.length} bytes, at most ${MAX_META}`);
  const b = Buffer.alloc(HEADER_BYTES + meta.length);
  b.write(TRACE_MAGIC, 0, 'latin1');
  b.writeUInt16LE(TRACE_VERSION, 8);
  b.writeUInt16LE(0, 10);
  b.writeUInt32LE(init.pageSize, 12);
  b.writeUInt32LE(init.intervalMs, 16);
  b.writeUInt8(TRACE_METHODS.indexOf(init.method), 20);
  b.writeUInt8(TRACE_COMPRESSIONS.indexOf(init.compression) + 1, 21);
  b.writeUInt16LE(chunkPages, 22);
  b.writeUInt32LE(init.pageCount ?? 0, 24);
  b.writeUInt32LE(init.recordCount ?? 0, 28);
  b.writeUInt32LE(meta.length, 32);
  meta.copy(b, HEADER_BYTES);
  b.writeUInt32LE(crc32(Buffer.concat([b.subarray(0, 36), meta])), 36);
  return b;
}

/** Parses and checks the header; `fileLength` bounds what it may claim. */
export function decodeHeader(bytes: Uint8Array): { header: TraceHeader; length: number } {
  if (bytes.length < HEADER_BYTES) bad(`file is ${bytes.length} bytes, shorter than a header`, 0);
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.toString('latin1', 0, 8) !== TRACE_MAGIC) bad('not a livemig trace (bad magic)', 0);
  const version = b.readUInt16LE(8);
  if (version !== TRACE_VERSION)
    bad(`version ${version} is not supported (this reader knows ${TRACE_VERSION})`, 8);
  const pageSize = b.readUInt32LE(12);
  checkPageSize(pageSize);
  const intervalMs = b.readUInt32LE(16);
  const method = TRACE_METHODS[b.readUInt8(20)];
  if (!method) bad(`unknown method ${b.readUInt8(20)}`, 20);
  const compression = TRACE_COMPRESSIONS[b.readUInt8(21) - 1];
  if (!compression) bad(`unknown compression ${b.readUInt8(21)}`, 21);
  const chunkPages = b.readUInt16LE(22);
  if (chunkPages < 1 || chunkPages * pageSize > MAX_CHUNK_BYTES)
    bad(`chunkPages ${chunkPages} out of range`, 22);
  const pageCount = b.readUInt32LE(24);
  if (pageCount > MAX_TRACE_PAGES) bad(`page count ${pageCount} exceeds ${MAX_TRACE_PAGES}`, 24);
  const recordCount = b.readUInt32LE(28);
  const metaLength = b.readUInt32LE(32);
  if (metaLength > MAX_META || HEADER_BYTES + metaLength > b.length)
    bad(`meta of ${metaLength} bytes runs past the end of the file`, 32);
  const length = HEADER_BYTES + metaLength;
  const want = b.readUInt32LE(36);
  const got = crc32(Buffer.concat([b.subarray(0, 36), b.subarray(HEADER_BYTES, length)]));
  if (want !== got) bad('header checksum mismatch (corrupt file)', 36);
  // Every record takes at least RECORD_FIXED + 1 bytes (an index never compresses to nothing): a count the file
  // cannot hold is a lie.
  if (recordCount > (b.length - length) / (RECORD_FIXED + 1))
    bad(`${recordCount} records cannot fit in the file`, 28);
  let json: unknown;
  try {
    json = JSON.parse(b.toString('utf8', HEADER_BYTES, length));
  } catch {
    bad('meta is not JSON', HEADER_BYTES);
  }
  const parsed = metaSchema.safeParse(json);
  if (!parsed.success)
    bad('meta needs { program, command: string[] } (startedAt, kernel, notes: strings)', HEADER_BYTES);
  const meta: TraceMeta = parsed.data;
  return {
    header: { version, pageSize, intervalMs, method, compression, chunkPages, pageCount, recordCount, meta },
    length,
  };
}

/**
 * One record's bytes. `pages` ascending and distinct; `deltas` holds pages.length x pageSize bytes, the delta of
 * each page in the same order.
 */
export function encodeRecord(
  header: Pick<TraceHeader, 'pageSize' | 'compression' | 'chunkPages'>,
  timestampMs: number,
  pages: ArrayLike<number>,
  deltas: Uint8Array,
  effort: TraceEffort = 'small',
): Uint8Array {
  const { pageSize, chunkPages } = header;
  const n = pages.length;
  if (deltas.length !== n * pageSize)
    bad(`record: ${deltas.length} delta bytes for ${n} pages of ${pageSize}`);
  if (!Number.isInteger(timestampMs) || timestampMs < 0 || timestampMs > 0xffffffff)
    bad(`record: timestamp ${timestampMs} ms out of range`);
  const gaps = Buffer.alloc(n * 4);
  let prev = -1;
  for (let i = 0; i < n; i++) {
    const p = pages[i]!;
    if (!Number.isInteger(p) || p <= prev || p >= MAX_TRACE_PAGES)
      bad(`record: pages must ascend (${p} after ${prev})`);
    gaps.writeUInt32LE(p - prev - 1, i * 4);
    prev = p;
  }
  const zip = compressor(header.compression, effort);
  const index = zip(gaps);
  const chunks: Buffer[] = [];
  for (let i = 0; i < n; i += chunkPages) {
    const k = Math.min(chunkPages, n - i);
    chunks.push(zip(deltas.subarray(i * pageSize, (i + k) * pageSize)));
  }
  const bodyLength =
    RECORD_FIXED - 8 + chunks.length * 4 + index.length + chunks.reduce((s, c) => s + c.length, 0);
  const b = Buffer.alloc(8 + bodyLength);
  b.writeUInt32LE(bodyLength, 0);
  b.writeUInt32LE(timestampMs, 8);
  b.writeUInt32LE(n, 12);
  b.writeUInt32LE(index.length, 16);
  let o = RECORD_FIXED;
  for (const c of chunks) {
    b.writeUInt32LE(c.length, o);
    o += 4;
  }
  index.copy(b, o);
  o += index.length;
  for (const c of chunks) {
    c.copy(b, o);
    o += c.length;
  }
  b.writeUInt32LE(crc32(b.subarray(8)), 4);
  return b;
}

/** Where a record sits in the file and what it claims (checked against the file; nothing inflated yet). */
export interface RecordEntry {
  timestampMs: number;
  /** Pages in this record. */
  pageCount: number;
  /** Compressed bytes of the record (its share of the file). */
  bytes: number;
  /** Offsets in the file. */
  readonly indexAt: number;
  readonly indexLength: number;
  readonly chunkAt: readonly number[];
  readonly chunkLength: readonly number[];
}

/** A whole trace in memory: header, record table, and lazy access to each record's pages and deltas. */
export class TraceReader {
  readonly header: TraceHeader;
  readonly records: readonly RecordEntry[];
  readonly fileLength: number;
  private readonly bytes: Buffer;

  private constructor(bytes: Buffer, header: TraceHeader, records: RecordEntry[]) {
    this.bytes = bytes;
    this.header = header;
    this.records = records;
    this.fileLength = bytes.length;
  }

  /** Parses the header and the record table and checks every checksum; throws CodecError. */
  static open(data: Uint8Array): TraceReader {
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const { header, length } = decodeHeader(bytes);
    const records: RecordEntry[] = [];
    let at = length;
    let lastTs = -1;
    for (let r = 0; r < header.recordCount; r++) {
      if (at + RECORD_FIXED > bytes.length) bad(`record ${r} is truncated`, at);
      const bodyLength = bytes.readUInt32LE(at);
      const end = at + 8 + bodyLength;
      if (bodyLength < RECORD_FIXED - 8 || end > bytes.length)
        bad(`record ${r} runs past the end of the file`, at);
      if (crc32(bytes.subarray(at + 8, end)) !== bytes.readUInt32LE(at + 4))
        bad(`record ${r}: checksum mismatch`, at);
      const timestampMs = bytes.readUInt32LE(at + 8);
      if (timestampMs < lastTs) bad(`record ${r}: timestamp ${timestampMs} ms goes back in time`, at + 8);
      lastTs = timestampMs;
      const n = bytes.readUInt32LE(at + 12);
      const indexLength = bytes.readUInt32LE(at + 16);
      const chunks = Math.ceil(n / header.chunkPages);
      // The chunk table must really be there: this bounds n by the file's length before anything is allocated.
      if (n > header.pageCount || at + RECORD_FIXED + chunks * 4 > end)
        bad(`record ${r}: ${n} pages do not fit (page count ${header.pageCount})`, at + 12);
      if (r === 0 && timestampMs !== 0) bad('record 0 (the snapshot) must be at 0 ms', at + 8);
      let o = at + RECORD_FIXED;
      const chunkLength: number[] = [];
      for (let c = 0; c < chunks; c++, o += 4) chunkLength.push(bytes.readUInt32LE(o));
      const indexAt = o;
      if (indexAt + indexLength > end) bad(`record ${r}: index runs past the record`, at + 16);
      o += indexLength;
      const chunkAt: number[] = [];
      for (const len of chunkLength) {
        chunkAt.push(o);
        o += len;
        if (o > end) bad(`record ${r}: chunks run past the record`, at);
      }
      if (o !== end) bad(`record ${r}: ${end - o} stray bytes after the chunks`, o);
      records.push({
        timestampMs,
        pageCount: n,
        bytes: end - at,
        indexAt,
        indexLength,
        chunkAt,
        chunkLength,
      });
      at = end;
    }
    if (at !== bytes.length)
      bad(`${bytes.length - at} bytes after the last record (${header.recordCount} records)`, at);
    return new TraceReader(bytes, header, records);
  }

  /** The pages of record `r`, ascending (inflated and checked on each call). */
  pages(r: number): Uint32Array {
    const e = this.entry(r);
    const raw = inflate(
      this.header.compression,
      this.bytes.subarray(e.indexAt, e.indexAt + e.indexLength),
      e.pageCount * 4,
      `record ${r} index`,
      e.indexAt,
    );
    const out = new Uint32Array(e.pageCount);
    let p = -1;
    for (let i = 0; i < e.pageCount; i++) {
      p += raw.readUInt32LE(i * 4) + 1;
      if (p >= this.header.pageCount)
        bad(`record ${r}: page ${p} beyond the page count ${this.header.pageCount}`, e.indexAt);
      out[i] = p;
    }
    return out;
  }

  /** Chunk `c` of record `r`: the deltas of pages c x chunkPages .. (inflated on each call). */
  chunk(r: number, c: number): Buffer {
    const e = this.entry(r);
    if (!Number.isInteger(c) || c < 0 || c >= e.chunkAt.length) bad(`record ${r} has no chunk ${c}`);
    const k = Math.min(this.header.chunkPages, e.pageCount - c * this.header.chunkPages);
    const at = e.chunkAt[c]!;
    return inflate(
      this.header.compression,
      this.bytes.subarray(at, at + e.chunkLength[c]!),
      k * this.header.pageSize,
      `record ${r} chunk ${c}`,
      at,
    );
  }

  /** Calls `fn(page, delta)` for every page of record `r` in ascending order (`delta` is reused per chunk). */
  forEachPage(r: number, fn: (page: number, delta: Uint8Array) => void): void {
    const pages = this.pages(r);
    const { chunkPages, pageSize } = this.header;
    for (let c = 0; c * chunkPages < pages.length; c++) {
      const d = this.chunk(r, c);
      const k = Math.min(chunkPages, pages.length - c * chunkPages);
      for (let i = 0; i < k; i++)
        fn(pages[c * chunkPages + i]!, d.subarray(i * pageSize, (i + 1) * pageSize));
    }
  }

  private entry(r: number): RecordEntry {
    const e = this.records[r];
    if (!e) bad(`no record ${r} (the trace has ${this.records.length})`);
    return e;
  }
}

/** crc32 of a whole trace file: its identity in a guest config (a changed file is a different workload). */
export function traceChecksum(bytes: Uint8Array): number {
  return crc32(bytes);
}
