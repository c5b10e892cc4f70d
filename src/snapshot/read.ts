/**
 * Restoring a snapshot: the prefix, header and page tables are read and checked first (nothing is created for a
 * file that is not a sound snapshot), then a guest is created and its pages are read straight into its RAM by
 * several positional reads at once (each page sits at a fixed offset), each page checked against its CRC. Any
 * failure destroys the half-built guest: no partial guest ever runs.
 */
import { constants, type FileHandle, open } from 'node:fs/promises';
import { MigrationError, UsageError } from '../errors.js';
import { Guest, type ResolvedGuestConfig } from '../guest/index.js';
import {
  checkPage,
  corrupt,
  decodeSnapshotHeader,
  decodeSnapshotPrefix,
  decodeTables,
  isPresent,
  type PageTables,
  PREFIX_BYTES,
  type SnapshotHeader,
  type SnapshotLayout,
  tablesBytes,
} from './format.js';

export interface RestoreOptions {
  /** Start the vCPUs once restored (default true); false leaves the guest paused at the snapshot's instant. */
  run?: boolean;
  /** Positional reads in flight at once (default 8). */
  readers?: number;
  /** Largest read, bytes (default 1 MiB). */
  readBytes?: number;
  /**
   * Called with the snapshot's config once the file's header is checked and before any guest memory is allocated:
   * the agent reserves the guest's RAM and vCPUs here (and may refuse); the returned function releases that.
   */
  admit?: (config: ResolvedGuestConfig) => () => void;
}

export interface RestoreResult {
  guest: Guest;
  header: SnapshotHeader;
  /** Pages read from the file (the others are zero pages). */
  pagesRead: number;
  /** From the call to the guest's first instruction (its vCPUs resumed), or to ready (paused), ms. */
  restoreMs: number;
}

/** Reads exactly `length` bytes at `position` (a short read means the file shrank under us). */
async function readFully(fh: FileHandle, into: Uint8Array, position: number, file: string): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await fh.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) throw corrupt(`it ends before byte ${position + into.length}`, file);
    done += bytesRead;
  }
}

export interface OpenedSnapshot {
  fh: FileHandle;
  header: SnapshotHeader;
  tables: PageTables;
}

/** Opens and checks a snapshot's prefix, header and page tables (not its pages). Symbolic links are refused. */
export async function openSnapshot(file: string): Promise<OpenedSnapshot> {
  let fh: FileHandle;
  try {
    fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new UsageError(`snapshot ${file}: no such file`);
    if (e.code === 'ELOOP') throw new UsageError(`snapshot ${file}: a symbolic link; name the file itself`);
    throw new MigrationError('INTERNAL', `snapshot ${file}: ${e.message}`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new UsageError(`snapshot ${file}: not a regular file`);
    const size = st.size;
    const prefixBytes = new Uint8Array(Math.min(PREFIX_BYTES, size));
    await readFully(fh, prefixBytes, 0, file);
    const prefix = decodeSnapshotPrefix(prefixBytes, size, file);
    const json = new Uint8Array(prefix.headerBytes);
    await readFully(fh, json, PREFIX_BYTES, file);
    const header = decodeSnapshotHeader(json, prefix, size, file);
    const tb = new Uint8Array(tablesBytes(header.layout));
    await readFully(fh, tb, header.layout.bitmapOffset, file);
    const tables = decodeTables(tb, header.layout, prefix.tablesCrc, file);
    return { fh, header, tables };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** Runs of present pages within one RAM block, at most `maxPages` long: one positional read each. */
function readRuns(
  layout: SnapshotLayout,
  tables: PageTables,
  pagesPerBlock: number,
  maxPages: number,
): [number, number][] {
  const runs: [number, number][] = [];
  let start = -1;
  for (let p = 0; p <= layout.pageCount; p++) {
    const here = p < layout.pageCount && isPresent(tables.present, p);
    const cut = start >= 0 && (!here || p - start >= maxPages || p % pagesPerBlock === 0);
    if (cut) {
      runs.push([start, p]);
      start = -1;
    }
    if (here && start < 0) start = p;
  }
  return runs;
}

/** Restores the snapshot in `file` as a new guest (paused or running, see `run`). */
export async function restoreSnapshot(file: string, opts: RestoreOptions = {}): Promise<RestoreResult> {
  const t0 = performance.now();
  const { fh, header, tables } = await openSnapshot(file);
  let release: (() => void) | undefined;
  let guest: Guest | undefined;
  try {
    const { layout } = header;
    release = opts.admit?.(header.guest.config);
    const incoming = Guest.beginIncoming(header.guest.config);
    guest = incoming.guest;
    const ram = guest.ram;
    const runs = readRuns(
      layout,
      tables,
      ram.pagesPerBlock,
      Math.max(1, Math.floor((opts.readBytes ?? 1 << 20) / layout.pageSize)),
    );
    let next = 0;
    let pagesRead = 0;
    const reader = async () => {
      while (next < runs.length) {
        const [from, to] = runs[next++]!;
        const b = Math.floor(from / ram.pagesPerBlock);
        const block = ram.blocks[b]!;
        const into = new Uint8Array(
          block.buffer,
          (from - block.firstPage) * layout.pageSize,
          (to - from) * layout.pageSize,
        );
        await readFully(fh, into, layout.ramOffset + from * layout.pageSize, file);
        for (let p = from; p < to; p++) checkPage(ram.page(p), p, tables, layout, file);
        pagesRead += to - from;
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, opts.readers ?? 8) }, reader));
    await incoming.ready;
    guest.loadState(header.guest);
    if (opts.run ?? true) guest.resume();
    const restoreMs = performance.now() - t0;
    return { guest, header, pagesRead, restoreMs };
  } catch (err) {
    await guest?.destroy();
    release?.();
    throw err;
  } finally {
    await fh.close();
  }
}
