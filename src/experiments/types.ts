/**
 * What an experiment is: a named, seeded plan of real migrations (cells), and a summary of their measurements.
 * The runner (runner.ts) executes the plan on one pair of agents; the experiment only says what to run and how
 * to read the results.
 */
import type { PrecopyInput } from '../migration/model.js';
import type { VegaLiteSpec } from '../report/index.js';
import type { Pair, ScenarioSpec } from './scenario.js';

export const EXPERIMENT_NAMES = [
  'codecs',
  'cache-size',
  'page-order',
  'strategies',
  'convergence',
  'model',
  'dirty-limit',
  'mechanisms',
] as const;
export type ExperimentName = (typeof EXPERIMENT_NAMES)[number];

/** Sizes of a run. quick: minutes on a 2-core machine; tiny: seconds, for CI; full: the default, longer. */
export type ExperimentMode = 'full' | 'quick' | 'tiny';

export interface ExperimentConfig {
  mode: ExperimentMode;
  /** Seed of every guest's workload (the same in every variant, so variants are paired). */
  seed: number;
  /** Repetitions of every cell; the summary uses the median of each figure. */
  repetitions: number;
  /** Only these workloads, in experiments that sweep workloads (model): a long grid split over several runs. */
  workloads?: readonly string[];
}

/** Labels of a cell: what varies (workload, codec, cache size …), shown as table columns. */
export type Labels = Readonly<Record<string, string | number>>;

/** One migration to run. */
export interface Cell {
  /** Unique within the experiment, stable across runs (used to pair repetitions). */
  readonly id: string;
  readonly labels: Labels;
  readonly spec: ScenarioSpec;
  /** Where the pre-copy model applies: its inputs, as configured (a priori). */
  readonly model?: PrecopyInput;
  /** A cell that is not one migration (e.g. a snapshot and its restore) measures itself on the pair; the figures
   *  it does not give are 0. */
  readonly measure?: (pair: Pair) => Promise<Partial<Measured>>;
}

/** The figures measured for one cell (medians over repetitions), flat, for tables and CSV. */
export interface Measured {
  status: string;
  verified: boolean;
  switchoverReason: string;
  errorCode: string;
  rounds: number;
  totalTimeMs: number;
  setupTimeMs: number;
  /** Total time without the setup (handshake, destination allocation): what the pre-copy model predicts. */
  migrationTimeMs: number;
  downtimeMs: number;
  bytes: number;
  pagesZero: number;
  pagesRaw: number;
  pagesXbzrle: number;
  pagesRle: number;
  pagesCompressed: number;
  pagesSkipped: number;
  pagesRedirtied: number;
  cacheHits: number;
  cacheMisses: number;
  cacheOverflows: number;
  cacheBytes: number;
  cacheBytesPeak: number;
  cacheResizes: number;
  /** XBZRLE wire bytes per page byte it replaced (0 when unused). */
  xbzrleRatio: number;
  /** Wire bytes of round 1 (the full copy; zero pages do not travel in it). */
  round1Bytes: number;
  /** Round 1 (the full copy) throughput, MiB/s. */
  round1MiBps: number;
  /** Pages found dirty per second during round 1. */
  round1DirtyPagesPerSec: number;
  /** Wire bytes per page byte in rounds ≥ 2 (1 = raw). */
  resendRatio: number;
  heldPagesMax: number;
  /**
   * Bytes sent after the last pre-copy round (the stop-and-copy's pages, device state, digest): what the downtime
   * carries, independent of the machine's load.
   */
  stopCopyBytes: number;
  /** The downtime's page-dependent part (last pages written on the source, drained on the destination) and the
   *  rest, the switch-over's fixed cost (measure.ts, switchoverSplit); 0 without report.switchover (post-copy). */
  switchoverPageMs?: number;
  switchoverFixedMs?: number;
  throttleMax: number;
  postcopyFaults: number;
  faultP50Ms: number;
  faultP99Ms: number;
  faultMaxMs: number;
  /** Guest progress lost while pre-copy ran on the source (1 − rate during ÷ rate before), as the engine reports. */
  guestSlowdown: number;
  /**
   * Guest progress lost from migration start to end, wherever the guest ran (post-copy's remote faults included):
   * 1 − steps/s over the migration ÷ steps/s before it.
   */
  guestSlowdownEndToEnd: number;
  /** Reads/s (kv-read's GETs) before the migration and while it ran on the source, and 1 − during ÷ before; absent
   *  or 0 for workloads that do not count reads. */
  readsPerSecBefore?: number;
  readsPerSecDuring?: number;
  readSlowdown?: number;
  /** dirty-limit: time the vCPUs were held waiting for a new period (ms, all vCPUs) and the dirty rate they achieved
   *  while it applied (MB/s, all vCPUs). */
  dirtyLimitThrottleMs?: number;
  dirtyLimitRateMBps?: number;
  /** Time a throttle held vCPU 0 back during the migration (CAP deschedules plus dirty-limit waits), ms; and the
   *  other vCPUs together (kv-read: the reader). */
  heldMsVcpu0?: number;
  heldMsOtherVcpus?: number;
  /** The downtime limit in force at the end (raised by a downtime ramp or doubled on stalls), ms. */
  downtimeLimitEndMs?: number;
  /** CPU time of the whole source agent process (migration thread and the guest's vCPU threads), ms. */
  sourceCpuMs: number;
  /** CPU time of the source agent's main thread (where pages are read, encoded and sent), ms. */
  sourceMainCpuMs: number;
  /** CPU time of the destination agent's main thread (decoding), ms. */
  destMainCpuMs: number;
  /** CPU time of the whole destination agent process (multifd: its page-sink threads too), ms. */
  destCpuMs?: number;
  /** The determinism oracle ran on the guest where it ended (verified then also means the oracle agreed). */
  oracleChecked?: boolean;
  /** Snapshot cells: time to write the file, the guest's pause at the instant, file size, restore time to the first
   *  instruction. */
  snapshotMs?: number;
  snapshotPauseMs?: number;
  snapshotFileBytes?: number;
  restoreMs?: number;
  /** 1-minute load average when the cell ended (the machine is shared: figures carry it). */
  loadAvg1?: number;
  /** Wall time of the whole cell (guest start, warm-up, migration, clean-up), ms. */
  wallMs: number;
}

/** Pre-copy model prediction next to a cell's measurement. */
export interface Predicted {
  totalTimeMs: number;
  downtimeMs: number;
  bytes: number;
  rounds: number;
  converged: boolean;
  /** λ = c·D/B. */
  ratio: number;
}

export interface CellResult {
  readonly id: string;
  readonly labels: Labels;
  readonly measured: Measured;
  /** A priori: the model fed with the configured dirty rate, working set and bandwidth. */
  readonly predicted?: Predicted;
  /** A priori with the uniform-writer dirty set (`dirtySet: 'uniform'`): writes to already-dirty pages add nothing. */
  readonly uniform?: Predicted;
  /** Calibrated: the model fed with the bandwidth, dirty rate and compression measured in this run. */
  readonly calibrated?: Predicted;
  /** Every repetition's measurement (the medians above are over these). */
  readonly repetitions: readonly Measured[];
}

export interface SummaryTable {
  readonly title: string;
  /** File name stem for its CSV (results/<experiment>/<slug>.csv). */
  readonly slug: string;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly (string | number)[])[];
}

export interface Summary {
  readonly tables: readonly SummaryTable[];
  readonly charts: readonly VegaLiteSpec[];
  /** Findings in prose, each backed by the tables (stated with the numbers). */
  readonly findings: readonly string[];
}

export interface Experiment {
  readonly name: ExperimentName;
  readonly title: string;
  /** What it runs and what it shows (help text, report introduction). */
  readonly description: string;
  /** Measurements the plan needs before any cell runs (e.g. the model experiment's guest profiles). */
  prepare?(cfg: ExperimentConfig): Promise<void>;
  plan(cfg: ExperimentConfig): Cell[];
  summarise(results: readonly CellResult[], cfg: ExperimentConfig): Summary;
}
