/**
 * The layout of a PAGES payload, in one place: a u32 entry count, then entries of
 *
 * | offset | size | field |
 * | --- | --- | --- |
 * | 0 | 4 | page index, u32 big-endian |
 * | 4 | 1 | encoding (enum PageEncoding) |
 * | 5 | 4 | data length L, u32 big-endian |
 * | 9 | L | data |
 *
 * The builder writes entries with {@link writePageEntryHeader}; the destination's checks and the page-sink thread
 * read them with {@link readPageEntryHeader}. Nothing else spells these offsets.
 */

/** Bytes of the entry count at the start of a PAGES payload. */
export const PAGES_COUNT_BYTES = 4;
/** Offsets of an entry header's fields, from the entry's start. */
export const PAGE_ENTRY_PAGE_OFFSET = 0;
export const PAGE_ENTRY_ENCODING_OFFSET = 4;
export const PAGE_ENTRY_LENGTH_OFFSET = 5;
/** Entry header inside a PAGES payload: page index u32, encoding u8, data length u32. */
export const PAGE_ENTRY_HEADER_BYTES = 9;

/** One entry header's fields; a caller keeps one and passes it to every read (no allocation per entry). */
export interface PageEntryHeader {
  page: number;
  encoding: number;
  length: number;
}

/** A fresh scratch header for {@link readPageEntryHeader}. */
export function pageEntryScratch(): PageEntryHeader {
  return { page: 0, encoding: 0, length: 0 };
}

function u32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

/**
 * Reads the header of the entry at `offset` into `into` and returns it. The caller has checked that the
 * header's {@link PAGE_ENTRY_HEADER_BYTES} bytes lie inside `bytes`; its fields are not checked here.
 */
export function readPageEntryHeader(
  bytes: Uint8Array,
  offset: number,
  into: PageEntryHeader,
): PageEntryHeader {
  into.page = u32(bytes, offset + PAGE_ENTRY_PAGE_OFFSET);
  into.encoding = bytes[offset + PAGE_ENTRY_ENCODING_OFFSET]!;
  into.length = u32(bytes, offset + PAGE_ENTRY_LENGTH_OFFSET);
  return into;
}

/** Writes an entry header at `offset`. */
export function writePageEntryHeader(
  bytes: Buffer,
  offset: number,
  page: number,
  encoding: number,
  length: number,
): void {
  bytes.writeUInt32BE(page, offset + PAGE_ENTRY_PAGE_OFFSET);
  bytes[offset + PAGE_ENTRY_ENCODING_OFFSET] = encoding;
  bytes.writeUInt32BE(length, offset + PAGE_ENTRY_LENGTH_OFFSET);
}
