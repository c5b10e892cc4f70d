/**
 * The page writers: idle, gap, zipf and seq are one loop with different flavours.
 *
 * A step picks a page (by the distribution) and either changes a few bytes in it (a counter or a field, most
 * steps) or rewrites it whole (wholePageFraction). Text flavours hold log lines, prose and CSV and update decimal
 * counters; the binary flavour (gap's heap) holds objects of small integers and pointers and bumps integers.
 * gap's whole-page rewrites go to a sequential allocation frontier, like a copying collector's to-space; seq reads
 * (checksums) the page it is about to write, like a scanner.
 */

import { fillPage, writeDigits } from '../content.js';
import type { VcpuMemory } from '../memory.js';
import type { Rng } from '../rng.js';
import { PagePicker } from './picker.js';
import { readRegisters, type Workload, type WorkloadContext } from './types.js';

export interface WriterStyle {
  readonly flavour: 'text' | 'binary';
  /** Whole-page rewrites advance an allocation cursor instead of using the distribution. */
  readonly allocFrontier: boolean;
  /** Read (checksum) the page before writing it. */
  readonly scan: boolean;
}

const REGISTERS = ['cursor', 'alloc', 'writes', 'checksum'] as const;

export class Writer implements Workload {
  private readonly picker: PagePicker;
  private readonly src: Uint8Array;
  private alloc = 0;
  private writes = 0;
  private checksum = 0;

  constructor(
    private readonly ctx: WorkloadContext,
    private readonly style: WriterStyle,
  ) {
    const p = ctx.params;
    this.picker = new PagePicker(p.distribution, ctx.pageCount, p.zipfExponent);
    this.src = style.flavour === 'text' ? ctx.corpus.text : ctx.corpus.binary;
  }

  init(mem: VcpuMemory, rng: Rng): void {
    const { firstPage, pageCount, pageSize } = this.ctx;
    for (let i = 0; i < pageCount; i++) {
      const page = firstPage + i;
      const off = mem.open(page);
      fillPage(mem.buf, off, pageSize, this.src, rng);
      mem.dirty(page);
    }
  }

  step(mem: VcpuMemory, rng: Rng): void {
    const { firstPage, pageCount, pageSize, params } = this.ctx;
    const whole = params.wholePageFraction > 0 && rng.float() < params.wholePageFraction;
    let rel: number;
    if (whole && this.style.allocFrontier) {
      rel = this.alloc;
      this.alloc = rel + 1 === pageCount ? 0 : rel + 1;
    } else {
      rel = this.picker.next(rng);
    }
    const page = firstPage + rel;
    const off = mem.open(page);
    if (this.style.scan) {
      let sum = this.checksum;
      for (let o = 0; o < pageSize; o += 64) sum = (Math.imul(sum, 31) + mem.dv.getUint32(off + o, true)) | 0;
      this.checksum = sum >>> 0;
    }
    if (whole) {
      fillPage(mem.buf, off, pageSize, this.src, rng);
    } else {
      const n = params.bytesPerWrite;
      if (this.style.flavour === 'text') {
        // A decimal counter field at a 64-byte aligned slot: successive writes change its low digits.
        const at = rng.below(Math.floor((pageSize - n) / 64) + 1) * 64;
        writeDigits(mem.buf, off + at, n, this.writes + rng.below(16));
      } else {
        // Bump the small integers of an object's fields (n bytes, 4-byte words).
        const at = rng.below(Math.floor((pageSize - n) / 8) + 1) * 8;
        const dv = mem.dv;
        let o = off + at;
        for (const end = o + (n & ~3); o < end; o += 4)
          dv.setUint32(o, dv.getUint32(o, true) + 1 + rng.below(4), true);
        for (const end = off + at + n; o < end; o++) mem.buf[o] = (mem.buf[o]! + 1) & 0xff;
      }
    }
    mem.dirty(page);
    this.writes++;
  }

  registers(): Record<string, number> {
    return { cursor: this.picker.cursor, alloc: this.alloc, writes: this.writes, checksum: this.checksum };
  }

  setRegisters(given: Readonly<Record<string, number>>): void {
    const r = readRegisters(given, REGISTERS);
    const n = this.ctx.pageCount;
    if (r.cursor < 0 || r.cursor >= n || r.alloc < 0 || r.alloc >= n) {
      throw new RangeError(`writer registers out of range for ${n} pages: ${JSON.stringify(given)}`);
    }
    this.picker.cursor = r.cursor;
    this.alloc = r.alloc;
    this.writes = r.writes;
    this.checksum = r.checksum;
  }
}
