/**
 * Migration: the protocol, the connection, the source and destination sides, options and policies, and the
 * report. The protocol is described in docs/protocol.md and at the top of protocol/wire.ts.
 */

export { FrameConnection, type SendPacer } from './connection.js';
export {
  DEFAULT_DESTINATION_LIMITS,
  type DestinationHooks,
  type DestinationLimits,
  type IncomingMigration,
  type PausedIncoming,
  runDestination,
} from './destination.js';
export type { DirtyLimitReport, GuestReads } from './dirty-limit-report.js';
export {
  type DowntimeDistribution,
  describeDowntime,
  downtimeDistribution,
  PRODUCTION_ANCHOR,
} from './downtime-distribution.js';
export { combineCrcs, fullRamDigest, PageLedger, vcpuDigest } from './ledger.js';
export {
  cloudsimMigrationTime,
  DEFAULT_ENGINE_COSTS,
  type EngineCosts,
  type PrecopyInput,
  type PrecopyPrediction,
  type PredictedRound,
  precopyClosedForm,
  predictFromProfile,
  predictPrecopy,
} from './model.js';
export {
  CAPPING_MODES,
  type CappingMode,
  COMPRESS_METHODS,
  type CompressMethod,
  DEFAULT_OPTIONS,
  type DowntimeRamp,
  downtimeRampSchema,
  type MigrationOptions,
  migrationOptionsSchema,
  NON_CONVERGENCE_ACTIONS,
  type NonConvergenceAction,
  PAGE_ORDERS,
  type PageOrder,
  PRESETS,
  type Preset,
  presetOptions,
  resolveOptions,
  STRATEGIES,
  type Strategy,
  VERIFY_METHODS,
  type VerifyMethod,
} from './options.js';
export { PageSinkPool } from './page-sink.js';
export {
  admitToCache,
  admittedCacheGrowth,
  autoConvergeStep,
  type CacheRoundSample,
  type ConvergenceState,
  type Decision,
  decideAfterRound,
  dirtyRate,
  expectedDowntimeMs,
  initialAdmittedCacheSize,
  initialCacheSize,
  isNotConverging,
  isStalled,
  nextCacheSize,
  type RoundSample,
  stopRules,
  throttleToCap,
} from './policy.js';
export * as protocol from './protocol/index.js';
export { TokenBucket } from './ratelimit.js';
export {
  abortCode,
  type DowntimeRaise,
  decideRound,
  doubledLimit,
  initialRoundState,
  MAX_DOWNTIME_LIMIT_MS,
  madeNoProgress,
  type RoundEstimate,
  type RoundInput,
  type RoundOutcome,
  type RoundState,
  rampHolds,
  rampStep,
  usesAutoConverge,
} from './round-decision.js';
export { mergeSorted, newMigrationId, runSource, type SourceRun } from './source/index.js';
export {
  type CapChange,
  type DestinationSwitchoverTimes,
  type EnergyFigure,
  emptyReport,
  type MigrationEnergy,
  type MigrationReport,
  type MigrationStatus,
  migrationEnded,
  type RoundRow,
  type SwitchoverPriority,
  type SwitchoverTimes,
  type VmProgress,
} from './stats.js';
