/**
 * `POST /v1/guests/:id/dirty-log`: syncs a guest's dirty log (fetch-and-clear, as a migration round does) and
 * returns the pages written since the previous sync. What `livemig profile --agent` reads to measure a running
 * guest's working set; it disturbs the guest no more than that sync (no pause, no copy of RAM). Refused while the
 * guest migrates: the migration owns the log then.
 */
import { MigrationError } from '../errors.js';
import type { Guest } from '../guest/index.js';

export interface DirtyLogSync {
  /** When the sync happened, ms since the Unix epoch (fractional), on the agent's clock. */
  at: number;
  /** Number of pages in `pages`. */
  count: number;
  /** The dirty page numbers, ascending, as little-endian uint32, base64. */
  pages: string;
}

export function syncDirtyLog(h: { id: string; guest: Guest; migrating?: string }): DirtyLogSync {
  if (h.migrating) {
    throw new MigrationError(
      'GUEST_BUSY',
      `guest ${h.id} is being migrated (${h.migrating}); its dirty log belongs to the migration until it ends`,
    );
  }
  const pages = h.guest.dirtyLog.sync();
  const at = performance.timeOrigin + performance.now();
  return {
    at,
    count: pages.length,
    pages: Buffer.from(pages.buffer, pages.byteOffset, pages.byteLength).toString('base64'),
  };
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
