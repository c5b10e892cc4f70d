/**
 * twolf: SPEC's standard-cell placement by simulated annealing. CPU bound over a small (~3 MB) working set.
 *
 * The working set is an array of 16-byte cells (x, y, net, width as uint32). A step proposes swapping two cells,
 * evaluates the wire-length change by walking `computePerStep` connected cells (reads plus arithmetic), and with
 * probability `writeProbability` accepts: the two cells' positions are swapped (8 bytes in each of two pages).
 * Rarely (`wholePageFraction` of accepted moves) a page of cells is re-laid out whole.
 */
import type { VcpuMemory } from '../memory.js';
import type { Rng } from '../rng.js';
import { readRegisters, type Workload, type WorkloadContext } from './types.js';

const CELL = 16;
const REGISTERS = ['cost', 'moves', 'accepted'] as const;

export class Twolf implements Workload {
  private readonly cellsPerPage: number;
  private readonly cells: number;
  private cost = 0;
  private moves = 0;
  private accepted = 0;

  constructor(private readonly ctx: WorkloadContext) {
    this.cellsPerPage = ctx.pageSize / CELL;
    this.cells = this.cellsPerPage * ctx.pageCount;
  }

  init(mem: VcpuMemory, rng: Rng): void {
    for (let i = 0; i < this.ctx.pageCount; i++) this.layoutPage(mem, rng, this.ctx.firstPage + i);
  }

  private layoutPage(mem: VcpuMemory, rng: Rng, page: number): void {
    const off = mem.open(page);
    const dv = mem.dv;
    for (let c = 0; c < this.cellsPerPage; c++) {
      const o = off + c * CELL;
      dv.setUint32(o, rng.below(1024), true);
      dv.setUint32(o + 4, rng.below(1024), true);
      dv.setUint32(o + 8, rng.below(4096), true);
      dv.setUint32(o + 12, 1 + rng.below(16), true);
    }
    mem.dirty(page);
  }

  /** Byte offset of `cell` (after opening its page; mem.dv then addresses it). */
  private cell(mem: VcpuMemory, cell: number): number {
    const rel = Math.floor(cell / this.cellsPerPage);
    return mem.open(this.ctx.firstPage + rel) + (cell - rel * this.cellsPerPage) * CELL;
  }

  step(mem: VcpuMemory, rng: Rng): void {
    const { computePerStep, writeProbability, wholePageFraction } = this.ctx.params;
    const a = rng.below(this.cells);
    const b = rng.below(this.cells);
    let o = this.cell(mem, a);
    const xa = mem.dv.getUint32(o, true);
    const ya = mem.dv.getUint32(o + 4, true);
    o = this.cell(mem, b);
    const xb = mem.dv.getUint32(o, true);
    const yb = mem.dv.getUint32(o + 4, true);
    // Wire-length delta over the nets of the moved cells: a dependent walk through the cell array.
    let acc = this.cost;
    let c = a;
    for (let k = 0; k < computePerStep; k++) {
      c = (Math.imul(c ^ acc, 0x9e3779b1) >>> 0) % this.cells;
      o = this.cell(mem, c);
      const x = mem.dv.getUint32(o, true);
      const y = mem.dv.getUint32(o + 4, true);
      const before = Math.abs(x - xa) + Math.abs(y - ya);
      const after = Math.abs(x - xb) + Math.abs(y - yb);
      acc = (acc + Math.imul(after - before, 2654435761 >>> (k & 7))) | 0;
    }
    this.cost = acc >>> 0;
    this.moves++;
    if (writeProbability > 0 && rng.float() < writeProbability) {
      o = this.cell(mem, a);
      mem.dv.setUint32(o, xb, true);
      mem.dv.setUint32(o + 4, yb, true);
      const pa = this.ctx.firstPage + Math.floor(a / this.cellsPerPage);
      mem.dirty(pa);
      o = this.cell(mem, b);
      mem.dv.setUint32(o, xa, true);
      mem.dv.setUint32(o + 4, ya, true);
      mem.dirty(this.ctx.firstPage + Math.floor(b / this.cellsPerPage));
      this.accepted++;
      if (wholePageFraction > 0 && rng.float() < wholePageFraction) this.layoutPage(mem, rng, pa);
    }
  }

  registers(): Record<string, number> {
    return { cost: this.cost, moves: this.moves, accepted: this.accepted };
  }

  setRegisters(given: Readonly<Record<string, number>>): void {
    const r = readRegisters(given, REGISTERS);
    this.cost = r.cost >>> 0;
    this.moves = r.moves;
    this.accepted = r.accepted;
  }
}
