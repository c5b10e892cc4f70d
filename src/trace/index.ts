/**
 * Traces of real programs: how a process's memory changed, interval by interval, recorded from /proc and replayed
 * as a guest workload (`trace:FILE`). See docs/traces.md.
 */

export { recordedDurationMs, recordedWriteTime, type TraceFacts, traceFacts } from './facts.js';
export {
  decodeHeader,
  encodeHeader,
  MAX_CHUNK_BYTES,
  MAX_TRACE_PAGES,
  type RecordEntry,
  TRACE_COMPRESSIONS,
  TRACE_MAGIC,
  TRACE_METHODS,
  TRACE_VERSION,
  type TraceCompression,
  type TraceEffort,
  type TraceHeader,
  type TraceHeaderInit,
  type TraceMeta,
  type TraceMethod,
  TraceReader,
  traceChecksum,
} from './format.js';
export { type Mapping, PM_PRESENT, PM_SOFT_DIRTY, PM_SWAPPED, ProcessMemory, parseMaps } from './procfs.js';
export { Recorder, type RecorderOptions, type RecordingSummary, type SnapshotInfo } from './recorder.js';
export { type TraceStats, traceStats } from './stats.js';
export { packTrace, TraceFileWriter, TraceWriter } from './writer.js';
