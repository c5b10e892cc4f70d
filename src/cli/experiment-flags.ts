/** The flags every `livemig experiment NAME` takes, and their checks (shared by the generic runner and the special ones). */

export interface ExperimentFlags {
  quick?: boolean;
  tiny?: boolean;
  out: string;
  seed: string;
  repetitions?: string;
  workloads?: string;
  progress?: boolean;
  json?: boolean;
  dryRun?: boolean;
  /** Comma-separated: run only the cells whose id contains one of these. */
  cells?: string;
  /** power-capping only: run only these sweeps (utilisation, contention, ratio), and the utilisation levels. */
  sweep?: string;
  levels?: string;
  timeBudget?: string;
}

/** An integer flag value from `min` (to `max`), or a UsageError naming the flag: the CLI's one strict parser. */
export { intFlag } from './values.js';
