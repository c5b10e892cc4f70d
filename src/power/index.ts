/** Host power: models (linear, SPECpower tables, DVFS), the CPU-time probe (`cputime.ts`) and RAPL counters (`rapl.ts`). */
export * from './cputime.js';
export {
  type DvfsPowerModel,
  type DvfsState,
  dvfsCpuModel,
  i7920DvfsModel,
  linearPowerModel,
  type PowerModel,
  SPECPOWER_TABLES,
  type SpecPowerServer,
  type SpecPowerTable,
  specPowerModel,
  specPowerServer,
} from './models.js';
export * from './rapl.js';
