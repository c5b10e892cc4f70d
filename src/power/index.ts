/** Host power models (linear, SPECpower tables, DVFS). The CPU-time probe lives in `cputime.ts`. */
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
