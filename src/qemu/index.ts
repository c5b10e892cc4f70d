/**
 * The QEMU bridge: a QMP client, a test VM built from Debian packages, and QEMU-driven migrations.
 */

export * from './cgroup.js';
export * from './cpio.js';
export * from './migrate.js';
export * from './qmp.js';
export * from './testvm.js';
