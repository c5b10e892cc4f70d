/** The seed's power-capping experiment: its options, runs and results (runner in power-capping.ts). */

import type { MigrationReport } from '../migration/index.js';
import type { SweepName, SweepPoint } from './power-sweep.js';
import type { Pair } from './scenario.js';

export type VmKind = 'twolf-like' | 'gap-like';
export type PowerRunMode = 'none' | 'dvfs' | 'cap' | 'cap-fixed-budget' | 'cap-adaptive';

export interface PowerCappingOptions {
  /** Smaller and shorter (about half the time); tiny: a smoke test of one migration. */
  quick?: boolean;
  tiny?: boolean;
  /** Guest RAM (default 128 MiB: 600 MB scaled with the bandwidth). */
  ramBytes?: number;
  /** Migration bandwidth, bytes/s (default 16 MiB/s: round 1 of 128 MiB ≈ 8 s, like the seed's twolf). */
  bandwidth?: number;
  /** Each guest's CPU limit, percent of a real core (default 40). */
  baseCap?: number;
  /** The seed's CAP for the migrating VM, in percent of a MODEL core (default 15). */
  seedCap?: number;
  /** The seed's DVFS frequency (default 1.7 GHz: the 1.73 GHz state). */
  dvfsGhz?: number;
  modelCores?: number;
  beforeMs?: number;
  afterMs?: number;
  /** Also compare a fixed budget CAP with the adaptive controller on the gap-like guest (default true). */
  controller?: boolean;
  /** The seed's claims swept (src/experiments/power-sweep.ts; default: not in tiny mode). */
  sweeps?: boolean;
  /** Repetitions per sweep point (default 2 quick, 5 full). */
  repetitions?: number;
  /** Run only these sweeps (no single runs, no controller runs): to split a long measurement into parts. */
  only?: readonly SweepName[];
  /** Utilisation levels of the utilisation sweep, 0..1 (default 0.4, 0.6, 0.8, 1; quick 0.4, 1). */
  levels?: readonly number[];
  /** The sweeps stop before a repetition that would pass this many ms (whole repetitions only). */
  timeBudgetMs?: number;
  seed?: number;
  /** Results folder: writes <out>/power-capping/. Default "results". */
  out?: string;
  /** Also write the charts as SVG files here (docs figures). */
  svgDir?: string;
  log?: (line: string) => void;
  pair?: Pair;
  command?: string;
}

export interface PhaseFigures {
  watts: number;
  utilisation: number;
}

export interface VmRates {
  id: string;
  kind: VmKind;
  migrating: boolean;
  /** steps/s */
  before: number;
  during: number;
  after: number;
  slowdownDuring: number;
}

export interface PowerRun {
  kind: VmKind;
  mode: PowerRunMode;
  status: string;
  migrationTimeMs: number;
  rounds: number;
  bytes: number;
  budgetWatts: number;
  completionTargetMs: number;
  caps: number[];
  before: PhaseFigures;
  during: PhaseFigures;
  after: PhaseFigures;
  peakWattsDuring: number;
  /** Fraction of the migration's samples above the budget (budget runs). */
  overBudget: number;
  energy: MigrationReport['energy'];
  vms: VmRates[];
  /** Source host power over time, t = seconds since migration start. */
  series: { t: number; watts: number; utilisation: number; migrationCpuMs: number }[];
  /** Destination host power over time, same t. */
  destSeries: { t: number; watts: number; utilisation: number }[];
}

export interface PowerCappingResult {
  config: Required<
    Pick<
      PowerCappingOptions,
      'ramBytes' | 'bandwidth' | 'baseCap' | 'seedCap' | 'dvfsGhz' | 'modelCores' | 'beforeMs' | 'afterMs'
    >
  > & { realCores: number; capHere: number; mode: string };
  runs: PowerRun[];
  /** The seed's claims swept, with repetitions (empty when not run). */
  sweeps: SweepPoint[];
  dir: string;
  files: string[];
  wallMs: number;
  /** 1-minute load average at the start and after each group of runs (other work on the machine). */
  loadAverage: number[];
}

/** The seed's figures (lecture summary of the paper), for the side-by-side table. */
export const SEED_FIGURES = {
  twolfMigrationS: 8,
  gapMigrationS: 20,
  busyWatts: 150,
  dvfsWatts: 135.6,
  capWatts: 148.3,
  dvfsReduction: 0.1,
  capReduction: 0.03,
} as const;
