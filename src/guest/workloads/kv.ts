/**
 * kv: a key-value store holding customer records as fixed-width JSON-like text, updated in place.
 *
 * Each page holds floor(pageSize / recordBytes) record slots:
 *   {"key":"user:00001234","name":"Alice Smith","email":"alice.smith@...","city":"Haifa","visits":0000012,
 *    "balance":0001234.56,"updated":0000000042,"note":"free text..."}\n      (padded to recordBytes)
 * A step is a transaction on one record (page by the distribution, zipf by default: popular keys): most bump a
 * counter or a balance (a few bytes), some replace a text field; a `wholePageFraction` of them compact the page
 * (records move one slot), which rewrites it whole.
 */
import { KV_MIN_RECORD } from '../config.js';
import { CITIES, FIRST_NAMES, LAST_NAMES, writeDigits, writeText } from '../content.js';
import type { VcpuMemory } from '../memory.js';
import type { Rng } from '../rng.js';
import { PagePicker } from './picker.js';
import { readRegisters, type Workload, type WorkloadContext } from './types.js';

/** Field layout: [label before the field, width]. */
const FIELDS = [
  ['{"key":"user:', 8],
  ['","name":"', 24],
  ['","email":"', 40],
  ['","city":"', 16],
  ['","visits":', 7],
  [',"balance":', 10],
  [',"updated":', 10],
  [',"note":"', 0],
] as const;
const AT: number[] = [];
{
  let o = 0;
  for (const [label, width] of FIELDS) {
    o += label.length;
    AT.push(o);
    o += width;
  }
}
const [KEY, NAME, EMAIL, CITY, VISITS, BALANCE, UPDATED, NOTE] = AT as [
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
];
/** Byte offsets of the fields a reader parses (kv-read's GETs). */
export const KV_FIELD_AT = { name: NAME, visits: VISITS, balance: BALANCE } as const;
/** The note needs at least this many bytes, then `"}\n`. */
export const KV_NOTE_MIN = KV_MIN_RECORD - NOTE! - 3;
if (KV_NOTE_MIN < 8) throw new Error('KV_MIN_RECORD too small for the record layout');

export class Kv implements Workload {
  private readonly picker: PagePicker;
  private readonly slots: number;
  private readonly rb: number;
  private readonly scratch: Uint8Array;
  private commits = 0;

  constructor(private readonly ctx: WorkloadContext) {
    const p = ctx.params;
    this.rb = p.recordBytes;
    this.slots = Math.floor(ctx.pageSize / this.rb);
    this.picker = new PagePicker(p.distribution, ctx.pageCount, p.zipfExponent);
    this.scratch = new Uint8Array(ctx.pageSize);
  }

  init(mem: VcpuMemory, rng: Rng): void {
    const { firstPage, pageCount } = this.ctx;
    for (let i = 0; i < pageCount; i++) {
      const page = firstPage + i;
      const off = mem.open(page);
      for (let s = 0; s < this.slots; s++)
        this.record(mem.buf, off + s * this.rb, page * this.slots + s, rng);
      mem.dirty(page);
    }
  }

  private record(buf: Uint8Array, o: number, key: number, rng: Rng): void {
    let at = o;
    for (const [label, width] of FIELDS) {
      writeText(buf, at, label.length, label);
      at += label.length + width;
    }
    writeDigits(buf, o + KEY, 8, key);
    this.person(buf, o, rng);
    writeText(buf, o + CITY, 16, CITIES[rng.below(CITIES.length)]!);
    writeDigits(buf, o + VISITS, 7, rng.below(1000));
    this.balance(buf, o, rng);
    writeDigits(buf, o + UPDATED, 10, 0);
    // The note: free text from the corpus, kept on one line and away from quotes.
    const text = this.ctx.corpus.text;
    const len = this.rb - NOTE - 3;
    const from = rng.below(text.length - len);
    for (let i = 0; i < len; i++) {
      const ch = text[from + i]!;
      buf[o + NOTE + i] = ch === 0x0a || ch === 0x22 ? 0x20 : ch;
    }
    writeText(buf, o + this.rb - 3, 3, '"}\n');
  }

  private person(buf: Uint8Array, o: number, rng: Rng): void {
    const first = FIRST_NAMES[rng.below(FIRST_NAMES.length)]!;
    const last = LAST_NAMES[rng.below(LAST_NAMES.length)]!;
    writeText(buf, o + NAME, 24, `${first} ${last}`);
    writeText(
      buf,
      o + EMAIL,
      40,
      `${first.toLowerCase()}.${last.toLowerCase()}${rng.below(100)}@example.org`,
    );
  }

  private balance(buf: Uint8Array, o: number, rng: Rng): void {
    writeDigits(buf, o + BALANCE, 7, rng.below(10_000_000));
    buf[o + BALANCE + 7] = 0x2e;
    writeDigits(buf, o + BALANCE + 8, 2, rng.below(100));
  }

  step(mem: VcpuMemory, rng: Rng): void {
    const page = this.ctx.firstPage + this.picker.next(rng);
    const off = mem.open(page);
    const buf = mem.buf;
    this.commits++;
    if (this.ctx.params.wholePageFraction > 0 && rng.float() < this.ctx.params.wholePageFraction) {
      // Compaction: every record moves one slot down (the last wraps to the first), stamped with this commit.
      const used = this.slots * this.rb;
      const s = this.scratch;
      s.set(buf.subarray(off, off + used));
      buf.set(s.subarray(used - this.rb, used), off);
      buf.set(s.subarray(0, used - this.rb), off + this.rb);
      for (let i = 0; i < this.slots; i++) writeDigits(buf, off + i * this.rb + UPDATED, 10, this.commits);
    } else {
      const o = off + rng.below(this.slots) * this.rb;
      const op = rng.below(100);
      if (op < 70) {
        let visits = 0;
        for (let i = 0; i < 7; i++) visits = visits * 10 + (buf[o + VISITS + i]! - 0x30);
        writeDigits(buf, o + VISITS, 7, (visits + 1) % 10_000_000);
      } else if (op < 90) {
        this.balance(buf, o, rng);
      } else if (op < 97) {
        writeText(buf, o + CITY, 16, CITIES[rng.below(CITIES.length)]!);
      } else {
        this.person(buf, o, rng);
      }
      writeDigits(buf, o + UPDATED, 10, this.commits);
    }
    mem.dirty(page);
  }

  registers(): Record<string, number> {
    return { cursor: this.picker.cursor, commits: this.commits };
  }

  setRegisters(given: Readonly<Record<string, number>>): void {
    const r = readRegisters(given, ['cursor', 'commits'] as const);
    if (r.cursor < 0 || r.cursor >= this.ctx.pageCount)
      throw new RangeError(`kv cursor ${r.cursor} out of range`);
    this.picker.cursor = r.cursor;
    this.commits = r.commits;
  }
}
