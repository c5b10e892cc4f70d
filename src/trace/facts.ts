/**
 * What a trace file says about the program it recorded, read and checked once: its header, checksum, the pages
 * written after the snapshot and the recording's timing. The guest's `trace` workload (guest/workloads/trace.ts)
 * replays a trace from these facts; they know nothing of guests.
 */
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { CodecError, UsageError } from '../errors.js';
import { type RecordEntry, type TraceHeader, TraceReader, traceChecksum } from './format.js';

/**
 * When the (j+1)-th of record r's `count` page writes was made, in ms after the snapshot. A record holds what changed
 * since the one before, so its writes are spread evenly over that interval (the recorder saw no finer timing).
 */
export function recordedWriteTime(
  records: readonly RecordEntry[],
  r: number,
  j: number,
  count: number,
): number {
  const t0 = records[0]!.timestampMs;
  const from = Math.max(0, records[r - 1]!.timestampMs - t0);
  const span = Math.max(0, records[r]!.timestampMs - t0 - from);
  return from + (span * (j + 1)) / count;
}

/** The recording's length in ms after its snapshot: the trace time of one forward walk of a replay. */
export function recordedDurationMs(records: readonly RecordEntry[]): number {
  return Math.max(0, (records.at(-1)?.timestampMs ?? 0) - (records[0]?.timestampMs ?? 0));
}

/** What a guest config needs to know about a trace file. */
export interface TraceFacts {
  path: string;
  header: TraceHeader;
  crc: number;
  /** Page writes after the snapshot. */
  dirtyPages: number;
  /** The distinct pages written after the snapshot, ascending. */
  dirtied: Uint32Array;
  durationMs: number;
  /** Mean recorded dirty rate, pages per second (0 if the trace has no interval). */
  dirtyPagesPerSecond: number;
}

const factsCache = new Map<string, { key: string; facts: TraceFacts }>();
/** Facts of trace bytes held in memory (a guest's own trace, one that arrived by migration), by identity. */
const bytesFacts = new WeakMap<Uint8Array, TraceFacts>();

/** Largest trace file a guest replays (read whole, once, when the guest is created), and carries when it migrates. */
export const MAX_TRACE_BYTES = 256 << 20;

function unreadable(path: string, why: string): UsageError {
  return new UsageError(
    `trace ${path}: cannot read it (${why}); record one with \`livemig trace record\` or use a shipped one under traces/`,
    'workload',
  );
}

/** Stats a trace file: a regular file of at most MAX_TRACE_BYTES. Throws UsageError naming the file. */
function statTrace(path: string): { key: string } {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch (err) {
    throw unreadable(path, (err as NodeJS.ErrnoException).code ?? String(err));
  }
  // Not a FIFO or a device: reading one could block or never end.
  if (!st.isFile()) throw unreadable(path, 'not a regular file');
  if (st.size > MAX_TRACE_BYTES) throw unreadable(path, `larger than ${MAX_TRACE_BYTES} bytes`);
  return { key: `${st.size}:${st.mtimeMs}` };
}

/** Reads a whole trace file (a regular file of at most MAX_TRACE_BYTES). Throws UsageError naming the file. */
export function readTraceFile(file: string): { path: string; bytes: Buffer } {
  const path = resolve(file);
  statTrace(path);
  try {
    return { path, bytes: readFileSync(path) };
  } catch (err) {
    throw unreadable(path, (err as NodeJS.ErrnoException).code ?? String(err));
  }
}

/** Reads and checks a trace file (cached by path, size and mtime). Throws UsageError naming the file. */
export function traceFacts(file: string): TraceFacts {
  const path = resolve(file);
  const { key } = statTrace(path);
  const hit = factsCache.get(path);
  if (hit && hit.key === key) return hit.facts;
  const facts = factsOf(readTraceFile(path).bytes, path);
  factsCache.set(path, { key, facts });
  return facts;
}

/** Checks trace bytes held in memory; `label` names them in errors and becomes `facts.path`. Throws UsageError. */
export function traceFactsOf(bytes: Uint8Array, label: string): TraceFacts {
  const hit = bytesFacts.get(bytes);
  if (hit && hit.path === label) return hit;
  const facts = factsOf(bytes, label);
  bytesFacts.set(bytes, facts);
  return facts;
}

/** Records that `bytes` are the trace `facts` describe (read from facts.path), so checking them again is free. */
export function rememberTraceFacts(bytes: Uint8Array, facts: TraceFacts): void {
  bytesFacts.set(bytes, facts);
}

function factsOf(bytes: Uint8Array, path: string): TraceFacts {
  let reader: TraceReader;
  try {
    reader = TraceReader.open(bytes);
  } catch (err) {
    if (err instanceof CodecError) throw new UsageError(`${path}: ${err.message}`, 'workload');
    throw err;
  }
  let dirtyPages = 0;
  const distinct = new Set<number>();
  try {
    for (let r = 1; r < reader.records.length; r++) {
      dirtyPages += reader.records[r]!.pageCount;
      for (const p of reader.pages(r)) distinct.add(p);
    }
  } catch (err) {
    if (err instanceof CodecError) throw new UsageError(`${path}: ${err.message}`, 'workload');
    throw err;
  }
  const durationMs = recordedDurationMs(reader.records);
  return {
    path,
    header: reader.header,
    crc: traceChecksum(bytes),
    dirtyPages,
    dirtied: Uint32Array.from(distinct).sort(),
    durationMs,
    dirtyPagesPerSecond: durationMs > 0 ? (dirtyPages * 1000) / durationMs : 0,
  };
}
