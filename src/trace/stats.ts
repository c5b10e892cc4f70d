/**
 * What a trace says about its program: how many pages, how fast they are dirtied, how hot the hot set is, and how
 * well its pages compress — raw, deflated (a first send), and as XBZRLE deltas against the previous version (a
 * resend). Computed by replaying the trace into a map of the pages it touches (never the whole declared space).
 */
import { deflateRawSync } from 'node:zlib';
import { encodeXbzrle } from '../codec/index.js';
import type { TraceHeader, TraceReader } from './format.js';

export interface TraceStats {
  header: TraceHeader;
  fileBytes: number;
  records: number;
  /** Timestamp of the last record. */
  durationMs: number;
  /** Non-zero pages in the first snapshot. */
  snapshotPages: number;
  /** Page writes after the snapshot (a page dirtied in k intervals counts k times). */
  dirtyPages: number;
  /** Distinct pages dirtied at least once after the snapshot. */
  distinctDirtyPages: number;
  /** Dirtied pages per second of recording. */
  dirtyPagesPerSecond: number;
  /** Median pages dirtied per interval. */
  medianDirtyPerInterval: number;
  /** Share of page writes that went to the hottest 10% of the dirtied pages. */
  hottestTenthShare: number;
  /** Median bytes that differ in a dirtied page. */
  medianChangedBytes: number;
  /** Raw bytes of every page the trace carries (snapshot + dirtied) over the trace file's bytes. */
  fileRatio: number;
  /** Snapshot pages: raw bytes over deflate (level 1, per page) — a first send. */
  snapshotDeflateRatio: number;
  /** Dirtied pages: raw bytes over XBZRLE bytes against the previous version (overflows sent raw). */
  xbzrleRatio: number;
}

function median(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export function traceStats(trace: TraceReader): TraceStats {
  const { header } = trace;
  const pageSize = header.pageSize;
  const current = new Map<number, Uint8Array>();
  const writes = new Map<number, number>();
  const perInterval: number[] = [];
  const changed: number[] = [];
  let snapshotPages = 0;
  let snapshotDeflated = 0;
  let dirtyPages = 0;
  let xbzrleBytes = 0;
  let rawPages = 0;
  for (let r = 0; r < trace.records.length; r++) {
    if (r > 0) perInterval.push(trace.records[r]!.pageCount);
    trace.forEachPage(r, (page, delta) => {
      rawPages++;
      const old = current.get(page) ?? new Uint8Array(pageSize);
      const next = new Uint8Array(pageSize);
      let diff = 0;
      for (let i = 0; i < pageSize; i++) {
        next[i] = old[i]! ^ delta[i]!;
        if (delta[i] !== 0) diff++;
      }
      current.set(page, next);
      if (r === 0) {
        snapshotPages++;
        snapshotDeflated += Math.min(pageSize, deflateRawSync(next, { level: 1 }).length);
        return;
      }
      dirtyPages++;
      changed.push(diff);
      writes.set(page, (writes.get(page) ?? 0) + 1);
      xbzrleBytes += encodeXbzrle(old, next, pageSize)?.length ?? pageSize;
    });
  }
  const counts = [...writes.values()].sort((a, b) => b - a);
  const tenth = Math.max(1, Math.ceil(counts.length / 10));
  const hot = counts.slice(0, tenth).reduce((s, c) => s + c, 0);
  const durationMs = trace.records.at(-1)?.timestampMs ?? 0;
  return {
    header,
    fileBytes: trace.fileLength,
    records: trace.records.length,
    durationMs,
    snapshotPages,
    dirtyPages,
    distinctDirtyPages: writes.size,
    dirtyPagesPerSecond: durationMs > 0 ? (dirtyPages * 1000) / durationMs : 0,
    medianDirtyPerInterval: median(perInterval),
    hottestTenthShare: dirtyPages > 0 ? hot / dirtyPages : 0,
    medianChangedBytes: median(changed),
    fileRatio: trace.fileLength > 0 ? (rawPages * pageSize) / trace.fileLength : 0,
    snapshotDeflateRatio: snapshotDeflated > 0 ? (snapshotPages * pageSize) / snapshotDeflated : 0,
    xbzrleRatio: xbzrleBytes > 0 ? (dirtyPages * pageSize) / xbzrleBytes : 0,
  };
}
