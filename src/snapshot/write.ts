/**
 * Writing a snapshot of a guest while it runs (QEMU's background-snapshot): the guest is paused for an instant to
 * take its vCPU state and turn write protection on (guest/write-protect.ts), then runs again while the pages are
 * written in order, each from RAM if the guest has not touched it yet or from the copy a vCPU made before touching
 * it. The file is the guest at that instant. It is written under a temporary name and linked into place only when
 * complete and on disk, so a failed snapshot leaves nothing under FILE and never changes the guest.
 */

import { constants, type FileHandle, link, open, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { MigrationError, UsageError } from '../errors.js';
import { type Guest, type GuestState, WriteProtect } from '../guest/index.js';
import { encodeHeader, encodePrefix, PREFIX_BYTES } from './format.js';

export interface SnapshotOptions {
  /** Measure the guest's step rate for this long before the snapshot starts (the slowdown's baseline), ms. */
  baselineMs?: number;
  /** Pages copied per batch (one positional write per run of non-zero pages in it). */
  batchPages?: number;
  /** Pre-write copies the vCPUs may hold at once (the copy pool, committed up front; default 4096 pages). */
  copySlots?: number;
}

/** What a snapshot took and cost (printed by `livemig guest snapshot`, returned by the agent). */
export interface SnapshotResult {
  file: string;
  /** Logical size of the file (zero pages are holes in it). */
  fileBytes: number;
  /** Bytes the file occupies on disk (st_blocks), when the file system says. */
  diskBytes: number;
  pages: number;
  zeroPages: number;
  /** Pages the guest touched before the writer reached them: saved from the vCPUs' pre-write copies. */
  copiedPages: number;
  /** The guest's vCPU steps at the snapshot's instant (the oracle's target for the restored guest). */
  steps: number[];
  /** Whether the guest ran while its pages were written (false: it was paused throughout). */
  live: boolean;
  /** Time the guest was paused to take the instant (vCPU state, protection on), ms. */
  pauseMs: number;
  /** From the request to the file in place, ms. */
  snapshotMs: number;
  /** Guest steps per second (all vCPUs) before the snapshot (over `baselineMs`) and while it was written; null
   *  when not measured (a paused guest, no baseline). */
  stepsPerSecBefore: number | null;
  stepsPerSecDuring: number | null;
  /** 1 - during / before (0 = not slowed at all), null when not measured. */
  slowdown: number | null;
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Maps a file-system failure to a typed error (ENOSPC is DISK_FULL, as for a migration). */
function fsError(err: unknown, doing: string): MigrationError | UsageError {
  if (err instanceof MigrationError || err instanceof UsageError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOSPC') return new MigrationError('DISK_FULL', `${doing}: no space left on the device`);
  if (e?.code === 'EEXIST')
    return new MigrationError('BAD_ARGUMENT', `${doing}: the file exists; choose another name or remove it`);
  return new MigrationError('INTERNAL', `${doing}: ${e?.message ?? String(err)}`);
}

/** Writes a snapshot of `guest` (running or paused; left as it was) to `file`, which must not exist yet. */
export async function writeSnapshot(
  guest: Guest,
  file: string,
  opts: SnapshotOptions = {},
): Promise<SnapshotResult> {
  const t0 = performance.now();
  const exists = await stat(file).then(
    () => true,
    () => false,
  );
  if (exists) throw fsError({ code: 'EEXIST' }, `snapshot to ${file}`);
  // The copy pool is committed first, and the guest given a moment after that (a 16 MiB memset right before the
  // pause made the pause itself 20-70 ms instead of 1-2 at load 35): the pause is then only the pause.
  const prepared = new WriteProtect(guest.ram, opts.copySlots);
  await sleep(10);
  const live = guest.running;
  let before = Number.NaN;
  if (live && (opts.baselineMs ?? 0) > 0) {
    const s0 = sum(guest.steps());
    const b0 = performance.now();
    await sleep(opts.baselineMs!);
    before = ((sum(guest.steps()) - s0) * 1000) / (performance.now() - b0);
  }
  const temp = join(
    dirname(file),
    `.${basename(file)}.partial-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
  );
  let fh: FileHandle;
  try {
    fh = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (err) {
    throw fsError(err, `snapshot to ${file}`);
  }
  let protecting = false;
  try {
    // The instant: vCPUs parked, their state taken, every page protected, then the guest runs on.
    const p0 = performance.now();
    await guest.pause();
    let state: GuestState;
    let wp: WriteProtect;
    try {
      state = guest.state();
      encodeHeader(state, ''); // refuses what cannot be stored before anything is protected
      wp = guest.startWriteProtect(prepared);
      protecting = true;
    } finally {
      if (live) guest.resume();
    }
    const pauseMs = performance.now() - p0;
    const w0 = performance.now();
    const steps0 = sum(state.vcpus.map((v) => v.step));

    const { json, layout } = encodeHeader(state, new Date().toISOString());
    const { pageSize, pageCount, ramOffset } = layout;
    await fh.truncate(layout.fileBytes); // sparse: zero pages stay holes
    const present = new Uint8Array(layout.bitmapBytes);
    const tables = Buffer.alloc(layout.bitmapBytes + pageCount * 4);
    const batch = Math.max(1, opts.batchPages ?? 256);
    const buf = Buffer.alloc(batch * pageSize);
    const zero = Buffer.alloc(pageSize);
    let zeroPages = 0;
    let copiedPages = 0;
    /** Records page `p` (its start-instant bytes in `slot`); false for a zero page (a hole: nothing to write). */
    const record = (p: number, slot: Buffer): boolean => {
      if (slot.equals(zero)) {
        zeroPages++;
        return false;
      }
      present[p >>> 3]! |= 1 << (p & 7);
      tables.writeUInt32LE(crc32c(slot), layout.bitmapBytes + p * 4);
      return true;
    };
    /** Saves the pages the vCPUs copied since last time, first: it frees their slots for the next copies. */
    const saveCopies = async () => {
      for (let copied = wp.takeCopied(); copied.length > 0; ) {
        const writes: Promise<unknown>[] = [];
        const n = Math.min(batch, copied.length);
        for (let i = 0; i < n; i++) {
          const p = copied[i]!;
          const slot = buf.subarray(i * pageSize, (i + 1) * pageSize);
          if (wp.save(p, slot) !== 'copy') continue; // saved in order already
          copiedPages++;
          if (record(p, slot)) writes.push(fh.write(buf, i * pageSize, pageSize, ramOffset + p * pageSize));
        }
        await Promise.all(writes);
        copied = copied.subarray(n);
      }
    };
    for (let first = 0; first < pageCount; first += batch) {
      await saveCopies();
      const n = Math.min(batch, pageCount - first);
      let runStart = -1;
      const flush = async (end: number) => {
        if (runStart < 0) return;
        const from = (runStart - first) * pageSize;
        await fh.write(buf, from, (end - runStart) * pageSize, ramOffset + runStart * pageSize);
        runStart = -1;
      };
      for (let i = 0; i < n; i++) {
        const p = first + i;
        const slot = buf.subarray(i * pageSize, (i + 1) * pageSize);
        const from = wp.save(p, slot);
        if (from === 'copy') copiedPages++;
        if (from === 'done' || !record(p, slot)) {
          await flush(p);
          continue;
        }
        if (runStart < 0) runStart = p;
      }
      await flush(first + n);
    }
    // Every page is saved: the guest is free again.
    guest.stopWriteProtect();
    protecting = false;
    const stepsDuring = sum(guest.steps()) - steps0;
    const writeMs = performance.now() - w0;
    tables.set(present, 0);
    await fh.write(tables, 0, tables.length, layout.bitmapOffset);
    await fh.write(json, 0, json.length, PREFIX_BYTES);
    await fh.datasync();
    // The prefix last: until it is on disk the file is not a snapshot.
    await fh.write(encodePrefix(json.length, crc32c(json), crc32c(tables)), 0, PREFIX_BYTES, 0);
    await fh.datasync();
    await fh.close();
    await link(temp, file); // never replaces a file that appeared meanwhile
    await unlink(temp);
    const st = await stat(file);
    const during = live ? (stepsDuring * 1000) / writeMs : null;
    return {
      file,
      fileBytes: st.size,
      diskBytes: st.blocks * 512,
      pages: pageCount,
      zeroPages,
      copiedPages,
      steps: state.vcpus.map((v) => v.step),
      live,
      pauseMs,
      snapshotMs: performance.now() - t0,
      stepsPerSecBefore: Number.isFinite(before) ? before : null,
      stepsPerSecDuring: during,
      slowdown: during !== null && Number.isFinite(before) && before > 0 ? 1 - during / before : null,
    };
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw fsError(err, `snapshot to ${file}`);
  } finally {
    if (protecting) guest.stopWriteProtect();
  }
}
