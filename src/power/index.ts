/**
 * Power: host power models (linear, SPECpower tables, DVFS), per-thread CPU time and RAPL probes, the meter that
 * turns real CPU time into a power time series, capping policies (DVFS, CAP, the adaptive CAP controller), and the
 * per-host power service an agent runs (docs/power.md).
 */
export {
  type ControllerDecision,
  capForBudget,
  capForCompletion,
  chooseDvfsState,
  controllerStep,
  type HostLoad,
  predictWatts,
  type RoundView,
} from './capping.js';
export {
  currentThreadId,
  type ProcStat,
  parseProcStat,
  processCpuTimeMs,
  processCpuTimes,
  type ThreadCpuTime,
  threadCpuMs,
  threadCpuTimes,
  threadIds,
} from './cputime.js';
export type {
  EnergyFigure,
  MigrationEnergy,
  MigrationEnergyCost,
  PowerBudgetReport,
  PowerDecisionRow,
  PowerPoint,
  VmProgress,
} from './energy.js';
export { type HostedGuestRef, HostPower, type HostPowerOptions, withModel } from './host.js';
export {
  energyOver,
  type FigureLabel,
  type GuestSample,
  type GuestWindow,
  type HostView,
  type MeteredGuest,
  type MeterOptions,
  PowerMeter,
  type PowerSample,
  type PowerSeries,
  SERIES_LABELS,
  windowOver,
} from './meter.js';
export { MigrationPowerSession } from './migration-session.js';
export {
  type DvfsPowerModel,
  type DvfsState,
  dvfsCpuModel,
  hostPowerModel,
  i7920DvfsModel,
  isDvfsModel,
  linearPowerModel,
  POWER_MODEL_NAMES,
  type PowerModel,
  type PowerModelName,
  SPECPOWER_TABLES,
  type SpecPowerServer,
  type SpecPowerTable,
  specPowerModel,
  specPowerServer,
  wattsAt,
} from './models.js';
export { energyDeltaUj, type RaplReading, type RaplZone, readRapl } from './rapl.js';
export { fetchPowerSeries } from './remote-energy.js';
export {
  CAP_CONTROLS,
  CAPPING_MODES,
  type CapControl,
  type CappingMode,
  type PowerRound,
  type PowerSessionOptions,
  type PowerSessionReport,
} from './session-view.js';
