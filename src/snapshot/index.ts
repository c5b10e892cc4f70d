/**
 * Live snapshots of a guest to a file and their restore (QEMU's background-snapshot with the mapped-ram layout;
 * Firecracker's snapshots): docs/snapshot.md.
 */
export {
  buildSnapshot,
  decodeSnapshotHeader,
  decodeSnapshotPrefix,
  MAX_SNAPSHOT_HEADER_BYTES,
  parseSnapshot,
  SNAPSHOT_MAGIC,
  SNAPSHOT_VERSION,
  SnapshotError,
  type SnapshotHeader,
  type SnapshotLayout,
  snapshotLayout,
} from './format.js';
export {
  type OpenedSnapshot,
  openSnapshot,
  type RestoreOptions,
  type RestoreResult,
  restoreSnapshot,
} from './read.js';
export { type SnapshotOptions, type SnapshotResult, writeSnapshot } from './write.js';
