/**
 * The QEMU bridge: a QMP client, a test VM built from Debian packages, QEMU-driven migrations reported as livemig's
 * MigrationReport with livemig's policies (cache sizing, stall and non-convergence actions, CAP, DVFS, power).
 * The initramfs writer (cpio.ts) and the cpufreq and cache-size helpers stay inside: `migrateQemu` applies them.
 */

export { type CpuCap, type CpuCgroup, capQemu, detectCpuCgroup } from './cgroup.js';
export { migrateQemu, type QemuMigrateOptions, waitRunning } from './migrate.js';
export {
  formatQmpAddress,
  parseQmpAddress,
  type QmpAddress,
  QmpClient,
  QmpClosedError,
  type QmpCommands,
  type QmpConnectOptions,
  QmpError,
  type QmpEvent,
  type QmpGreeting,
  type QmpMigrationInfo,
  type QmpMigrationRam,
  type QmpMigrationStatus,
  QmpProtocolError,
  type QmpStatusInfo,
  QmpTimeoutError,
  type QmpXbzrleCache,
} from './qmp.js';
export {
  applyQueryMigrate,
  emptyQemuReport,
  isQemuReport,
  type QemuExtras,
  type QemuMigrationReport,
} from './report.js';
export {
  checkQemuSnapshotFile,
  type QemuRestoreOptions,
  type QemuRestoreReport,
  type QemuSnapshotOptions,
  type QemuSnapshotReport,
  restoreQemu,
  snapshotQemu,
} from './snapshot.js';
export {
  type BuildOptions as TestVmBuildOptions,
  buildTestVm,
  defaultCacheDir,
  findQemu,
  type GuestConsole,
  type GuestSweep,
  type GuestWorkload as TestVmWorkload,
  parseGuestConsole,
  type QemuInfo,
  qemuUnfitReason,
  type RunningTestVm,
  readGuestConsole,
  type StartOptions as TestVmStartOptions,
  startTestVm,
  type TestVmImage,
  testVmArgs,
  waitForConsole,
} from './testvm.js';
