/**
 * The data-centre simulator: energy-aware VM consolidation by live migration on utilisation traces, with CloudSim
 * 3.0.3 compatibility (`mode: 'cloudsim'`) and a corrected model priced by the pre-copy model (`mode: 'livemig'`).
 */

export {
  isPlanetlabDay,
  loadPlanetlabDay,
  PLANETLAB_DAYS,
  type PlanetlabDay,
  planetlabDataDir,
  planetlabDayFile,
} from './bundled.js';
export {
  type Datacenter,
  DEFAULT_PRICING,
  FIX_NAMES,
  fixesFor,
  type HostType,
  HP_ML110_G4,
  HP_ML110_G5,
  type MeasuredPrices,
  type MigrationPricing,
  PLANETLAB_VM_TYPES,
  type PolicySpec,
  parsePolicy,
  planetlabDatacenter,
  policyLabel,
  type SimFixes,
  type SimMode,
  type SimOptions,
  type VmType,
  vmTypesByBlocks,
} from './config.js';
export {
  checkInterval,
  loadCsvDir,
  loadCsvFile,
  parseCsvColumns,
  parseCsvVm,
  resample,
  SIM_INTERVAL_SECONDS,
} from './csv.js';
export {
  distributionOf,
  HISTORY_LENGTH,
  type MeasuredState,
  migrationLogLines,
  type PlannedMigration,
  PlanningSession,
  type SimDecision,
  type SimDistribution,
  type SimResult,
  type SimSeries,
  simulate,
} from './engine/index.js';
export {
  type BaselineKind,
  DEFAULT_SAFETY,
  isOverloaded,
  type OverloadKind,
  type OverloadPolicy,
  predictUtilisation,
  type SelectionKind,
  selectMaximumCorrelation,
  selectMinimumMigrationTime,
  selectMinimumUtilisation,
  selectRandom,
} from './policies.js';
export {
  bundledProfilesFile,
  loadBundledProfiles,
  parseSimProfileSet,
  profileFor,
  type SimProfileClass,
  type SimProfileSet,
  scaleProfile,
  simProfileSetSchema,
  TRACE_CLASSES,
  type TraceClass,
  traceClassOf,
} from './profiles.js';
export {
  medianTable,
  migrationDistributionTable,
  RESULT_COLUMNS,
  resultRow,
  SERIES_COLUMNS,
  seriesRows,
  simReport,
} from './report.js';
export { medianOf, medians, runJob, runJobs, type SimJob, startSimWorker } from './run.js';
export { loadTraceSource, loadTraceSourceCached, resolveTraces, type TraceSource } from './sources.js';
export { iqr, linearFit, mad, median, rSquared } from './stats.js';
export { TraceFormatError, type TracePlace } from './trace-error.js';
export {
  decodeTracePack,
  encodeTracePack,
  loadTracePack,
  TRACE_PACK_EXT,
  workloadDigest,
} from './tracepack.js';
export {
  loadTraceDir,
  parseCloudSimTrace,
  syntheticWorkload,
  type Workload,
  workloadStats,
} from './workload.js';
