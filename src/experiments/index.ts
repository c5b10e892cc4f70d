/**
 * Experiments: named, seeded runs of the real engine (two agent processes, real TCP) that measure what each
 * optimisation buys, with the pre-copy model's predictions beside the measurements. `runExperiment(name, opts)`
 * writes results/<name>/ (JSON, CSV, HTML with SVG charts); `startPair` / `runScenario` run single scenarios.
 */

export {
  type EngineConfig,
  type EngineRun,
  type EnginesOptions,
  type EnginesResult,
  enginesPlan,
  runEngines,
} from './engines.js';
export {
  type PowerCappingOptions,
  type PowerCappingResult,
  type PowerRun,
  runPowerCapping,
} from './power-capping.js';
export {
  EXPERIMENTS,
  type ExperimentOutput,
  experimentConfig,
  isExperimentName,
  planOf,
  type RunExperimentOptions,
  runExperiment,
} from './runner.js';
export {
  checkOracle,
  type OracleResult,
  type Pair,
  runScenario,
  type ScenarioResult,
  type ScenarioSpec,
  startPair,
} from './scenario.js';
export {
  type Cell,
  type CellResult,
  EXPERIMENT_NAMES,
  type Experiment,
  type ExperimentConfig,
  type ExperimentMode,
  type ExperimentName,
  type Measured,
  type Predicted,
  type Summary,
  type SummaryTable,
} from './types.js';
