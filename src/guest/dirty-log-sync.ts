/**
 * A dirty-log sync as JSON (the agent's `POST /v1/guests/:id/dirty-log` answers one) and its decoding on the client
 * side. Here, with the dirty log, so that the agent that sends it and the profiler that reads it
 * (profile/profile.ts) share the format without the profiler importing the agent.
 */
import { MigrationError } from '../errors.js';

export interface DirtyLogSync {
  /** When the sync happened, ms since the Unix epoch (fractional), on the agent's clock. */
  at: number;
  /** Number of pages in `pages`. */
  count: number;
  /** The dirty page numbers, ascending, as little-endian uint32, base64. */
  pages: string;
}

/** The page numbers of a DirtyLogSync (client side), checked against the guest's page count. */
export function dirtyPagesOf(s: DirtyLogSync, ramPages: number): Uint32Array {
  const bytes = Buffer.from(s.pages, 'base64');
  if (bytes.length !== s.count * 4) {
    throw new MigrationError('PROTOCOL', `dirty-log: ${bytes.length} bytes for ${s.count} pages`);
  }
  const out = new Uint32Array(s.count);
  for (let i = 0; i < s.count; i++) {
    const p = bytes.readUInt32LE(i * 4);
    if (p >= ramPages)
      throw new MigrationError('PROTOCOL', `dirty-log: page ${p} beyond RAM (${ramPages} pages)`);
    out[i] = p;
  }
  return out;
}
