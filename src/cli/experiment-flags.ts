/** The flags every `livemig experiment NAME` takes, and their checks (shared by the generic runner and the special ones). */
import { UsageError } from '../errors.js';

export interface ExperimentFlags {
  quick?: boolean;
  tiny?: boolean;
  out: string;
  seed: string;
  repetitions?: string;
  progress?: boolean;
  json?: boolean;
  dryRun?: boolean;
}

/** An integer flag value ≥ `min`, or a UsageError naming the flag. */
export function intFlag(text: string, flag: string, min: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min)
    throw new UsageError(`${flag}: "${text}" is not an integer ≥ ${min}`, flag);
  return n;
}
