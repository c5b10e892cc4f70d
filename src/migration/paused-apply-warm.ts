/**
 * Warms the destination's own page-apply path (walk a PAGES payload, decode each entry into RAM, CRC the page for
 * the ledger) on its main thread, where it runs only while the guest is paused: the stop-and-copy's last pages,
 * which come after VCPU_STATE, are applied there instead of on the page-sink thread (destination.ts,
 * pausedLastPages). In pre-copy every other page is applied by the sink thread, so without this the main thread's
 * copy of that code is cold at the switch-over: V8 interprets it, and XBZRLE's decode loop is a byte-at-a-time loop.
 * Measured on the 2-core test machine, 60 XBZRLE deltas of ~320 bytes took 1.4–2.9 ms to decode and CRC cold
 * against 0.1–0.4 ms warm; hot-last with XBZRLE sends its held pages exactly there, as such deltas (issue 17,
 * point 5: on gap-128MiB the destination's "VCPU_STATE → SWITCHOVER" step was 1.7–4.9 ms for 50–65 pages).
 *
 * The destination runs its own apply function on a scratch page and ledger (in a SharedArrayBuffer, as guest RAM
 * is) as each round ends, while the guest still runs, enough times for V8 to compile it (its bytecode flushing
 * drops code that has not run for a while, so once per migration is not enough).
 */
import { encodeXbzrle } from '../codec/index.js';
import { PageLedger } from './ledger.js';
import {
  forEachPageEntry,
  PAGE_ENTRY_HEADER_BYTES,
  PAGES_COUNT_BYTES,
  PageEncoding,
  writePageEntryHeader,
} from './protocol/index.js';

/**
 * Sample payloads walked per warm-up (32 entries each). Measured on the 2-core machine in a fresh process, 60 real
 * deltas then took 0.2–0.3 ms to apply (median of 7) against 4.7 ms cold, and 0.9 ms when the warm-up walked the
 * same entries with a callback of its own: the destination's walk calls its own apply function, and a walk
 * compiled for another one is thrown away at its first real call. So the warm-up must run the destination's own
 * apply function (destination.ts, warmApply), on a scratch page and ledger.
 */
export const WARM_PAYLOADS = 8;
/** Entries per sample PAGES payload. */
const ENTRIES_PER_PAYLOAD = 32;

/** Where a warm-up's pages go instead of the guest's RAM and ledger: never the guest's. */
export interface WarmTarget {
  /** The sample PAGES payload: XBZRLE deltas for page 0, a changed byte every 16 (many short runs). */
  payload: Buffer;
  /** A scratch page (in a SharedArrayBuffer, as guest RAM is). */
  page: Uint8Array;
  /** A one-page ledger for the scratch page's CRC. */
  ledger: PageLedger;
  pageSize: number;
}

const targets = new Map<number, WarmTarget>();

/** The warm-up's sample and scratch for `pageSize` (built once per page size, shared: warming is synchronous). */
export function warmTarget(pageSize: number): WarmTarget {
  const known = targets.get(pageSize);
  if (known) return known;
  const before = new Uint8Array(pageSize);
  const after = new Uint8Array(pageSize);
  for (let i = 0; i < pageSize; i += 16) after[i] = 1 + ((i >> 4) & 0x7f);
  const delta = encodeXbzrle(before, after, pageSize) ?? new Uint8Array(0);
  const entry = PAGE_ENTRY_HEADER_BYTES + delta.length;
  const payload = Buffer.alloc(PAGES_COUNT_BYTES + ENTRIES_PER_PAYLOAD * entry);
  payload.writeUInt32BE(ENTRIES_PER_PAYLOAD, 0);
  for (let i = 0; i < ENTRIES_PER_PAYLOAD; i++) {
    const at = PAGES_COUNT_BYTES + i * entry;
    writePageEntryHeader(payload, at, 0, PageEncoding.XBZRLE, delta.length);
    payload.set(delta, at + PAGE_ENTRY_HEADER_BYTES);
  }
  const t: WarmTarget = {
    payload,
    page: new Uint8Array(new SharedArrayBuffer(pageSize)),
    ledger: new PageLedger(1, pageSize, true),
    pageSize,
  };
  targets.set(pageSize, t);
  return t;
}

/**
 * Walks the sample payload `payloads` times with `visit` (the destination's own apply function, which sends the
 * pages to `t` while `t` is its warm target). Returns the entries walked; never throws: warming is best effort, a
 * real error shows on the real path.
 */
export function warmPausedApply(
  t: WarmTarget,
  visit: (page: number, encoding: PageEncoding, data: Buffer) => void,
  payloads = WARM_PAYLOADS,
): number {
  let done = 0;
  try {
    for (let i = 0; i < payloads; i++) done += forEachPageEntry(t.payload, 1, t.pageSize, visit);
  } catch {
    // (a real error shows on the real path)
  }
  return done;
}
