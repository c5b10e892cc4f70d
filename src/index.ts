/**
 * livemig's public surface. Each folder's index.ts is that folder's whole public API; this file gathers them.
 */
export * from './cache/index.js';
export * from './codec/index.js';
export * from './errors.js';
export * from './guest/index.js';
export * from './power/index.js';
export * from './qemu/index.js';
export * from './report/index.js';
export * from './sim/index.js';
export * from './units.js';
