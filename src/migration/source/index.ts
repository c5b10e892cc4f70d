/**
 * The migration source, one file per job: lifecycle.ts (start, cancel, timeout, failure), handshake.ts,
 * page-encoder.ts (QEMU-style savers tried in order), cache-sizing.ts (XBZRLE cache admission and sizing),
 * hot-last.ts (page order), send-pages.ts, precopy.ts (cold and the pre-copy loop), handover.ts (switch-over, GO,
 * RECONCILE) and postcopy.ts (push and recovery). state.ts holds what they share.
 */
export { mergeSorted } from './hot-last.js';
export { newMigrationId, runSource } from './lifecycle.js';
export type { SourceRun } from './run.js';
