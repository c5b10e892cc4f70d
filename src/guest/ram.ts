/**
 * Guest RAM: one or more RAM blocks, each a SharedArrayBuffer holding a run of pages. Blocks exist because one
 * buffer should not have to hold a whole large guest; every block but the last holds `blockBytes`.
 * The OS commits SharedArrayBuffer memory lazily, so an 8 GiB guest costs only the pages ever written.
 */
import { UsageError } from '../errors.js';

export interface RamBlock {
  readonly buffer: SharedArrayBuffer;
  readonly firstPage: number;
  readonly pageCount: number;
}

export class GuestRam {
  readonly pageSize: number;
  readonly pageCount: number;
  readonly bytes: number;
  readonly blocks: readonly RamBlock[];
  /** Pages per block (all blocks but the last are full). */
  readonly pagesPerBlock: number;
  private readonly views: Buffer[];
  private readonly zero: Buffer;
  /** True once writePage stored a page: RAM then holds data no vCPU wrote, which the dirty log's record misses. */
  writtenByMigration = false;

  constructor(
    layout: { ramBytes: number; pageSize: number; blockBytes: number },
    blocks?: readonly RamBlock[],
  ) {
    this.pageSize = layout.pageSize;
    this.bytes = layout.ramBytes;
    this.pageCount = layout.ramBytes / layout.pageSize;
    this.pagesPerBlock = Math.min(this.pageCount, Math.floor(layout.blockBytes / layout.pageSize));
    if (blocks) {
      this.blocks = blocks;
    } else {
      const list: RamBlock[] = [];
      for (let first = 0; first < this.pageCount; first += this.pagesPerBlock) {
        const pageCount = Math.min(this.pagesPerBlock, this.pageCount - first);
        list.push({ buffer: new SharedArrayBuffer(pageCount * this.pageSize), firstPage: first, pageCount });
      }
      this.blocks = list;
    }
    this.views = this.blocks.map((b) => Buffer.from(b.buffer));
    this.zero = Buffer.alloc(this.pageSize);
  }

  /** Zero-copy view of one page. */
  page(index: number): Uint8Array {
    this.check(index);
    const b = Math.floor(index / this.pagesPerBlock);
    return new Uint8Array(
      this.blocks[b]!.buffer,
      (index - b * this.pagesPerBlock) * this.pageSize,
      this.pageSize,
    );
  }

  /** Migration side: store a page's contents. Does not touch the dirty log (these are not guest writes). */
  writePage(index: number, data: Uint8Array): void {
    this.check(index);
    if (data.length !== this.pageSize) {
      throw new UsageError(`writePage: page ${index} needs ${this.pageSize} bytes, got ${data.length}`);
    }
    this.writtenByMigration = true;
    const b = Math.floor(index / this.pagesPerBlock);
    this.views[b]!.set(data, (index - b * this.pagesPerBlock) * this.pageSize);
  }

  /** Fills a page with zeros (migration side, e.g. a zero page frame). */
  zeroPage(index: number): void {
    this.check(index);
    const b = Math.floor(index / this.pagesPerBlock);
    const off = (index - b * this.pagesPerBlock) * this.pageSize;
    this.views[b]!.fill(0, off, off + this.pageSize);
  }

  /** True when every byte of the page is zero (memcmp against a shared zero page). */
  isZeroPage(index: number): boolean {
    this.check(index);
    const b = Math.floor(index / this.pagesPerBlock);
    const off = (index - b * this.pagesPerBlock) * this.pageSize;
    return this.views[b]!.compare(this.zero, 0, this.pageSize, off, off + this.pageSize) === 0;
  }

  /** True when pages `a` of this RAM and `b` of `other` hold the same bytes. */
  pageEquals(a: number, other: GuestRam, b = a): boolean {
    this.check(a);
    const ba = Math.floor(a / this.pagesPerBlock);
    const offA = (a - ba * this.pagesPerBlock) * this.pageSize;
    return (
      this.views[ba]!.compare(other.page(b), 0, other.pageSize, offA, offA + this.pageSize) === 0 &&
      other.pageSize === this.pageSize
    );
  }

  private check(index: number): void {
    if (!(index >= 0 && index < this.pageCount && Number.isInteger(index))) {
      throw new UsageError(`page ${index} is outside guest RAM (0..${this.pageCount - 1})`);
    }
  }
}
