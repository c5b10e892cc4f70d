/**
 * The guest that livemig migrates: RAM blocks, the dirty log, vCPUs in worker threads with CAP and DVFS
 * throttling, deterministic workloads, and the determinism oracle. See docs/guest.md.
 */
export {
  DEFAULT_PARAMS,
  DISTRIBUTIONS,
  type Distribution,
  type DvfsStall,
  type GuestConfig,
  KV_MIN_RECORD,
  type ResolvedGuestConfig,
  resolveConfig,
  sameConfig,
  TRACE_PACINGS,
  type TracePacing,
  vcpuShare,
  WORKLOAD_NAMES,
  type WorkloadName,
  type WorkloadParams,
  type WorkloadSpec,
} from './config.js';
export { CAP_PERIOD_MS, SLICE_MS } from './control.js';
export { DirtyLog } from './dirty-log.js';
export {
  type DirtyLimitCounters,
  type DirtyLimitSetting,
  Guest,
  type GuestState,
  type VcpuState,
} from './guest.js';
export { copyRam, ramEquals, referenceRam, referenceRun } from './oracle.js';
export { GuestRam, type RamBlock } from './ram.js';
export { Rng } from './rng.js';
export { startWorkerNextTo } from './spawn.js';
export { MAX_STRETCH } from './work-batch.js';
// The `trace` workload: livemig/trace records and reads traces, the guest replays them.
export { resolveTraceParams, TraceReplay } from './workloads/trace.js';
export { type SharedWriteProtect, WriteProtect } from './write-protect.js';
