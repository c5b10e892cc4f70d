/**
 * kv-read: the kv store (kv.ts) serving mostly GETs, the read-mostly mix of a cache or a session store.
 *
 * A GET picks a record (same distribution as kv's writes), parses its numeric fields and hashes its name and
 * e-mail: memory reads and compute, no write. A PUT is kv's in-place update. The vCPU owning the first share
 * (vCPU 0) is the write path: each of its steps is a PUT with probability `writeProbability`, else a GET, and
 * `writeRate` bounds its page writes per second. Every other vCPU only serves GETs from its own share (a read
 * replica of its shard), so it never writes. GETs and PUTs are counted apart (registers `gets` and `commits`),
 * so a report can say how much a throttle slowed the reads.
 */
import type { VcpuMemory } from '../memory.js';
import type { Rng } from '../rng.js';
import { KV_FIELD_AT, Kv } from './kv.js';
import { PagePicker } from './picker.js';
import { readRegisters, type Workload, type WorkloadContext } from './types.js';

/** Bytes of the name and e-mail fields a GET hashes (they are adjacent). */
const HASHED = 24 + 3 + 11 + 40;

export class KvRead implements Workload {
  private readonly kv: Kv;
  private readonly picker: PagePicker;
  private readonly slots: number;
  private readonly rb: number;
  /** Only vCPU 0 writes. */
  private readonly writes: boolean;
  private gets = 0;
  /** Running FNV-1a over what the GETs read: the value the reads compute (a register, so it is checked). */
  private digest = 0x811c9dc5;

  constructor(private readonly ctx: WorkloadContext) {
    const p = ctx.params;
    this.kv = new Kv(ctx);
    this.rb = p.recordBytes;
    this.slots = Math.floor(ctx.pageSize / this.rb);
    this.picker = new PagePicker(p.distribution, ctx.pageCount, p.zipfExponent);
    this.writes = ctx.firstPage === 0;
  }

  init(mem: VcpuMemory, rng: Rng): void {
    this.kv.init(mem, rng);
  }

  step(mem: VcpuMemory, rng: Rng): void {
    if (this.writes && rng.float() < this.ctx.params.writeProbability) {
      this.kv.step(mem, rng);
      return;
    }
    const page = this.ctx.firstPage + this.picker.next(rng);
    const off = mem.open(page);
    const buf = mem.buf;
    const o = off + rng.below(this.slots) * this.rb;
    let visits = 0;
    for (let i = 0; i < 7; i++) visits = visits * 10 + (buf[o + KV_FIELD_AT.visits + i]! - 0x30);
    let cents = 0;
    for (let i = 0; i < 10; i++) {
      const c = buf[o + KV_FIELD_AT.balance + i]!;
      if (c !== 0x2e) cents = cents * 10 + (c - 0x30);
    }
    let h = this.digest ^ visits ^ cents;
    const from = o + KV_FIELD_AT.name;
    for (let i = 0; i < HASHED; i++) h = Math.imul(h ^ buf[from + i]!, 0x01000193);
    this.digest = h >>> 0;
    this.gets++;
  }

  reads(): number {
    return this.gets;
  }

  registers(): Record<string, number> {
    return { ...this.kv.registers(), getCursor: this.picker.cursor, gets: this.gets, digest: this.digest };
  }

  setRegisters(given: Readonly<Record<string, number>>): void {
    const r = readRegisters(given, ['getCursor', 'gets', 'digest'] as const);
    if (r.getCursor < 0 || r.getCursor >= this.ctx.pageCount)
      throw new RangeError(`kv-read getCursor ${r.getCursor} out of range`);
    if (r.digest < 0 || r.digest > 0xffffffff)
      throw new RangeError(`kv-read digest ${r.digest} is not a uint32`);
    this.kv.setRegisters(given);
    this.picker.cursor = r.getCursor;
    this.gets = r.gets;
    this.digest = r.digest;
  }
}
