/**
 * The dirty-limit figures of a migration report (dirty-limit.ts fills them). Plain types with no imports: the
 * dashboard's browser code reads reports too.
 */

/** The report's `dirtyLimit` section (QEMU's names where QEMU has them). */
export interface DirtyLimitReport {
  /** The `dirty-limit` capability was on. */
  enabled: boolean;
  /** `vcpu-dirty-limit`: MB/s each vCPU may dirty (MB = 2^20 bytes, as QEMU counts). */
  vcpuDirtyLimit: number;
  /** `dirty-limit-period` (QEMU: x-vcpu-dirty-limit-period), ms. */
  dirtyLimitPeriodMs: number;
  /** The quota that came to: pages each vCPU may newly dirty per period. */
  pagesPerPeriod: number;
  /** Round after which the limit was applied, 0 = never triggered. */
  appliedAfterRound: number;
  /** When it was applied, ms since the migration started; -1 = never. */
  appliedAtMs: number;
  /** Per vCPU, while the limit was on (from one period after it applied, when the vCPUs' published counters are
   *  exact, to the end of pre-copy): time held waiting for a new period (ms) and how often. */
  throttleMs: number[];
  waits: number[];
  /** Per vCPU, while the limit was on: pages newly dirtied per second of running time, in MB/s. */
  dirtyRateMBps: number[];
}

/** Reads per second (workloads that count reads, e.g. kv-read), before the migration and during it. */
export interface GuestReads {
  readsPerSecBefore: number;
  readsPerSecDuring: number;
  /** 1 − during ÷ before (0 when the guest did not slow down). */
  readSlowdown: number;
  /** Per vCPU, during the migration: time held back by a throttle — descheduled by the CAP (auto-converge, power
   *  capping) plus dirty-limit waits, ms. What the mechanism did, whatever else the host was running. */
  heldMs: number[];
}
