/**
 * Hostile-input targets for every parser a peer or a user can feed: the migration frame reader and each
 * payload decoder (src/migration/protocol/), the control-API bodies (src/agent/requests.ts) and the guest
 * configuration (src/guest/config.ts). Each input is either a mutation of a valid input (so the parser gets
 * past its first checks) or random bytes/values. The contract: a parser accepts, or throws its typed error
 * (MigrationError, UsageError, CodecError) — anything else, or a slow input, is a failure.
 */
import { Rng } from '../codec/fuzz.js';
import { CodecError, MigrationError, UsageError } from '../errors.js';
import { SnapshotError } from '../snapshot/index.js';
import { answerTargets } from './answer-targets.js';
import { bodyTargets } from './body-targets.js';
import { mutate, mutateBody, type Target } from './mutate.js';
import { snapshotTarget } from './snapshot.js';
import { traceTarget } from './trace-target.js';
import { frameTarget, payloadTargets } from './wire-targets.js';

export { JSON_FIELDS, mutate, mutateBody } from './mutate.js';

export interface TargetCounts {
  name: string;
  inputs: number;
  accepted: number;
  /** Inputs refused with the parser's typed error. */
  rejected: number;
  /** Slowest single input, ms (a hang shows here). */
  maxMs: number;
  failures: string[];
}

export const TARGETS: readonly Target[] = [
  frameTarget,
  ...payloadTargets,
  ...bodyTargets,
  ...answerTargets(mutateBody),
  traceTarget,
  snapshotTarget(mutate),
];

function typed(err: unknown): boolean {
  return (
    err instanceof MigrationError ||
    err instanceof UsageError ||
    err instanceof CodecError ||
    err instanceof SnapshotError
  );
}

/** Runs `iterations` inputs against one target from `seed`; slow inputs (> slowMs) count as failures. */
export function fuzzTarget(target: Target, iterations: number, seed: number, slowMs = 1000): TargetCounts {
  const rng = new Rng(seed);
  const c: TargetCounts = { name: target.name, inputs: 0, accepted: 0, rejected: 0, maxMs: 0, failures: [] };
  for (let k = 0; k < iterations; k++) {
    const snapshot = new Rng(rng.next());
    const t0 = performance.now();
    c.inputs++;
    try {
      target.run(snapshot);
      c.accepted++;
    } catch (err) {
      if (typed(err)) c.rejected++;
      else if (c.failures.length < 20)
        c.failures.push(
          `${target.name} seed=${seed} input=${k}: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`,
        );
    }
    const ms = performance.now() - t0;
    if (ms > c.maxMs) c.maxMs = ms;
    if (ms > slowMs && c.failures.length < 20)
      c.failures.push(`${target.name} seed=${seed} input=${k}: took ${ms.toFixed(0)} ms`);
  }
  return c;
}
