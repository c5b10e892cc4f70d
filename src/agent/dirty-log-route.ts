/**
 * `POST /v1/guests/:id/dirty-log`: syncs a guest's dirty log (fetch-and-clear, as a migration round does) and
 * returns the pages written since the previous sync. What `livemig profile --agent` reads to measure a running
 * guest's working set; it disturbs the guest no more than that sync (no pause, no copy of RAM). Refused while the
 * guest migrates: the migration owns the log then.
 */
import { MigrationError } from '../errors.js';
import type { DirtyLogSync } from '../guest/dirty-log-sync.js';
import type { Guest } from '../guest/index.js';

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
