/**
 * What a workload is to the vCPU that runs it. A workload's future depends only on its registers, the vCPU's
 * RNG and the pages it owns, so (step, rng, registers) saved at a pause fully defines what happens next.
 */
import type { WorkloadParams } from '../config.js';
import type { Corpus } from '../content.js';
import type { VcpuMemory } from '../memory.js';
import type { Rng } from '../rng.js';

export interface WorkloadContext {
  readonly params: WorkloadParams;
  readonly pageSize: number;
  /** The vCPU's share of the working set: pages firstPage .. firstPage + pageCount - 1. */
  readonly firstPage: number;
  readonly pageCount: number;
  readonly corpus: Corpus;
  /** The `trace` workload's recording (shared memory, read or received once by the guest). */
  readonly trace?: Uint8Array;
}

export interface Workload {
  /** Fills the vCPU's share of the working set (a fresh guest only; a migrated one gets its RAM copied). */
  init(mem: VcpuMemory, rng: Rng): void;
  /** One unit of guest work: one write, one transaction, one annealing move. */
  step(mem: VcpuMemory, rng: Rng): void;
  /** Replayed workloads only: the guest time (ms at full speed) at which the next step is due. A vCPU whose
   *  params ask for recorded pacing runs a step only when its guest clock has reached this. */
  dueMs?(): number;
  /** Read-only operations done so far (a kv store's GETs), for workloads that tell reads from writes. */
  reads?(): number;
  /** The workload's registers: small, JSON-safe integers. */
  registers(): Record<string, number>;
  setRegisters(registers: Readonly<Record<string, number>>): void;
}

/** Copies the named registers out of `given`, checking each is a safe integer. */
export function readRegisters<K extends string>(
  given: Readonly<Record<string, number>>,
  names: readonly K[],
): Record<K, number> {
  const out = {} as Record<K, number>;
  for (const n of names) {
    const v = given[n];
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
      throw new RangeError(`workload register "${n}" must be an integer, got ${JSON.stringify(v)}`);
    }
    out[n] = v;
  }
  return out;
}
