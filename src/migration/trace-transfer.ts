/**
 * A `trace` guest migrates with its recording: HELLO's guest JSON announces `trace: { bytes }`, and right after
 * HELLO_ACK the source sends the trace file's bytes in TRACE frames. The destination replays what it received
 * (checked against the config's traceCrc and by the trace parser), never a file a peer names: the workload's
 * `traceFile` only says where the guest was created.
 */
import { CodecError, MigrationError } from '../errors.js';
import { TraceReader, traceChecksum } from '../trace/format.js';
import type { FrameConnection } from './connection.js';
import { Command } from './protocol/index.js';

/** Largest trace a guest may carry over a migration (the shipped traces are 0.7-1.6 MB). */
export const MAX_MIGRATED_TRACE_BYTES = 64 << 20;
/** Bytes of trace per TRACE frame. */
const TRACE_CHUNK_BYTES = 1 << 20;

/** Sends `bytes` in TRACE frames (after HELLO_ACK). */
export async function sendTrace(conn: FrameConnection, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length; off += TRACE_CHUNK_BYTES) {
    await conn.sendFrame(Command.TRACE, bytes.subarray(off, Math.min(bytes.length, off + TRACE_CHUNK_BYTES)));
  }
}

/**
 * The size HELLO's guest JSON announces for a trace guest, or a PROTOCOL error. The same error for every refused
 * trace, whatever file name the config gives: nothing here looks at a file.
 */
export function announcedTraceBytes(trace: unknown): number {
  const n = (trace as { bytes?: unknown } | undefined)?.bytes;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1 || n > MAX_MIGRATED_TRACE_BYTES) {
    throw new MigrationError(
      'PROTOCOL',
      `HELLO: a trace guest must carry its trace in the stream (guest.trace.bytes, 1..${MAX_MIGRATED_TRACE_BYTES})`,
    );
  }
  return n;
}

/** Receives exactly `size` bytes of trace in TRACE frames. */
export async function receiveTrace(conn: FrameConnection, size: number, timeoutMs: number): Promise<Buffer> {
  const out = Buffer.alloc(size);
  let at = 0;
  while (at < size) {
    const f = await conn.expect(Command.TRACE, timeoutMs);
    if (f.payload.length === 0 || at + f.payload.length > size) {
      throw new MigrationError(
        'PROTOCOL',
        `TRACE: ${f.payload.length} bytes after ${at} of the ${size} announced in HELLO`,
      );
    }
    f.payload.copy(out, at);
    at += f.payload.length;
  }
  return out;
}

/** A received trace must be the one the config names (its traceCrc) and one the trace parser reads. */
export function checkReceivedTrace(bytes: Buffer, traceCrc: unknown): void {
  if (traceChecksum(bytes) !== traceCrc) {
    throw new MigrationError(
      'PROTOCOL',
      "TRACE: the trace received does not match the guest config's traceCrc",
    );
  }
  try {
    TraceReader.open(bytes);
  } catch (err) {
    if (!(err instanceof CodecError)) throw err;
    throw new MigrationError('PROTOCOL', `TRACE: not a trace this agent can replay (${err.message})`);
  }
}
