/**
 * The snapshot file (QEMU's mapped-ram layout: every page at a fixed offset, so a restore reads pages in any order,
 * in parallel, and zero pages are holes of a sparse file):
 *
 *   0        prefix, 64 bytes: magic "LIVEMIG SNAPSHOT", u32 version, u32 header length, u32 header CRC32C,
 *            u32 tables CRC32C, u32 prefix CRC32C (of bytes 0..32), zeros
 *   64       header: JSON (validated with zod): guest config, vCPU states, page size and count, the offsets below
 *   bitmap   one bit per page (LSB first): 1 = the page is in the file, 0 = a zero page (never written)
 *   crcs     one u32 CRC32C per page (0 for zero pages)
 *   ram      page p at ramOffset + p * pageSize; ramOffset is aligned to the page size (and 4 KiB)
 *
 * Every offset follows from the header's length, the page size and the page count (`snapshotLayout`); a reader
 * recomputes them and refuses a file that disagrees. The prefix is written last, after everything else is on
 * disk: a file without a valid prefix is an unfinished one.
 */
import { crc32c } from '@node-rs/crc32';
import { z } from 'zod';
import { LivemigError, UsageError } from '../errors.js';
import { type GuestState, type ResolvedGuestConfig, resolveConfig } from '../guest/index.js';

export const SNAPSHOT_MAGIC = Buffer.from('LIVEMIG SNAPSHOT', 'latin1');
export const SNAPSHOT_VERSION = 1;
export const PREFIX_BYTES = 64;
/** A header longer than this is not one livemig wrote (a config and a few vCPU states are a few KiB). */
export const MAX_SNAPSHOT_HEADER_BYTES = 1 << 20;

export interface SnapshotLayout {
  pageSize: number;
  pageCount: number;
  headerBytes: number;
  bitmapOffset: number;
  bitmapBytes: number;
  crcOffset: number;
  ramOffset: number;
  fileBytes: number;
}

export interface SnapshotHeader {
  format: 'livemig-snapshot';
  version: number;
  createdAt: string;
  guest: GuestState;
  layout: SnapshotLayout;
}

const align = (n: number, a: number) => Math.ceil(n / a) * a;

/** Where everything goes, from the header's length and the RAM's geometry. */
export function snapshotLayout(pageSize: number, pageCount: number, headerBytes: number): SnapshotLayout {
  const bitmapOffset = align(PREFIX_BYTES + headerBytes, 4096);
  const bitmapBytes = align(Math.ceil(pageCount / 8), 8);
  const crcOffset = bitmapOffset + bitmapBytes;
  const ramOffset = align(crcOffset + pageCount * 4, Math.max(pageSize, 4096));
  return {
    pageSize,
    pageCount,
    headerBytes,
    bitmapOffset,
    bitmapBytes,
    crcOffset,
    ramOffset,
    fileBytes: ramOffset + pageCount * pageSize,
  };
}

const uint = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const vcpuSchema = z.strictObject({
  index: uint,
  step: uint,
  rng: z.array(z.number().int().min(0).max(0xffffffff)).length(4),
  registers: z.record(z.string(), z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER)),
});
const headerSchema = z.strictObject({
  format: z.literal('livemig-snapshot'),
  version: z.literal(SNAPSHOT_VERSION),
  createdAt: z.string().max(64),
  guest: z.strictObject({
    config: z.looseObject({ ramBytes: uint, pageSize: uint, vcpus: uint }),
    vcpus: z.array(vcpuSchema).min(1).max(1024),
  }),
  layout: z.strictObject({
    pageSize: uint,
    pageCount: uint,
    headerBytes: uint,
    bitmapOffset: uint,
    bitmapBytes: uint,
    crcOffset: uint,
    ramOffset: uint,
    fileBytes: uint,
  }),
});

/** A snapshot file refused: damaged (SNAPSHOT_CORRUPT) or not one this version reads (SNAPSHOT_FORMAT). */
export class SnapshotError extends LivemigError<'SNAPSHOT_CORRUPT' | 'SNAPSHOT_FORMAT'> {
  override readonly name = 'SnapshotError';
}

export function corrupt(why: string, file = 'the snapshot'): SnapshotError {
  return new SnapshotError('SNAPSHOT_CORRUPT', `${file} is damaged: ${why}; nothing was restored`, { file });
}

export function notSnapshot(why: string, file = 'the file'): SnapshotError {
  return new SnapshotError(
    'SNAPSHOT_FORMAT',
    `${file} is not a livemig snapshot this version reads: ${why}`,
    { file },
  );
}

/** The 64-byte prefix. */
export function encodePrefix(headerBytes: number, headerCrc: number, tablesCrc: number): Buffer {
  const b = Buffer.alloc(PREFIX_BYTES);
  SNAPSHOT_MAGIC.copy(b, 0);
  b.writeUInt32LE(SNAPSHOT_VERSION, 16);
  b.writeUInt32LE(headerBytes, 20);
  b.writeUInt32LE(headerCrc >>> 0, 24);
  b.writeUInt32LE(tablesCrc >>> 0, 28);
  b.writeUInt32LE(crc32c(b.subarray(0, 32)), 32);
  return b;
}

export interface Prefix {
  headerBytes: number;
  headerCrc: number;
  tablesCrc: number;
}

/** Checks the prefix (the first 64 bytes); `fileBytes` = the file's size. */
export function decodeSnapshotPrefix(b: Uint8Array, fileBytes: number, file?: string): Prefix {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length < PREFIX_BYTES || !buf.subarray(0, 16).equals(SNAPSHOT_MAGIC)) {
    if (buf.length > 0 && buf.subarray(0, 16).every((x) => x === 0))
      throw corrupt('it has no prefix (the snapshot was never finished)', file);
    throw notSnapshot(`it does not start with "${SNAPSHOT_MAGIC.toString('latin1')}"`, file);
  }
  if (crc32c(buf.subarray(0, 32)) !== buf.readUInt32LE(32))
    throw corrupt('the prefix checksum is wrong', file);
  const version = buf.readUInt32LE(16);
  if (version !== SNAPSHOT_VERSION) {
    throw notSnapshot(`format version ${version}; this livemig reads version ${SNAPSHOT_VERSION}`, file);
  }
  const headerBytes = buf.readUInt32LE(20);
  if (headerBytes < 2 || headerBytes > MAX_SNAPSHOT_HEADER_BYTES || PREFIX_BYTES + headerBytes > fileBytes) {
    throw corrupt(`header length ${headerBytes} does not fit a ${fileBytes}-byte file`, file);
  }
  return { headerBytes, headerCrc: buf.readUInt32LE(24), tablesCrc: buf.readUInt32LE(28) };
}

/** Parses and checks the header JSON against its checksum, the schema, the guest config and the layout. */
export function decodeSnapshotHeader(
  json: Uint8Array,
  prefix: Prefix,
  fileBytes: number,
  file?: string,
): SnapshotHeader {
  if (json.length !== prefix.headerBytes) throw corrupt('the header is cut short', file);
  if (crc32c(Buffer.from(json.buffer, json.byteOffset, json.byteLength)) !== prefix.headerCrc)
    throw corrupt('the header checksum is wrong', file);
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(json.buffer, json.byteOffset, json.byteLength).toString('utf8'));
  } catch {
    throw notSnapshot('its header is not JSON', file);
  }
  const parsed = headerSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw notSnapshot(`header field ${issue.path.join('.') || '(root)'}: ${issue.message}`, file);
  }
  const h = parsed.data;
  let config: ResolvedGuestConfig;
  try {
    // A `trace` guest would need its recording: such snapshots are not written (write.ts), nor read.
    config = resolveConfig(h.guest.config as unknown as ResolvedGuestConfig, { trace: new Uint8Array(0) });
  } catch (err) {
    throw notSnapshot(
      `its guest config is refused: ${err instanceof Error ? err.message : String(err)}`,
      file,
    );
  }
  if (h.guest.vcpus.length !== config.vcpus || h.guest.vcpus.some((v, i) => v.index !== i)) {
    throw notSnapshot(`it holds ${h.guest.vcpus.length} vCPU states for ${config.vcpus} vCPUs`, file);
  }
  const want = snapshotLayout(config.pageSize, config.ramBytes / config.pageSize, prefix.headerBytes);
  for (const k of Object.keys(want) as (keyof SnapshotLayout)[]) {
    if (h.layout[k] !== want[k])
      throw notSnapshot(`layout.${k} is ${h.layout[k]}, expected ${want[k]}`, file);
  }
  if (fileBytes !== want.fileBytes) {
    throw corrupt(`it is ${fileBytes} bytes long, its header says ${want.fileBytes} (truncated?)`, file);
  }
  return {
    format: 'livemig-snapshot',
    version: h.version,
    createdAt: h.createdAt,
    guest: { config, vcpus: h.guest.vcpus },
    layout: want,
  };
}

/** The bitmap and CRC table, read from the file, checked against the prefix. */
export interface PageTables {
  present: Uint8Array;
  crcs: Uint32Array;
}

export function tablesBytes(layout: SnapshotLayout): number {
  return layout.bitmapBytes + layout.pageCount * 4;
}

/** Checks the tables (bitmap ‖ CRC table, as stored) and returns views of them. */
export function decodeTables(
  bytes: Uint8Array,
  layout: SnapshotLayout,
  crc: number,
  file?: string,
): PageTables {
  if (bytes.length !== tablesBytes(layout)) throw corrupt('the page tables are cut short', file);
  if (crc32c(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)) !== crc)
    throw corrupt('the page tables checksum is wrong', file);
  const present = bytes.subarray(0, layout.bitmapBytes);
  const crcs = new Uint32Array(layout.pageCount);
  const dv = new DataView(bytes.buffer, bytes.byteOffset + layout.bitmapBytes, layout.pageCount * 4);
  for (let p = 0; p < layout.pageCount; p++) crcs[p] = dv.getUint32(p * 4, true);
  return { present, crcs };
}

export function isPresent(present: Uint8Array, p: number): boolean {
  return (present[p >>> 3]! & (1 << (p & 7))) !== 0;
}

/** Checks one page read from the file against its CRC. */
export function checkPage(
  page: Uint8Array,
  p: number,
  tables: PageTables,
  layout: SnapshotLayout,
  file?: string,
): void {
  if (crc32c(page as Buffer) !== tables.crcs[p]) {
    throw corrupt(
      `page ${p} (at byte ${layout.ramOffset + p * layout.pageSize}) does not match its checksum`,
      file,
    );
  }
}

/** The header JSON a writer stores: `headerJson(state, created)` then the layout from its length. */
export function encodeHeader(state: GuestState, createdAt: string): { json: Buffer; layout: SnapshotLayout } {
  const { config } = state;
  if (config.workload.name === 'trace') {
    throw new UsageError(
      'snapshot: a `trace` guest cannot be snapshotted yet (its recording is not stored in the file); migrate it instead',
    );
  }
  const pageCount = config.ramBytes / config.pageSize;
  // The layout is part of the header and depends on its length: a fixed point, reached in a step or two.
  let headerBytes = 0;
  for (;;) {
    const layout = snapshotLayout(config.pageSize, pageCount, headerBytes);
    const json = Buffer.from(
      JSON.stringify({
        format: 'livemig-snapshot',
        version: SNAPSHOT_VERSION,
        createdAt,
        guest: state,
        layout,
      }),
    );
    if (json.length === headerBytes) return { json, layout };
    headerBytes = json.length;
  }
}

/**
 * Parses a whole snapshot held in memory and checks every page (the fuzz target and the property tests; a restore
 * reads the file in parallel pieces instead, read.ts). Returns the header and the present pages' contents.
 */
export function parseSnapshot(bytes: Uint8Array): { header: SnapshotHeader; pages: Map<number, Uint8Array> } {
  const prefix = decodeSnapshotPrefix(bytes.subarray(0, PREFIX_BYTES), bytes.length);
  const header = decodeSnapshotHeader(
    bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + prefix.headerBytes),
    prefix,
    bytes.length,
  );
  const { layout } = header;
  const tables = decodeTables(
    bytes.subarray(layout.bitmapOffset, layout.bitmapOffset + tablesBytes(layout)),
    layout,
    prefix.tablesCrc,
  );
  const pages = new Map<number, Uint8Array>();
  for (let p = 0; p < layout.pageCount; p++) {
    if (!isPresent(tables.present, p)) continue;
    const at = layout.ramOffset + p * layout.pageSize;
    const page = bytes.subarray(at, at + layout.pageSize);
    checkPage(page, p, tables, layout);
    pages.set(p, page);
  }
  return { header, pages };
}

/**
 * A whole snapshot built in memory from a guest state and its pages (`page(p)`, pageSize bytes): the same bytes
 * the writer puts in a file, holes as zeros. For tests and the fuzzer's valid inputs.
 */
export function buildSnapshot(
  state: GuestState,
  page: (p: number) => Uint8Array,
  createdAt = '1970-01-01T00:00:00.000Z',
): Buffer {
  const { json, layout } = encodeHeader(state, createdAt);
  const out = Buffer.alloc(layout.fileBytes);
  const tables = out.subarray(layout.bitmapOffset, layout.bitmapOffset + tablesBytes(layout));
  for (let p = 0; p < layout.pageCount; p++) {
    const data = page(p);
    if (data.every((b) => b === 0)) continue;
    tables[p >>> 3]! |= 1 << (p & 7);
    tables.writeUInt32LE(crc32c(data as Buffer), layout.bitmapBytes + p * 4);
    out.set(data, layout.ramOffset + p * layout.pageSize);
  }
  json.copy(out, PREFIX_BYTES);
  encodePrefix(json.length, crc32c(json), crc32c(tables)).copy(out, 0);
  return out;
}
