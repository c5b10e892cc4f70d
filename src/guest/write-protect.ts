/**
 * Write protection of guest RAM for a live snapshot (QEMU's background-snapshot, which write-protects RAM with
 * userfaultfd): while it is on, every page not yet saved is protected, and the first vCPU access to a protected
 * page copies it aside (a pre-write copy) before the vCPU may change it. The snapshot writer saves each page
 * either from RAM (nobody has touched it since the protection started) or from its copy, so what it saves is RAM
 * exactly as it was at the instant the protection started.
 *
 * One Int32 per page, shared by the writer (main thread) and the vCPUs (memory.ts):
 *   PROTECTED       not touched since the start; the writer may claim it (→ SAVING) or a vCPU (→ COPYING)
 *   SAVING          the writer is copying it out of RAM; a vCPU that wants it waits (a 4 KiB memcpy)
 *   COPYING         a vCPU is copying it into a slot; the writer that wants it waits
 *   COPIED + slot   its start-instant contents are in that slot of the copy pool; RAM is the guest's again
 *   DONE            saved: no longer protected
 * A page leaves PROTECTED exactly once, so it is copied at most once and the writer never reads RAM a vCPU may
 * already have changed.
 *
 * Pre-write copies go to a pool of slots committed before the snapshot starts (so a copy never waits for the OS to
 * commit memory), and the vCPU appends the page to the `copied` list; the writer saves listed pages first (each
 * page has a fixed place in the file, so order does not matter) and frees their slots. The extra memory is the
 * pool, whatever the guest does. A vCPU that finds no free slot waits for the writer to free one: the only way a
 * snapshot can hold a vCPU, as QEMU's vCPU waits on a write-protect fault.
 *
 * The vCPUs' MMU (VcpuMemory.open) cannot tell a read from a write (a workload opens a page, then reads or writes
 * it), so protection is on access: a page first read is copied too.
 */

export const WP_DONE = 0;
export const WP_PROTECTED = 1;
export const WP_SAVING = 2;
export const WP_COPYING = 3;
/** COPIED + slot number. */
export const WP_COPIED = 4;

/** Words of the control array. */
const LOCK = 0;
/** Free slots on the stack (the stack is `free[0 .. FREE_TOP)`). */
const FREE_TOP = 1;
/** Bumped (and notified) whenever the writer frees slots: a vCPU waiting for one waits on it. */
const FREED = 2;
/** Entries in the copied list (append-only: each page is copied at most once). */
const COPIED_N = 3;
const CTL_WORDS = 4;

/** What the vCPU workers need (SharedArrayBuffers). */
export interface SharedWriteProtect {
  readonly pageSize: number;
  readonly pagesPerBlock: number;
  readonly states: SharedArrayBuffer;
  readonly ctl: SharedArrayBuffer;
  readonly free: SharedArrayBuffer;
  readonly copied: SharedArrayBuffer;
  readonly slots: SharedArrayBuffer;
}

function lock(ctl: Int32Array): void {
  while (Atomics.compareExchange(ctl, LOCK, 0, 1) !== 0) Atomics.wait(ctl, LOCK, 1, 0.05);
}
function unlock(ctl: Int32Array): void {
  Atomics.store(ctl, LOCK, 0);
  Atomics.notify(ctl, LOCK, 1);
}

/** RAM as WriteProtect reads it: a page's bytes. */
export interface PageSource {
  readonly pageSize: number;
  readonly pageCount: number;
  readonly pagesPerBlock: number;
  page(index: number): Uint8Array;
}

export class WriteProtect {
  readonly states: Int32Array;
  readonly shared: SharedWriteProtect;
  readonly slotCount: number;
  private readonly ctl: Int32Array;
  private readonly free: Int32Array;
  private readonly copied: Int32Array;
  private readonly slots: Uint8Array;
  /** How far the writer has read the copied list. */
  private copiedRead = 0;

  /** `slots`: pages the copy pool holds (committed now, before the snapshot's instant). */
  constructor(
    readonly ram: PageSource,
    slots = 4096,
  ) {
    const n = Math.max(1, Math.min(slots, ram.pageCount));
    this.slotCount = n;
    this.shared = {
      pageSize: ram.pageSize,
      pagesPerBlock: ram.pagesPerBlock,
      states: new SharedArrayBuffer(ram.pageCount * 4),
      ctl: new SharedArrayBuffer(CTL_WORDS * 4),
      free: new SharedArrayBuffer(n * 4),
      copied: new SharedArrayBuffer(ram.pageCount * 4),
      slots: new SharedArrayBuffer(n * ram.pageSize),
    };
    this.states = new Int32Array(this.shared.states);
    this.states.fill(WP_PROTECTED);
    this.ctl = new Int32Array(this.shared.ctl);
    this.free = new Int32Array(this.shared.free);
    this.copied = new Int32Array(this.shared.copied);
    this.slots = new Uint8Array(this.shared.slots);
    for (let i = 0; i < n; i++) this.free[i] = i;
    this.ctl[FREE_TOP] = n;
    // Commit the pool now: a vCPU's copy must not wait for the kernel to fault a fresh page in.
    for (let off = 0; off < this.slots.length; off += 4096) this.slots[off] = 1;
    this.slots.fill(0);
  }

  /**
   * The writer's side: copies page `p` as it was at the start into `out` (pageSize bytes) and unprotects it.
   * Returns 'ram' (saved from RAM), 'copy' (from a vCPU's pre-write copy) or 'done' (already saved: `out` untouched).
   */
  save(p: number, out: Uint8Array): 'ram' | 'copy' | 'done' {
    const s = this.states;
    let waits = 0;
    for (;;) {
      const was = Atomics.compareExchange(s, p, WP_PROTECTED, WP_SAVING);
      if (was === WP_PROTECTED) {
        out.set(this.ram.page(p));
        Atomics.store(s, p, WP_DONE);
        Atomics.notify(s, p);
        return 'ram';
      }
      if (was >= WP_COPIED) {
        const slot = was - WP_COPIED;
        const size = this.ram.pageSize;
        out.set(this.slots.subarray(slot * size, (slot + 1) * size));
        Atomics.store(s, p, WP_DONE);
        this.release(slot);
        return 'copy';
      }
      if (was === WP_COPYING) {
        // A vCPU is in the middle of a 4 KiB copy; one that never finishes it has died (its guest is being destroyed).
        if (++waits > 5000) throw new Error(`write protection: page ${p} was never copied (a vCPU stopped)`);
        Atomics.wait(s, p, WP_COPYING, 1);
        continue;
      }
      if (was === WP_DONE) return 'done';
      throw new Error(`write protection: page ${p} is being saved twice`);
    }
  }

  /** Pages the vCPUs copied since the last call (some may be saved already: `save` then answers 'done'). */
  takeCopied(): Int32Array {
    const n = Atomics.load(this.ctl, COPIED_N);
    const out = this.copied.slice(this.copiedRead, n);
    this.copiedRead = n;
    return out;
  }

  /**
   * Lifts the protection from every page (the snapshot is finished, or given up half way): a vCPU waiting for a
   * page or for a free slot sees its page unprotected and goes on. Nothing is saved after this.
   */
  abandon(): void {
    const s = this.states;
    for (let p = 0; p < s.length; p++) {
      if (Atomics.load(s, p) !== WP_DONE) {
        Atomics.store(s, p, WP_DONE);
        Atomics.notify(s, p);
      }
    }
    Atomics.add(this.ctl, FREED, 1);
    Atomics.notify(this.ctl, FREED);
  }

  /** Free slots now (the pool's size when no copy is waiting to be saved). */
  freeSlots(): number {
    return Atomics.load(this.ctl, FREE_TOP);
  }

  private release(slot: number): void {
    lock(this.ctl);
    this.free[this.ctl[FREE_TOP]!++] = slot;
    unlock(this.ctl);
    Atomics.add(this.ctl, FREED, 1);
    Atomics.notify(this.ctl, FREED);
  }
}

/** The vCPU's side (inside the worker): protects each access until the page is saved or copied. */
export class VcpuWriteProtect {
  private readonly states: Int32Array;
  private readonly ctl: Int32Array;
  private readonly free: Int32Array;
  private readonly copied: Int32Array;
  private readonly slots: Uint8Array;
  private readonly pageSize: number;
  private readonly pagesPerBlock: number;
  /** Pre-write copies this vCPU made, and the times it waited for a free slot. */
  copies = 0;
  slotWaits = 0;

  constructor(
    shared: SharedWriteProtect,
    private readonly ram: readonly Uint8Array[],
  ) {
    this.states = new Int32Array(shared.states);
    this.ctl = new Int32Array(shared.ctl);
    this.free = new Int32Array(shared.free);
    this.copied = new Int32Array(shared.copied);
    this.slots = new Uint8Array(shared.slots);
    this.pageSize = shared.pageSize;
    this.pagesPerBlock = shared.pagesPerBlock;
  }

  /** Before the vCPU touches `page`: returns at once unless it is still protected, then copies it (or waits). */
  access(page: number): void {
    const s = this.states;
    for (;;) {
      const v = Atomics.load(s, page);
      if (v === WP_DONE || v >= WP_COPIED) return;
      if (v === WP_SAVING || v === WP_COPYING) {
        Atomics.wait(s, page, v, 1); // the writer (or another vCPU) is copying it: microseconds
        continue;
      }
      const slot = this.takeSlot();
      if (slot < 0) {
        // Every slot holds a copy the writer has not saved yet: wait for it to free one.
        this.slotWaits++;
        Atomics.wait(this.ctl, FREED, Atomics.load(this.ctl, FREED), 1);
        continue;
      }
      if (Atomics.compareExchange(s, page, WP_PROTECTED, WP_COPYING) !== WP_PROTECTED) {
        this.putSlot(slot);
        continue;
      }
      const b = Math.floor(page / this.pagesPerBlock);
      const off = (page - b * this.pagesPerBlock) * this.pageSize;
      this.slots.set(this.ram[b]!.subarray(off, off + this.pageSize), slot * this.pageSize);
      this.copies++;
      Atomics.store(s, page, WP_COPIED + slot);
      Atomics.notify(s, page);
      lock(this.ctl);
      this.copied[this.ctl[COPIED_N]!] = page;
      Atomics.store(this.ctl, COPIED_N, this.ctl[COPIED_N]! + 1);
      unlock(this.ctl);
      return;
    }
  }

  private takeSlot(): number {
    if (Atomics.load(this.ctl, FREE_TOP) === 0) return -1;
    lock(this.ctl);
    const top = this.ctl[FREE_TOP]!;
    const slot = top > 0 ? this.free[top - 1]! : -1;
    if (top > 0) this.ctl[FREE_TOP] = top - 1;
    unlock(this.ctl);
    return slot;
  }

  private putSlot(slot: number): void {
    lock(this.ctl);
    this.free[this.ctl[FREE_TOP]!++] = slot;
    unlock(this.ctl);
  }
}
