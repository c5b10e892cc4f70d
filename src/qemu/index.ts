/**
 * The QEMU bridge: a QMP client, a test VM built from Debian packages, QEMU-driven migrations reported as livemig's
 * MigrationReport with livemig's policies (cache sizing, stall and non-convergence actions, CAP, DVFS, power).
 */

export * from './cgroup.js';
export * from './cpio.js';
export * from './cpufreq.js';
export * from './migrate.js';
export * from './qmp.js';
export {
  applyQueryMigrate,
  emptyQemuReport,
  isQemuReport,
} from './report.js';
export * from './testvm.js';
export * from './xbzrle-sizing.js';
