/**
 * Recording a real process's memory into a trace.
 *
 * Every interval the recorder reads the process's writable private mappings (heap, stack, anonymous memory, a
 * library's data) and finds the pages that changed since the last snapshot:
 *  - soft-dirty: the kernel sets bit 55 of a page's pagemap entry when the page is written after a write of 4
 *    to clear_refs. Order per interval: read pagemap, clear, then read the dirty pages' contents, so a write that
 *    races the clear is either in the content read now or flagged for the next interval.
 *  - page-compare: where the kernel has no soft-dirty tracking (CONFIG_MEM_SOFT_DIRTY off: no page ever shows
 *    bit 55) or clear_refs is refused, every present page is read and compared with the copy kept from the last
 *    snapshot. The copy is needed anyway for the XOR delta, so the comparison is exact, not a hash.
 * Soft-dirty is checked on its first interval by a full comparison too; a changed page without the bit means
 * the kernel does not really track it, and the recorder falls back to page-compare (and says so in the trace).
 *
 * The flat guest page space: a virtual page gets the next free guest page the first time it holds non-zero data
 * (first snapshot: in address order). A heap or stack that grows gets new guest pages as its new pages are
 * written; a page that is dropped (MADV_DONTNEED, no longer present) keeps its guest page, now zero; a page whose
 * mapping goes away is recorded as zeroed and its guest page is freed, to be reused (lowest first) by pages that
 * appear in later intervals. So the space is as large as the most memory the process ever had at once.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { CodecError, MigrationError } from '../errors.js';
import type { TraceCompression, TraceMeta, TraceMethod } from './format.js';
import { type Mapping, PM_PRESENT, PM_SOFT_DIRTY, PM_SWAPPED, ProcessMemory } from './procfs.js';
import { packTrace, TraceFileWriter, TraceWriter } from './writer.js';

export interface RecorderOptions {
  pid: number;
  intervalMs: number;
  /** `auto` (default): soft-dirty where the kernel has it, else page-compare. */
  method?: 'auto' | TraceMethod;
  compression?: TraceCompression;
  meta: TraceMeta;
  /** Write the trace to this file as it is recorded; without it, `finish()` returns the bytes. */
  out?: string;
  /** Fail with RESOURCE_LIMIT when the process has more than this many non-zero pages (default 262144, 1 GiB). */
  maxPages?: number;
  procRoot?: string;
  pageSize?: number;
}

export interface SnapshotInfo {
  timestampMs: number;
  /** Pages in this record (the snapshot's non-zero pages, then the pages dirtied in the interval). */
  dirtyPages: number;
  /** Guest pages in use (non-zero pages the process has now). */
  pagesInUse: number;
  /** Pages whose contents were read this interval. */
  pagesRead: number;
  /** Bytes of this record in the trace. */
  recordBytes: number;
  /** Time spent taking the snapshot. */
  tookMs: number;
}

export interface RecordingSummary {
  method: TraceMethod;
  methodReason: string;
  records: number;
  pageCount: number;
  bytes: number;
  trace?: Uint8Array;
}

const RUN_PAGES = 256;
const PAGEMAP_BATCH = 1 << 16;

function isZero(b: Uint8Array, off: number, len: number): boolean {
  for (let i = off, end = off + len; i < end; i++) if (b[i] !== 0) return false;
  return true;
}

/** out = a XOR b, by 32-bit words when every view is aligned (the usual case), else by bytes. */
function xorInto(out: Uint8Array, a: Uint8Array, b: Uint8Array): void {
  const n = out.length;
  if (((out.byteOffset | a.byteOffset | b.byteOffset | n) & 3) === 0) {
    const o = new Int32Array(out.buffer, out.byteOffset, n >>> 2);
    const x = new Int32Array(a.buffer, a.byteOffset, n >>> 2);
    const y = new Int32Array(b.buffer, b.byteOffset, n >>> 2);
    for (let i = 0; i < o.length; i++) o[i] = x[i]! ^ y[i]!;
    return;
  }
  for (let i = 0; i < n; i++) out[i] = a[i]! ^ b[i]!;
}

export class Recorder {
  readonly pid: number;
  readonly pageSize: number;
  method: TraceMethod;
  methodReason: string;
  private readonly proc: ProcessMemory;
  private readonly writer: TraceWriter;
  private readonly file: TraceFileWriter | null;
  private readonly out: string | null;
  private readonly compression: TraceCompression;
  private readonly maxPages: number;
  /** virtual page number -> guest page */
  private readonly slotOf = new Map<number, number>();
  /** guest page -> virtual page number, -1 when free */
  private vpnOf: number[] = [];
  private free: number[] = [];
  private copies: Uint8Array = new Uint8Array(0);
  private snapshots = 0;
  /** soft-dirty must still prove itself against a full comparison. */
  private verifySoftDirty = false;
  private readonly scratch: Uint8Array;

  constructor(opts: RecorderOptions) {
    this.pid = opts.pid;
    this.pageSize = opts.pageSize ?? 4096;
    this.maxPages = opts.maxPages ?? 1 << 18;
    this.scratch = new Uint8Array(RUN_PAGES * this.pageSize);
    this.proc = new ProcessMemory(opts.pid, { procRoot: opts.procRoot, pageSize: this.pageSize });
    try {
      const probe = this.probe(opts.method ?? 'auto');
      this.method = probe.method;
      this.methodReason = probe.reason;
      this.verifySoftDirty = probe.method === 'soft-dirty';
      // Recorded with fast deflate (a snapshot must fit in its interval), packed with `compression` at the end.
      const init = {
        pageSize: this.pageSize,
        intervalMs: opts.intervalMs,
        method: this.method,
        compression: 'deflate' as const,
        meta: { ...opts.meta, methodReason: this.methodReason },
      };
      this.out = opts.out ?? null;
      this.compression = opts.compression ?? 'brotli';
      this.file = this.out ? new TraceFileWriter(`${this.out}.partial`, init, 'fast') : null;
      this.writer = this.file ? this.file.writer : new TraceWriter(init, undefined, 'fast');
    } catch (err) {
      this.proc.close();
      throw err;
    }
  }

  /** Soft-dirty if the kernel shows the bit at all and clear_refs accepts our write; else page-compare. */
  private probe(want: 'auto' | TraceMethod): { method: TraceMethod; reason: string } {
    if (want === 'page-compare') return { method: 'page-compare', reason: 'asked for page-compare' };
    const maps = this.proc.maps();
    if (maps === null) throw new MigrationError('PROCESS_NOT_FOUND', `process ${this.pid} has exited`, {});
    // A kernel with soft-dirty tracking marks every page of a new mapping soft-dirty until the first clear.
    let seen = false;
    for (const m of maps) {
      this.forEachPagemap(m, (_vpn, e) => {
        if ((e & PM_SOFT_DIRTY) !== 0) seen = true;
      });
      if (seen) break;
    }
    let reason = '';
    if (!seen) reason = 'no page shows the soft-dirty bit (kernel without CONFIG_MEM_SOFT_DIRTY)';
    else if (!this.proc.clearSoftDirty()) reason = 'clear_refs refused the write of 4';
    if (reason === '') return { method: 'soft-dirty', reason: 'kernel soft-dirty bits (pagemap bit 55)' };
    if (want === 'soft-dirty') {
      throw new MigrationError(
        'CAPABILITY',
        `soft-dirty tracking is not available for process ${this.pid}: ${reason}`,
      );
    }
    return { method: 'page-compare', reason };
  }

  private forEachPagemap(m: Mapping, fn: (vpn: number, high: number) => void): void {
    const first = Math.floor(m.start / this.pageSize);
    const count = Math.floor((m.end - m.start) / this.pageSize);
    for (let at = 0; at < count; at += PAGEMAP_BATCH) {
      const n = Math.min(PAGEMAP_BATCH, count - at);
      const entries = this.proc.pagemap(first + at, n);
      for (let i = 0; i < n; i++) fn(first + at + i, entries[2 * i + 1]!);
    }
  }

  get records(): number {
    return this.writer.recordCount;
  }

  /** Bytes of the trace so far. */
  get bytes(): number {
    return this.writer.bytes;
  }

  get pageCount(): number {
    return this.vpnOf.length;
  }

  /** Takes one snapshot and appends its record; null when the process has gone (nothing appended). */
  snapshot(timestampMs: number): SnapshotInfo | null {
    const t0 = performance.now();
    const ps = this.pageSize;
    const first = this.snapshots === 0;
    if (!this.proc.reopen()) return null;
    const maps = this.proc.maps();
    // An exited process that is not yet reaped (a zombie) has no mappings: it is gone, not emptied.
    if (maps === null || maps.length === 0) return null;
    const softDirty = this.method === 'soft-dirty' && !first;
    // Phase 1: which pages to read, which known pages are gone or dropped.
    const toRead: number[] = [];
    const dropped: number[] = [];
    const flagged = new Set<number>();
    const live = new Set<number>();
    for (const m of maps) {
      this.forEachPagemap(m, (vpn, e) => {
        const present = (e & (PM_PRESENT | PM_SWAPPED)) !== 0;
        const slot = this.slotOf.get(vpn);
        if (slot !== undefined) live.add(slot);
        if (!present) {
          if (slot !== undefined) dropped.push(slot);
          return;
        }
        const dirty = (e & PM_SOFT_DIRTY) !== 0;
        if (dirty) flagged.add(vpn);
        if (!softDirty || dirty || this.verifySoftDirty) toRead.push(vpn);
      });
    }
    if (this.method === 'soft-dirty') this.proc.clearSoftDirty();
    // Phase 2: read in contiguous runs, compare with the kept copies.
    const changed = new Map<number, Uint8Array>();
    let unflagged = 0;
    const scratch = this.scratch;
    for (let i = 0; i < toRead.length; ) {
      let j = i + 1;
      while (j < toRead.length && j - i < RUN_PAGES && toRead[j] === toRead[j - 1]! + 1) j++;
      const n = j - i;
      const got = this.proc.read(toRead[i]! * ps, scratch, 0, n * ps);
      for (let k = 0; k < n; k++) {
        const vpn = toRead[i + k]!;
        const off = k * ps;
        // A page that could not be read (the run was cut short) is left as it was.
        if (off + ps > got) break;
        const slot = this.slotOf.get(vpn);
        if (slot === undefined) {
          if (isZero(scratch, off, ps)) continue;
          const s = this.allocate(vpn);
          live.add(s);
          changed.set(s, scratch.slice(off, off + ps));
        } else if (
          Buffer.compare(
            scratch.subarray(off, off + ps),
            this.copies.subarray(slot * ps, (slot + 1) * ps),
          ) !== 0
        ) {
          changed.set(slot, scratch.slice(off, off + ps));
        } else continue;
        if (softDirty && !flagged.has(vpn)) unflagged++;
      }
      i = j;
    }
    const zero = new Uint8Array(ps);
    for (const slot of dropped) if (!changed.has(slot) && !this.copyIsZero(slot)) changed.set(slot, zero);
    const gone: number[] = [];
    for (let s = 0; s < this.vpnOf.length; s++) {
      if (this.vpnOf[s] === -1 || live.has(s)) continue;
      gone.push(s);
      if (!this.copyIsZero(s)) changed.set(s, zero);
    }
    // Phase 3: the record, then the copies.
    const slots = [...changed.keys()].sort((a, b) => a - b);
    const deltas = new Uint8Array(slots.length * ps);
    slots.forEach((s, k) => {
      const next = changed.get(s)!;
      const old = this.copies.subarray(s * ps, (s + 1) * ps);
      const d = deltas.subarray(k * ps, (k + 1) * ps);
      xorInto(d, old, next);
      old.set(next);
    });
    const recordBytes = this.writer.add(first ? 0 : Math.max(1, Math.round(timestampMs)), slots, deltas);
    for (const s of gone) {
      this.slotOf.delete(this.vpnOf[s]!);
      this.vpnOf[s] = -1;
      this.free.push(s);
    }
    this.free.sort((a, b) => b - a); // pop() takes the lowest
    if (this.verifySoftDirty && !first) {
      this.verifySoftDirty = false;
      if (unflagged > 0) {
        this.method = 'page-compare';
        this.methodReason = `${unflagged} pages changed without the soft-dirty bit on the first interval`;
      }
    }
    this.snapshots++;
    return {
      timestampMs: first ? 0 : timestampMs,
      dirtyPages: slots.length,
      pagesInUse: this.vpnOf.length - this.free.length,
      pagesRead: toRead.length,
      recordBytes,
      tookMs: performance.now() - t0,
    };
  }

  private copyIsZero(slot: number): boolean {
    return isZero(this.copies, slot * this.pageSize, this.pageSize);
  }

  private allocate(vpn: number): number {
    let s = this.free.pop();
    if (s === undefined) {
      s = this.vpnOf.length;
      if (s >= this.maxPages) {
        throw new MigrationError(
          'RESOURCE_LIMIT',
          `process ${this.pid} has more than ${this.maxPages} non-zero pages; raise --max-pages or record a smaller program`,
        );
      }
      this.vpnOf.push(-1);
      const need = (s + 1) * this.pageSize;
      if (need > this.copies.length) {
        const grown = new Uint8Array(Math.max(need, this.copies.length * 2, 64 * this.pageSize));
        grown.set(this.copies);
        this.copies = grown;
      }
    }
    this.vpnOf[s] = vpn;
    this.slotOf.set(vpn, s);
    return s;
  }

  /** Writes the final header (page and record counts, the method used) and closes the process's files. */
  finish(): RecordingSummary {
    this.proc.close();
    if (this.snapshots === 0) throw new CodecError('trace: no snapshot was taken');
    this.writer.setMethod(this.method, this.methodReason);
    let raw: Uint8Array;
    if (this.file && this.out) {
      this.file.close(this.pageCount);
      raw = readFileSync(`${this.out}.partial`);
    } else raw = this.writer.finish(this.pageCount).trace!;
    const trace = packTrace(raw, this.compression);
    if (this.out) {
      writeFileSync(this.out, trace);
      rmSync(`${this.out}.partial`, { force: true });
    }
    return {
      method: this.method,
      methodReason: this.methodReason,
      records: this.writer.recordCount,
      pageCount: this.pageCount,
      bytes: trace.length,
      ...(this.out ? {} : { trace }),
    };
  }

  /** Closes the process's files and drops the partial trace (after an error). */
  abort(): void {
    try {
      this.proc.close();
    } catch {
      // already closed
    }
    if (this.file && this.out) {
      try {
        this.file.close(this.pageCount);
      } catch {
        // already closed
      }
      rmSync(`${this.out}.partial`, { force: true });
    }
  }
}
