/**
 * The dirty log: one atomic bitmap per RAM block (bit = page written since the last sync), the software
 * equivalent of KVM's dirty log, plus a saturating write counter per page for hot-page detection.
 *
 * Ordering contract with the guest (see memory.ts): a vCPU writes the data first, then sets the bit with
 * Atomics.or. The migration side syncs (fetch-and-clear with Atomics.exchange), then reads the pages it got.
 * A write racing with a sync either sets its bit before the exchange (this sync reports it; the page read that
 * follows sees the data) or after (the next sync reports it). Nothing is lost.
 */
import type { GuestRam } from './ram.js';

export interface DirtyLogBuffers {
  /** One bitmap per RAM block, ceil(pages/32) Int32 words each. */
  readonly bitmaps: readonly SharedArrayBuffer[];
  /** One Uint32 write counter per page. */
  readonly counters: SharedArrayBuffer;
}

export function allocDirtyLogBuffers(ram: GuestRam): DirtyLogBuffers {
  return {
    bitmaps: ram.blocks.map((b) => new SharedArrayBuffer(Math.ceil(b.pageCount / 32) * 4)),
    counters: new SharedArrayBuffer(ram.pageCount * 4),
  };
}

export class DirtyLog {
  readonly buffers: DirtyLogBuffers;
  private readonly words: Int32Array[];
  private readonly firstPages: number[];
  private readonly pageCounts: number[];
  private readonly counters: Uint32Array;
  /** Pages per block when every block but the last has that many (block = page / blockPages); else 0. */
  private readonly blockPages: number;
  private out = new Uint32Array(1024);
  /**
   * Pages written since the RAM was last known all zero, one bitmap per block (bit set = may hold data), kept by
   * sync() from the bits it clears; null = not kept (every page may hold data).
   */
  private written: Int32Array[] | null = null;
  private readonly ram: GuestRam;

  constructor(ram: GuestRam, buffers: DirtyLogBuffers = allocDirtyLogBuffers(ram)) {
    this.buffers = buffers;
    this.ram = ram;
    this.words = buffers.bitmaps.map((b) => new Int32Array(b));
    this.firstPages = ram.blocks.map((b) => b.firstPage);
    this.pageCounts = ram.blocks.map((b) => b.pageCount);
    this.counters = new Uint32Array(buffers.counters);
    const first = this.pageCounts[0] ?? 0;
    const uniform = ram.blocks.every(
      (b, i) => b.firstPage === i * first && (b.pageCount === first || i === ram.blocks.length - 1),
    );
    this.blockPages = uniform ? first : 0;
  }

  /** Whether page `p` was written since the last sync (a plain read: a racing write may be seen at the next call). */
  isDirty(p: number): boolean {
    const b = this.blockPages > 0 ? Math.floor(p / this.blockPages) : this.blockOf(p);
    const i = p - this.firstPages[b]!;
    return (this.words[b]![i >>> 5]! & (1 << (i & 31))) !== 0;
  }

  /** The block holding page `p`, for layouts whose blocks differ in size (binary search over first pages). */
  private blockOf(p: number): number {
    let lo = 0;
    let hi = this.firstPages.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.firstPages[mid]! <= p) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Fetch-and-clear of every block's bitmap: the pages dirtied since the last sync, ascending. */
  sync(): Uint32Array {
    let out = this.out;
    let n = 0;
    for (let b = 0; b < this.words.length; b++) {
      const words = this.words[b]!;
      const base = this.firstPages[b]!;
      for (let w = 0; w < words.length; w++) {
        // A plain read to skip clean words fast; a bit it misses is set after it and stays for the next sync.
        if (words[w] === 0) continue;
        let v = Atomics.exchange(words, w, 0);
        if (this.written !== null) {
          const record = this.written[b]!;
          record[w] = record[w]! | v;
        }
        const page0 = base + w * 32;
        if (n + 32 > out.length) {
          const bigger = new Uint32Array(out.length * 2);
          bigger.set(out);
          out = bigger;
          this.out = out;
        }
        if (v === -1) {
          for (let i = 0; i < 32; i++) out[n++] = page0 + i; // a fully dirty word: common after markAll
          continue;
        }
        while (v !== 0) {
          const low = v & -v;
          out[n++] = page0 + 31 - Math.clz32(low);
          v ^= low;
        }
      }
    }
    return out.slice(0, n);
  }

  /** Number of dirty pages now, without clearing. */
  count(): number {
    let n = 0;
    for (const words of this.words) {
      for (let w = 0; w < words.length; w++) {
        let v = words[w]!;
        if (v === 0) continue;
        v = v - ((v >>> 1) & 0x55555555);
        v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
        n += (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
      }
    }
    return n;
  }

  /**
   * Starts the record of pages ever written. Call only while the RAM is all zero and nothing has written it (a
   * fresh guest, before its workload's init). From then on a page whose dirty bit and written bit are both clear
   * holds zeros: every vCPU write sets the page's dirty bit after its data (memory.ts), and sync() moves the bits it
   * clears into the record. RAM written any other way (GuestRam.writePage) ends the record.
   */
  trackWritesFromZero(): void {
    this.written = this.words.map((w) => new Int32Array(w.length));
  }

  /**
   * True when the `n` pages from `p` (one RAM block) were never written since trackWritesFromZero: they hold zeros,
   * known without reading them. A write racing with this check sets its dirty bit after its data, so the next sync
   * reports the page. False when no record is kept.
   */
  neverWritten(p: number, n: number): boolean {
    const written = this.written;
    if (written === null || this.ram.writtenByMigration) return false;
    const b = this.blockPages > 0 ? Math.floor(p / this.blockPages) : this.blockOf(p);
    const first = p - this.firstPages[b]!;
    if (first < 0 || n <= 0 || first + n > this.pageCounts[b]!) return false;
    const words = this.words[b]!;
    const record = written[b]!;
    for (let i = first; i < first + n; ) {
      const w = i >>> 5;
      const from = i & 31;
      const to = Math.min(32, from + (first + n - i));
      const mask = to - from === 32 ? -1 : ((1 << (to - from)) - 1) << from;
      if (((words[w]! | record[w]!) & mask) !== 0) return false;
      i += to - from;
    }
    return true;
  }

  /** Marks every page dirty (e.g. so round 1 sends all of RAM). */
  markAll(): void {
    for (let b = 0; b < this.words.length; b++) {
      const words = this.words[b]!;
      const pages = this.pageCounts[b]!;
      for (let w = 0; w < words.length; w++) {
        const bits = Math.min(32, pages - w * 32);
        Atomics.or(words, w, bits === 32 ? -1 : (1 << bits) - 1);
      }
    }
  }

  /** Writes to `page` since creation (saturates at 2^32-1). */
  writeCount(page: number): number {
    return this.counters[page] ?? 0;
  }

  /** The live per-page write counters (read-only use). */
  writeCounts(): Uint32Array {
    return this.counters;
  }

  /** Clears the bitmaps and the counters of the pages that were dirty (used after the workload's init). */
  reset(): void {
    for (const p of this.sync()) this.counters[p] = 0;
  }
}
