/**
 * The recording a `trace` guest replays, as shared memory: read from the operator's file once when the guest is
 * created (instead of once per vCPU thread), or taken as received by a migration (then no file is opened).
 */
import { UsageError } from '../errors.js';
import { readTraceFile, rememberTraceFacts, traceFacts } from '../trace/facts.js';
import { traceChecksum } from '../trace/format.js';
import type { ResolvedGuestConfig } from './config.js';

/** A copy of `bytes` in a SharedArrayBuffer (vCPU threads read it without copies of their own). */
export function sharedTrace(bytes: Uint8Array): Uint8Array {
  const shared = new Uint8Array(new SharedArrayBuffer(bytes.length));
  shared.set(bytes);
  return shared;
}

/**
 * The trace file of a resolved config, read into shared memory and checked against the config's traceCrc (the file
 * may have changed since it was resolved); undefined for other workloads.
 */
export function guestTrace(config: ResolvedGuestConfig): Uint8Array | undefined {
  if (config.workload.name !== 'trace') return undefined;
  const { traceFile = '', traceCrc } = config.workload.params;
  const { bytes } = readTraceFile(traceFile);
  if (traceChecksum(bytes) !== traceCrc) {
    throw new UsageError(
      `trace ${traceFile} changed while the guest was being created; try again`,
      'workload',
    );
  }
  const shared = sharedTrace(bytes);
  // The config was resolved from this very file (cached by path): loadState checks the bytes without re-reading.
  rememberTraceFacts(shared, traceFacts(traceFile));
  return shared;
}
