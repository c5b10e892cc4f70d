/**
 * The `trace` workload: a recorded program replayed into guest RAM, deterministically.
 *
 * Guest page i is the trace's flat page i, so the working set is the trace's page count. `init` writes the first
 * record (the snapshot). A step then applies one recorded page write: the XOR delta of one page of one record.
 * Each vCPU walks every record in order but applies only the pages of its own share (so vCPUs never write each
 * other's pages), and its only register is its position in that walk. At the end of the trace it walks back:
 * applying the same XOR deltas in reverse order undoes them one by one, back to the snapshot, and then forward
 * again — so a replay never runs out and RAM only ever holds contents the program really had.
 *
 * Speed (`traceSpeed`, 0 = as fast as the vCPU can) and pacing (`tracePacing`):
 *  - `recorded` (the default): each page write is due at its time in the recording, spread evenly over the interval
 *    of the record that holds it; the vCPU runs a step when its guest clock reaches the step's due time
 *    (`dueMs`). Bursts and quiet spells are replayed as they were. Walking back mirrors the timeline.
 *  - `mean`: the vCPU's writeRate token bucket, at the mean recorded rate: bursts are smoothed away.
 * Both count guest time, like every other workload, so CAP and DVFS slow a replay too.
 */
import { UsageError } from '../../errors.js';
import {
  readTraceFile,
  recordedDurationMs,
  recordedWriteTime,
  traceFacts,
  traceFactsOf,
} from '../../trace/facts.js';
import { TraceReader, traceChecksum } from '../../trace/format.js';
import { TRACE_PACINGS, type TracePacing, type WorkloadParams } from '../config.js';
import type { VcpuMemory } from '../memory.js';
import type { Workload, WorkloadContext } from './types.js';
import { readRegisters } from './types.js';

/**
 * Completes the trace workload's params (called by the guest's resolveConfig): the file as an absolute path and
 * its checksum (a changed file is a different workload), the working set = the trace's pages, the write rate
 * from the recording and `traceSpeed` unless given. With `trace` (the trace's bytes, e.g. received by migration)
 * no file is opened: `traceFile` is kept as given, a name. Throws UsageError.
 */
export function resolveTraceParams(
  p: WorkloadParams,
  given: Partial<WorkloadParams>,
  ram: { ramBytes: number; pageSize: number; vcpus: number },
  trace?: Uint8Array,
): void {
  const file = p.traceFile;
  if (typeof file !== 'string' || file === '') {
    throw new UsageError(
      'workload trace: say which file, e.g. --workload trace:traces/sqlite.lmtrace',
      'workload',
    );
  }
  const speed = p.traceSpeed;
  if (typeof speed !== 'number' || !Number.isFinite(speed) || speed < 0 || speed > 1e6) {
    throw new UsageError(
      `workload.params.traceSpeed: ${JSON.stringify(speed)} is not accepted; use a number from 0 (as fast as it can) to 1e6 (1 = recorded speed)`,
      'traceSpeed',
    );
  }
  if (!TRACE_PACINGS.includes(p.tracePacing as TracePacing)) {
    throw new UsageError(
      `workload.params.tracePacing: ${JSON.stringify(p.tracePacing)} is not accepted; use ${TRACE_PACINGS.join(' or ')}`,
      'tracePacing',
    );
  }
  // A write rate given without a pacing is a mean rate to pace at. With recorded pacing writeRate is only the
  // recording's mean (computed below, what models and reports read), so a resolved config resolves to itself.
  if (given.writeRate !== undefined && given.tracePacing === undefined) p.tracePacing = 'mean';
  const facts = trace ? traceFactsOf(trace, file) : traceFacts(file);
  const { header } = facts;
  if (header.pageSize !== ram.pageSize) {
    throw new UsageError(
      `trace ${facts.path} was recorded with ${header.pageSize}-byte pages; run the guest with --page-size ${header.pageSize}`,
      'pageSize',
    );
  }
  const need = Math.max(1, header.pageCount) * header.pageSize;
  if (need > ram.ramBytes) {
    throw new UsageError(
      `trace ${facts.path} covers ${header.pageCount} pages (${need} bytes); give the guest at least that much RAM`,
      'ramBytes',
    );
  }
  if (given.traceCrc !== undefined && given.traceCrc !== facts.crc) {
    throw new UsageError(
      `trace ${facts.path} has changed since this guest was configured (checksum differs)`,
      'workload',
    );
  }
  p.traceFile = facts.path;
  p.traceCrc = facts.crc;
  p.workingSetBytes = need;
  // A vCPU whose share is never written after the snapshot would spin on no-op steps (pacing counts writes).
  if (facts.dirtied.length === 0) {
    throw new UsageError(
      `trace ${facts.path} has no page writes after its snapshot: nothing to replay`,
      'workload',
    );
  }
  const total = need / header.pageSize;
  for (let i = 0; i < ram.vcpus; i++) {
    const lo = Math.floor((total * i) / ram.vcpus);
    const hi = Math.floor((total * (i + 1)) / ram.vcpus);
    if (!hasPageIn(facts.dirtied, lo, hi)) {
      throw new UsageError(
        `trace ${facts.path}: vCPU ${i}'s share (pages ${lo}..${hi - 1}) is never written after the snapshot; ` +
          `use fewer vCPUs (at most ${maxVcpus(facts.dirtied, total)})`,
        'vcpus',
      );
    }
  }
  if (given.writeRate === undefined || p.tracePacing === 'recorded') {
    // Per vCPU: each walks every record but writes only its share of the pages. With recorded pacing this is the
    // mean the timestamps give; the vCPU follows the timestamps themselves.
    p.writeRate = speed === 0 ? 0 : Math.max(1, (facts.dirtyPagesPerSecond * speed) / ram.vcpus);
  }
  // A trace without duration has no timing to follow.
  if (facts.durationMs <= 0) p.tracePacing = 'mean';
}

/** Whether some page in ascending `pages` lies in [lo, hi). */
function hasPageIn(pages: Uint32Array, lo: number, hi: number): boolean {
  let a = 0;
  let b = pages.length;
  while (a < b) {
    const m = (a + b) >>> 1;
    if (pages[m]! < lo) a = m + 1;
    else b = m;
  }
  return a < pages.length && pages[a]! < hi;
}

/** The most vCPUs for which every share holds a page written after the snapshot (at least 1). */
function maxVcpus(pages: Uint32Array, total: number): number {
  for (let n = Math.min(64, total); n > 1; n--) {
    let ok = true;
    for (let i = 0; i < n && ok; i++) {
      ok = hasPageIn(pages, Math.floor((total * i) / n), Math.floor((total * (i + 1)) / n));
    }
    if (ok) return n;
  }
  return 1;
}

const REGISTERS = ['pos', 'laps'] as const;

export class TraceReplay implements Workload {
  private readonly reader: TraceReader;
  private readonly pageSize: number;
  /** This vCPU's page writes, in trace order: record and position within the record. */
  private readonly entryRecord: Uint32Array;
  private readonly entryPos: Uint32Array;
  private readonly entryPage: Uint32Array;
  /** Trace time (ms after the snapshot) at which each of this vCPU's page writes was made, ascending. */
  private readonly entryDue: Float64Array;
  /** The recording's length: one forward walk (and one walk back) takes this much trace time. */
  private readonly durationMs: number;
  private pos = 0;
  private laps = 0;
  /** The last inflated chunk (record, chunk) and its deltas, 4-byte aligned for word XOR. */
  private chunkKey = -1;
  private chunkRecord = -1;
  private readonly chunkWords: Int32Array;
  private readonly chunkBytes: Uint8Array;

  constructor(private readonly ctx: WorkloadContext) {
    const file = ctx.params.traceFile ?? '';
    // A guest read (or received) the trace once and shares it with every vCPU thread; used alone, read the file.
    const bytes = ctx.trace ?? readTraceFile(file).bytes;
    if (traceChecksum(bytes) !== ctx.params.traceCrc) {
      throw new UsageError(
        `trace ${file} changed after the guest was configured (checksum differs): start the guest again to use the new trace`,
        'workload',
      );
    }
    this.reader = TraceReader.open(bytes);
    const { header } = this.reader;
    this.pageSize = header.pageSize;
    const lo = ctx.firstPage;
    const hi = ctx.firstPage + ctx.pageCount;
    const rec: number[] = [];
    const at: number[] = [];
    const pg: number[] = [];
    const due: number[] = [];
    const records = this.reader.records;
    for (let r = 1; r < records.length; r++) {
      const pages = this.reader.pages(r);
      for (let j = 0; j < pages.length; j++) {
        const p = pages[j]!;
        if (p >= lo && p < hi) {
          rec.push(r);
          at.push(j);
          pg.push(p);
          due.push(recordedWriteTime(records, r, j, pages.length));
        }
      }
    }
    this.entryDue = Float64Array.from(due);
    this.durationMs = recordedDurationMs(records);
    this.entryRecord = Uint32Array.from(rec);
    this.entryPos = Uint32Array.from(at);
    this.entryPage = Uint32Array.from(pg);
    this.chunkWords = new Int32Array((header.chunkPages * header.pageSize) / 4);
    this.chunkBytes = new Uint8Array(this.chunkWords.buffer);
  }

  /** The snapshot (record 0), this vCPU's pages only. */
  init(mem: VcpuMemory): void {
    const lo = this.ctx.firstPage;
    const hi = lo + this.ctx.pageCount;
    if (this.reader.records.length === 0) return;
    this.reader.forEachPage(0, (page, delta) => {
      if (page < lo || page >= hi) return;
      const off = mem.open(page);
      mem.buf.set(delta, off);
      mem.dirty(page);
    });
  }

  step(mem: VcpuMemory): void {
    const n = this.entryRecord.length;
    if (n === 0) return; // nothing of this vCPU's share was ever written after the snapshot
    const k = this.pos < n ? this.pos : 2 * n - 1 - this.pos;
    const r = this.entryRecord[k]!;
    const j = this.entryPos[k]!;
    const page = this.entryPage[k]!;
    const { chunkPages } = this.reader.header;
    const c = Math.floor(j / chunkPages);
    if (this.chunkRecord !== r || this.chunkKey !== c) {
      const d = this.reader.chunk(r, c);
      this.chunkBytes.set(d);
      this.chunkRecord = r;
      this.chunkKey = c;
    }
    const off = mem.open(page);
    const words = this.pageSize >>> 2;
    const dst = new Int32Array(mem.buf.buffer, mem.buf.byteOffset + off, words);
    const src = (j - c * chunkPages) * words;
    const w = this.chunkWords;
    for (let i = 0; i < words; i++) dst[i] = dst[i]! ^ w[src + i]!;
    mem.dirty(page);
    this.pos++;
    if (this.pos === 2 * n) {
      this.pos = 0;
      this.laps++;
    }
  }

  /** Trace time (ms, at speed 1) at which the next step is due: the forward walk, then its mirror image. */
  dueMs(): number {
    const n = this.entryDue.length;
    const d = this.durationMs;
    const lap = this.laps * 2 * d;
    if (n === 0) return lap;
    return this.pos < n ? lap + this.entryDue[this.pos]! : lap + 2 * d - this.entryDue[2 * n - 1 - this.pos]!;
  }

  registers(): Record<string, number> {
    return { pos: this.pos, laps: this.laps };
  }

  setRegisters(given: Readonly<Record<string, number>>): void {
    const r = readRegisters(given, REGISTERS);
    const n = this.entryRecord.length;
    if (r.pos < 0 || r.pos >= Math.max(1, 2 * n) || r.laps < 0) {
      throw new RangeError(`trace registers out of range for ${n} page writes: ${JSON.stringify(given)}`);
    }
    this.pos = r.pos;
    this.laps = r.laps;
  }
}
