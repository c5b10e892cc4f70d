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

  constructor(ram: GuestRam, buffers: DirtyLogBuffers = allocDirtyLogBuffers(ram)) {
    this.buffers = buffers;
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
