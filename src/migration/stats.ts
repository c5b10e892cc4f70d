/**
 * The migration report: what operators know from QEMU's `query-migrate`, in livemig's names. The same object is
 * the live status (while `status` is 'active') and the final report, in the CLI's --json and the control API.
 */

import type { MigrationErrorCode } from '../errors.js';
import type { MigrationEnergy } from '../power/energy.js';
import type { PriorityScope, SwitchoverPriority } from '../switchover-priority-report.js';
import type { DirtyLimitReport, GuestReads } from './dirty-limit-report.js';
import type { CompressMethod, Strategy, VerifyMethod } from './options.js';
import type { DowntimeRaise } from './round-decision.js';

/**
 * The destination's clock over its part of a switch-over (fractional ms, performance.now()): from taking the
 * SWITCHOVER frame to resuming the guest, sent back in RESUMED. Durations only: two hosts' clocks are never compared.
 */
export interface DestinationSwitchoverTimes {
  /** VCPU_STATE taken → SWITCHOVER taken: the state decoded and digested, the last pages applied (when they came
   *  after the state, in the switch-over's one write). */
  stateMs?: number;
  /** Of stateMs: the last pages that came after the state checked and applied on the connection's thread (XBZRLE
   *  deltas decoded, CRCs for the ledger); the rest of stateMs is the state's decode and the bytes' transit. */
  applyMs?: number;
  /** Waiting for the page sink to apply the last pages. */
  drainMs?: number;
  /** Comparing the RAM and vCPU digests. */
  verifyMs?: number;
  /** Handing the vCPU state to the vCPU threads. */
  loadStateMs?: number;
  /** READY written and GO taken (about 0 when GO came with the digest). */
  goMs?: number;
  /** Waking the vCPUs. */
  resumeMs?: number;
  /** SWITCHOVER taken → guest resumed. */
  totalMs?: number;
}

/**
 * Where a pre-copy (or cold) switch-over's downtime went, in fractional milliseconds (performance.now(), µs
 * resolution) on the source's clock; `destination` is the destination's own account of its part (RESUMED body).
 * The steps add up to `downtimeMs`: pause + state + lastPages + digest + send + check + ack (in that order: the vCPU
 * state is taken right after the park, ahead of the last pages, and leaves with the digest).
 */
export interface SwitchoverTimes {
  /** Pause requested → every vCPU parked. */
  pauseMs: number;
  /** Last dirty-log sync and the last pages written to the socket. */
  lastPagesMs: number;
  /** vCPU state taken and encoded (VCPU_STATE, ahead of the last pages; written with the digest). */
  stateMs: number;
  /** RAM and vCPU digests (the RAM digest is kept incrementally: O(1) with `--verify ledger`). */
  digestMs: number;
  /** VCPU_STATE and the digest (and GO, when it rides with it) written in one go. */
  sendMs: number;
  /** Written → READY read: the link, the destination's check (drain, verify, state load) and its event loop. */
  checkMs: number;
  /** READY read → RESUMED read: GO (unless it rode with the digest), the destination resuming, its acknowledgement. */
  ackMs: number;
  /** GO was sent with the digest (the destination resumed as soon as its check passed). */
  goWithDigest: boolean;
  destination?: DestinationSwitchoverTimes;
  /**
   * The scheduling priority the switch-over's threads ran at in the paused window (src/switchover-priority.ts),
   * on the source and, as it said in RESUMED, on the destination; `nice: null` with the reason when not raised.
   */
  priority?: { source: SwitchoverPriority; destination?: SwitchoverPriority };
}

// The energy figures are power's (src/power/energy.ts); the report carries them and re-exports their names.
export type {
  EnergyFigure,
  MigrationEnergy,
  MigrationEnergyCost,
  PowerBudgetReport,
  PowerDecisionRow,
  PowerPoint,
  VmProgress,
} from '../power/energy.js';
export type { PriorityScope, SwitchoverPriority };

export type MigrationStatus =
  | 'setup'
  | 'active'
  | 'postcopy-active'
  /** Post-copy whose link broke: both sides wait, the source reconnects (QEMU's name). */
  | 'postcopy-paused'
  /** Post-copy reconnecting: the RECOVER handshake is under way. */
  | 'postcopy-recover'
  | 'completed'
  | 'failed'
  | 'cancelled';
/** Whether a migration in `status` has ended (completed, failed or cancelled): its report changes no more. */
export function migrationEnded(status: string): boolean {
  return status === 'completed' || status === 'failed' || status === 'cancelled';
}

export type MigrationPhase = 'setup' | 'precopy' | 'stop-and-copy' | 'switchover' | 'postcopy' | 'done';

export interface RoundRow {
  round: number;
  pagesSent: number;
  bytes: number;
  /** Dirty pages found by the sync at the end of the round. */
  dirtyPages: number;
  durationMs: number;
  throughputMbps: number;
  expectedDowntimeMs: number;
  /** Throttle in force during the round (percent of time held back; CAP = 100 − throttle). */
  throttle: number;
  /** hot-last: hot pages held back for the stop-and-copy at the end of the round. */
  heldPages: number;
}

export interface CapChange {
  atMs: number;
  cap: number;
  throttle: number;
  reason: string;
}

export interface MigrationReport {
  id: string;
  guestId: string;
  status: MigrationStatus;
  phase: MigrationPhase;
  strategy: Strategy;
  source: string;
  destination: string;
  verified: boolean;
  verify: VerifyMethod;
  startedAt: string;
  totalTimeMs: number;
  setupTimeMs: number;
  downtimeMs: number;
  expectedDowntimeMs: number;
  downtimeLimitMs: number;
  rounds: number;
  ramBytes: number;
  pageSize: number;
  transferredBytes: number;
  remainingBytes: number;
  dirtyPages: number;
  /**
   * Page counts: how pages travelled, plus `skipped` (dirty but identical to what the destination holds) and
   * `redirtied` (listed by a sync but written again before their turn, so left for the next round).
   */
  pages: {
    zero: number;
    raw: number;
    xbzrle: number;
    rle: number;
    compressed: number;
    skipped: number;
    redirtied: number;
  };
  xbzrle: {
    enabled: boolean;
    cacheHits: number;
    cacheMisses: number;
    overflows: number;
    encodedBytes: number;
    /** Page bytes that XBZRLE replaced by its encodings (bytes saved = this − encodedBytes). */
    pageBytes: number;
    cacheBytes: number;
    /** Largest size the cache had (dynamic sizing), the memory actually committed to it. */
    cacheBytesPeak: number;
    cacheWays: number;
    cacheSizing: 'static' | 'dynamic';
    cacheResizes: { round: number; bytes: number }[];
  };
  pageOrder: 'address' | 'hot-last';
  /** A stall (no progress across rounds) was detected. */
  stalled: boolean;
  compress: CompressMethod;
  /** Parallel channels (--multifd-channels ≥ 2): how many, and the bytes each carried. Absent with one connection. */
  multifd?: { channels: number; bytes: number[] };
  dirtyRatePagesPerSec: number;
  throughputMbps: number;
  maxBandwidth: number;
  postcopy: {
    faults: number;
    faultLatencyMs: { p50: number; p99: number; max: number };
    pushedPages: number;
    requestedPages: number;
    /** postcopy-preempt: requested pages that travelled on the preempt channel (part of requestedPages). */
    preemptPages?: number;
    /** Times the link broke during post-copy and the migration resumed over a new connection. */
    recoveries?: number;
    /** Time spent in postcopy-paused / postcopy-recover, summed. */
    pausedMs?: number;
  };
  cap: CapChange[];
  /** Guest progress rate (steps/s, all vCPUs) before migration and during it: the slowdown the guest paid. */
  guest: { stepsPerSecBefore: number; stepsPerSecDuring: number; slowdown: number } & Partial<GuestReads>;
  /** Dirty-rate limiting (QEMU's dirty-limit), when on. */
  dirtyLimit?: DirtyLimitReport;
  /** Downtime ramp (KubeVirt VEP 248/291), when on: each raise of the downtime limit. */
  downtimeRamp?: DowntimeRaise[];
  switchoverReason: string;
  /** Where the downtime went, step by step (pre-copy and cold; absent for post-copy or when it failed). */
  switchover?: SwitchoverTimes;
  /** Pre-copy: bytes written from the pause to the guest's resumption (last pages, vCPU state, digest, GO). */
  stopCopyBytes?: number;
  events: string[];
  perRound: RoundRow[];
  /** Power and energy of the migration (set by the agent when it ends). */
  energy?: MigrationEnergy;
  error?: { code: MigrationErrorCode; message: string };
}

export function emptyReport(init: {
  id: string;
  guestId: string;
  strategy: Strategy;
  source: string;
  destination: string;
  verify: VerifyMethod;
  ramBytes: number;
  pageSize: number;
  downtimeLimitMs: number;
  xbzrle: boolean;
  xbzrleCacheBytes: number;
  cacheWays: number;
  cacheSizing: 'static' | 'dynamic';
  pageOrder: 'address' | 'hot-last';
  compress: CompressMethod;
  maxBandwidth: number;
}): MigrationReport {
  return {
    id: init.id,
    guestId: init.guestId,
    status: 'setup',
    phase: 'setup',
    strategy: init.strategy,
    source: init.source,
    destination: init.destination,
    verified: false,
    verify: init.verify,
    startedAt: new Date().toISOString(),
    totalTimeMs: 0,
    setupTimeMs: 0,
    downtimeMs: 0,
    expectedDowntimeMs: 0,
    downtimeLimitMs: init.downtimeLimitMs,
    rounds: 0,
    ramBytes: init.ramBytes,
    pageSize: init.pageSize,
    transferredBytes: 0,
    remainingBytes: init.ramBytes,
    dirtyPages: 0,
    pages: { zero: 0, raw: 0, xbzrle: 0, rle: 0, compressed: 0, skipped: 0, redirtied: 0 },
    xbzrle: {
      enabled: init.xbzrle,
      cacheHits: 0,
      cacheMisses: 0,
      overflows: 0,
      encodedBytes: 0,
      pageBytes: 0,
      cacheBytes: init.xbzrle ? init.xbzrleCacheBytes : 0,
      cacheBytesPeak: 0,
      cacheWays: init.cacheWays,
      cacheSizing: init.cacheSizing,
      cacheResizes: [],
    },
    pageOrder: init.pageOrder,
    stalled: false,
    compress: init.compress,
    dirtyRatePagesPerSec: 0,
    throughputMbps: 0,
    maxBandwidth: init.maxBandwidth,
    postcopy: {
      faults: 0,
      faultLatencyMs: { p50: 0, p99: 0, max: 0 },
      pushedPages: 0,
      requestedPages: 0,
      recoveries: 0,
      pausedMs: 0,
    },
    cap: [],
    guest: { stepsPerSecBefore: 0, stepsPerSecDuring: 0, slowdown: 0 },
    switchoverReason: '',
    events: [],
    perRound: [],
  };
}

/** Megabits per second from bytes over milliseconds. */
export function mbps(bytes: number, ms: number): number {
  return ms > 0 ? (bytes * 8) / 1000 / ms : 0;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}
