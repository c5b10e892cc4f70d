/**
 * Write protection of guest RAM for a live snapshot (QEMU's background-snapshot, which write-protects RAM with
 * userfaultfd): while it is on, every page not yet saved is protected, and the first vCPU access to a protected
 * page copies it aside (a pre-write copy) before the vCPU may change it. The snapshot writer saves each page
 * either from RAM (nobody has touched it since the protection started) or from its copy, so what it saves is RAM
 * exactly as it was at the instant the protection started.
 *
 * One Int32 per page, shared by the writer (main thread) and the vCPUs (memory.ts):
 *   PROTECTED     not touched since the start; the writer may claim it (→ SAVING) or a vCPU (→ COPYING)
 *   SAVING        the writer is copying it out of RAM; a vCPU that wants it waits (a 4 KiB memcpy)
 *   COPYING       a vCPU is copying it to the shadow; the writer that wants it waits
 *   COPIED        its start-instant contents are in the shadow; RAM is the guest's again
 *   DONE          saved (or copied): no longer protected
 * A page leaves PROTECTED exactly once, by a compare-and-swap, so it is copied at most once and the writer never
 * reads RAM a vCPU may already have changed.
 *
 * The vCPUs' MMU (VcpuMemory.open) cannot tell a read from a write (a workload opens a page, then reads or writes
 * it), so protection is on access: a page first read is copied too. The cost: one page copy per page the guest
 * touches before the writer reaches it (at most RAM once), and one atomic load per page access while it is on.
 */
import { GuestRam } from './ram.js';

export const WP_DONE = 0;
export const WP_PROTECTED = 1;
export const WP_SAVING = 2;
export const WP_COPYING = 3;
export const WP_COPIED = 4;

/** What the vCPU workers need: the page states and the shadow blocks (same layout as RAM, lazily committed). */
export interface SharedWriteProtect {
  readonly states: SharedArrayBuffer;
  readonly shadow: readonly SharedArrayBuffer[];
}

export class WriteProtect {
  readonly states: Int32Array;
  /** Pre-write copies, at the same place as in RAM; only pages the vCPUs copied are ever committed by the OS. */
  readonly shadow: GuestRam;
  readonly shared: SharedWriteProtect;

  constructor(readonly ram: GuestRam) {
    const buffer = new SharedArrayBuffer(ram.pageCount * 4);
    this.states = new Int32Array(buffer);
    this.states.fill(WP_PROTECTED);
    this.shadow = new GuestRam({
      ramBytes: ram.bytes,
      pageSize: ram.pageSize,
      blockBytes: ram.pagesPerBlock * ram.pageSize,
    });
    this.shared = { states: buffer, shadow: this.shadow.blocks.map((b) => b.buffer) };
  }

  /**
   * The writer's side: copies page `p` as it was at the start into `out` (pageSize bytes) and unprotects it.
   * Returns true when it came from a vCPU's pre-write copy, false when straight from RAM.
   */
  save(p: number, out: Uint8Array): boolean {
    const s = this.states;
    for (;;) {
      const was = Atomics.compareExchange(s, p, WP_PROTECTED, WP_SAVING);
      if (was === WP_PROTECTED) {
        out.set(this.ram.page(p));
        Atomics.store(s, p, WP_DONE);
        Atomics.notify(s, p);
        return false;
      }
      if (was === WP_COPIED) {
        out.set(this.shadow.page(p));
        Atomics.store(s, p, WP_DONE);
        return true;
      }
      if (was === WP_COPYING) {
        Atomics.wait(s, p, WP_COPYING, 1); // a vCPU is in the middle of a 4 KiB copy
        continue;
      }
      throw new Error(`write protection: page ${p} saved twice (state ${was})`);
    }
  }
}

/** The vCPU's side (inside the worker): protects each access until the page is saved or copied. */
export class VcpuWriteProtect {
  private readonly states: Int32Array;
  private readonly shadow: Uint8Array[];
  /** Pre-write copies this vCPU made. */
  copies = 0;

  constructor(
    shared: SharedWriteProtect,
    private readonly ram: readonly Uint8Array[],
    private readonly pagesPerBlock: number,
    private readonly pageSize: number,
  ) {
    this.states = new Int32Array(shared.states);
    this.shadow = shared.shadow.map((b) => new Uint8Array(b));
  }

  /** Before the vCPU touches `page`: returns at once unless it is still protected, then copies it (or waits). */
  access(page: number): void {
    const s = this.states;
    for (;;) {
      const v = Atomics.load(s, page);
      if (v === WP_DONE || v === WP_COPIED) return;
      if (v === WP_SAVING || v === WP_COPYING) {
        Atomics.wait(s, page, v, 1); // the writer (or another vCPU) is copying it: microseconds
        continue;
      }
      if (Atomics.compareExchange(s, page, WP_PROTECTED, WP_COPYING) !== WP_PROTECTED) continue;
      const b = Math.floor(page / this.pagesPerBlock);
      const off = (page - b * this.pagesPerBlock) * this.pageSize;
      this.shadow[b]!.set(this.ram[b]!.subarray(off, off + this.pageSize), off);
      this.copies++;
      Atomics.store(s, page, WP_COPIED);
      Atomics.notify(s, page);
      return;
    }
  }
}
