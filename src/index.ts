/**
 * livemig's public surface (docs/api.md). Each folder's index.ts is that folder's whole public API; this file gathers
 * the folders a program embedding livemig needs. Each folder is also its own subpath (`livemig/agent`,
 * `livemig/sim`, …, see package.json `exports`); the fault-injection proxy (`livemig/faults`) and the dashboard's
 * event stream (`livemig/web`) are reachable only there, because they are tools around a migration rather than parts
 * of one and their names would clash here (`Cell`, `isLoopback`).
 */
export * from './agent/index.js';
export * from './cache/index.js';
export * from './codec/index.js';
export * from './errors.js';
export * from './experiments/index.js';
export * from './guest/index.js';
export * from './migration/index.js';
export * from './power/index.js';
export * from './profile/index.js';
export * from './qemu/index.js';
export * from './report/index.js';
export * from './sim/index.js';
export * from './snapshot/index.js';
export * from './trace/index.js';
export * from './units.js';
export { VERSION } from './version.js';
