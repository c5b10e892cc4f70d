/**
 * A vCPU's access path to guest RAM (the guest's "MMU"), used inside the worker by the workloads.
 *
 * - `open(page)` before touching a page (read or write): on a post-copy destination an absent page raises a
 *   fault (reported once, deduplicated with an atomic "requested" bit) and blocks until the page is placed.
 * - after writing, `dirty(page)`: data first, then the dirty bit (Atomics.or), then the write counter. The
 *   counter is a plain increment because only the owning vCPU ever writes a page.
 */
import { LivemigError } from '../errors.js';
import { type SharedWriteProtect, VcpuWriteProtect } from './write-protect.js';

export interface SharedGuestMemory {
  readonly pageSize: number;
  readonly pageCount: number;
  readonly pagesPerBlock: number;
  readonly blocks: readonly SharedArrayBuffer[];
  readonly bitmaps: readonly SharedArrayBuffer[];
  readonly counters: SharedArrayBuffer;
  /** Post-copy only: bit set = page present. */
  readonly presence: SharedArrayBuffer | null;
  /** Post-copy only: bit set = fault already reported. */
  readonly requested: SharedArrayBuffer | null;
}

/** Thrown out of a blocked access when the guest is being destroyed. */
export class StopSignal extends LivemigError<'GUEST_STOPPED'> {
  override readonly name = 'StopSignal';
  constructor(message = 'the guest is being destroyed') {
    super('GUEST_STOPPED', message);
  }
}

const MAX_COUNT = 0xffffffff;

export class VcpuMemory {
  readonly pageSize: number;
  /** Block holding the page last opened, and a DataView on it (little-endian accessors). */
  buf: Uint8Array;
  dv: DataView;
  /** Pages written so far (for write-rate pacing). */
  pageWrites = 0;
  /** Writes that set a clear dirty bit: pages newly dirtied since the migration last synced them (QEMU's dirty
   *  ring gets one entry per such write), what dirty-limit counts against a vCPU's quota. */
  newDirty = 0;
  private readonly pagesPerBlock: number;
  private readonly bytes: Uint8Array[];
  private readonly views: DataView[];
  private readonly bitmaps: Int32Array[];
  private readonly counters: Uint32Array;
  private readonly presence: Int32Array | null;
  private readonly requested: Int32Array | null;
  /** A live snapshot's write protection while one runs (write-protect.ts), else null. */
  private wp: VcpuWriteProtect | null = null;

  constructor(
    shared: SharedGuestMemory,
    private readonly onFault: (page: number) => void = () => {},
    private readonly stopping: () => boolean = () => false,
  ) {
    this.pageSize = shared.pageSize;
    this.pagesPerBlock = shared.pagesPerBlock;
    this.bytes = shared.blocks.map((b) => new Uint8Array(b));
    this.views = shared.blocks.map((b) => new DataView(b));
    this.bitmaps = shared.bitmaps.map((b) => new Int32Array(b));
    this.counters = new Uint32Array(shared.counters);
    this.presence = shared.presence ? new Int32Array(shared.presence) : null;
    this.requested = shared.requested ? new Int32Array(shared.requested) : null;
    this.buf = this.bytes[0]!;
    this.dv = this.views[0]!;
  }

  /** Makes `page` accessible through `buf`/`dv` and returns its byte offset there. */
  open(page: number): number {
    if (this.presence !== null) {
      const w = page >>> 5;
      const bit = 1 << (page & 31);
      if ((Atomics.load(this.presence, w) & bit) === 0) this.fault(page, w, bit);
    }
    if (this.wp !== null) this.wp.access(page);
    const b = Math.floor(page / this.pagesPerBlock);
    this.buf = this.bytes[b]!;
    this.dv = this.views[b]!;
    return (page - b * this.pagesPerBlock) * this.pageSize;
  }

  /** Turns a live snapshot's write protection on (shared buffers) or off (null), between two steps. */
  protect(shared: SharedWriteProtect | null): void {
    this.wp = shared ? new VcpuWriteProtect(shared, this.bytes) : null;
  }

  /** Records a write to `page` (after the data is in place). */
  dirty(page: number): void {
    const b = Math.floor(page / this.pagesPerBlock);
    const local = page - b * this.pagesPerBlock;
    const bit = 1 << (local & 31);
    if ((Atomics.or(this.bitmaps[b]!, local >>> 5, bit) & bit) === 0) this.newDirty++;
    const c = this.counters[page]!;
    if (c !== MAX_COUNT) this.counters[page] = c + 1;
    this.pageWrites++;
  }

  private fault(page: number, w: number, bit: number): void {
    const requested = this.requested!;
    const presence = this.presence!;
    if ((Atomics.or(requested, w, bit) & bit) === 0) this.onFault(page);
    for (;;) {
      const v = Atomics.load(presence, w);
      if ((v & bit) !== 0) return;
      // Woken by placePage's notify; the timeout only bounds how late we notice a destroy.
      Atomics.wait(presence, w, v, 50);
      if (this.stopping()) throw new StopSignal('guest destroyed while a vCPU waited for a page');
    }
  }
}
