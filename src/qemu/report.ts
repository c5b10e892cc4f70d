/**
 * A QEMU migration in livemig's report: `query-migrate` samples mapped onto the engine's `MigrationReport`, so that
 * `livemig qemu migrate` shows the same progress bar, table and JSON as `livemig migrate`, and the engines
 * experiment compares like with like. What only QEMU has (its dirty-sync count, auto-converge throttle, every
 * sample) sits in the `qemu` field.
 *
 * Rounds: QEMU syncs its dirty bitmap once at setup, then whenever the pages still to send in the current pass fall
 * below `bandwidth × downtime-limit` (not after every pass, as livemig does), and once more in the stop-and-copy
 * (or when post-copy starts). `rounds` counts the live rounds between them, livemig's meaning: syncs − 1 while
 * running, syncs − 2 once the last sync has happened.
 */
import {
  emptyReport,
  type MigrationOptions,
  type MigrationReport,
  type MigrationStatus,
  newMigrationId,
  type Strategy,
} from '../migration/index.js';
import type { QmpMigrationInfo, QmpMigrationStatus } from './qmp.js';

/** What livemig's report has no field for. */
export interface QemuExtras {
  /** The source QEMU's process id, when it runs on this host (else null: no CAP, CPU time or power). */
  pid: number | null;
  vcpuThreads: number[];
  /** `dirty-sync-count` at the end: setup sync + live rounds + the stop-and-copy's (or post-copy's) sync. */
  dirtySyncCount: number;
  /** Capabilities and parameters as QEMU reported them after livemig set them. */
  capabilities: Record<string, boolean>;
  parameters: Record<string, unknown>;
  /** Highest vCPU throttle QEMU's auto-converge applied, as seen while polling (QEMU resets it at the end). */
  cpuThrottlePercent: number;
  switchedToPostcopy: boolean;
  postcopyReason?: 'strategy' | 'hybrid-rounds' | 'stalled' | 'not-converging';
  postcopyBytes: number;
  /**
   * The destination's `postcopy-blocktime` capability (set whenever post-copy may run): total time, ms, that vCPUs
   * were blocked on page faults (`postcopy-blocktime`, the overlap of all vCPUs blocked) and per vCPU
   * (`postcopy-vcpu-blocktime`). QEMU 10.0 reports no per-fault latency; these are what it gives.
   */
  postcopyBlocktime?: { totalMs: number; vcpuMs: number[] };
  /**
   * The guest's blackout, ms: its STOP event on the source → its RESUME event on the destination, from QMP's
   * microsecond event stamps (both QEMUs on this host, one clock; blackout.ts). The span livemig's downtime covers;
   * QEMU's own `downtimeMs` ends on the source at its last byte. Absent when the destination runs elsewhere or the
   * migration did not complete.
   */
  blackoutMs?: number;
  /** QEMU's own miss rate of its last sync period. */
  xbzrleCacheMissRate: number;
  /** CPU time the source (and destination) QEMU processes used during the migration, ms (measured, /proc). */
  cpu: {
    source: { vcpuMs: number; mainMs: number; otherMs: number; totalMs: number } | null;
    destination: { totalMs: number } | null;
  };
  /** The cgroup that held the source's vCPU threads, and how often the kernel throttled them. */
  cgroupCap?: {
    cgroup: 'v1' | 'v2';
    throttledPeriods: number;
    throttledMs: number;
  };
  /** livemig options QEMU cannot apply (with what happened instead). */
  notApplied: string[];
  /** Every `query-migrate` seen while polling, for plots and debugging. */
  samples: { tMs: number; status: QmpMigrationStatus | undefined; transferred: number; remaining: number }[];
}

export type QemuMigrationReport = MigrationReport & { engine: 'qemu'; qemu: QemuExtras };

/** The report of a QEMU migration about to start with these options (counters filled by applyQueryMigrate). */
export function emptyQemuReport(init: {
  options: MigrationOptions;
  source: string;
  destination: string;
  guestId?: string;
}): QemuMigrationReport {
  const o = init.options;
  const base = emptyReport({
    id: newMigrationId(),
    guestId: init.guestId ?? 'qemu',
    strategy: o.strategy,
    source: init.source,
    destination: init.destination,
    // QEMU sends no digest of RAM at switch-over: nothing is verified by the migration itself.
    verify: 'none',
    ramBytes: 0,
    pageSize: 4096,
    downtimeLimitMs: o.downtimeLimitMs,
    xbzrle: o.xbzrle,
    xbzrleCacheBytes: o.xbzrleCacheBytes,
    // QEMU's page cache is direct-mapped (migration/page_cache.c: position = page number mod size).
    cacheWays: 1,
    cacheSizing: o.cacheSizing,
    pageOrder: 'address',
    compress: 'none',
    maxBandwidth: o.maxBandwidth,
  });
  return {
    ...base,
    engine: 'qemu',
    qemu: {
      pid: null,
      vcpuThreads: [],
      dirtySyncCount: 0,
      capabilities: {},
      parameters: {},
      cpuThrottlePercent: 0,
      switchedToPostcopy: false,
      postcopyBytes: 0,
      xbzrleCacheMissRate: 0,
      cpu: { source: null, destination: null },
      notApplied: [],
      samples: [],
    },
  };
}

const FINAL: ReadonlySet<string> = new Set(['completed', 'failed', 'cancelled']);

export function isFinalStatus(s: QmpMigrationStatus | undefined): boolean {
  return s !== undefined && FINAL.has(s);
}

function statusOf(s: QmpMigrationStatus | undefined): MigrationStatus {
  switch (s) {
    case 'completed':
    case 'failed':
    case 'cancelled':
    case 'active':
    case 'setup':
      return s;
    case 'postcopy-active':
    case 'postcopy-paused':
    case 'postcopy-recover':
    case 'postcopy-recover-setup':
      return 'postcopy-active';
    case 'cancelling':
    case 'device':
    case 'pre-switchover':
    case 'wait-unplug':
      return 'active';
    default:
      return 'setup';
  }
}

function phaseOf(s: QmpMigrationStatus | undefined, strategy: Strategy): MigrationReport['phase'] {
  switch (s) {
    case 'active':
      return strategy === 'cold' ? 'stop-and-copy' : 'precopy';
    case 'device':
    case 'pre-switchover':
      return 'stop-and-copy';
    case 'postcopy-active':
    case 'postcopy-paused':
    case 'postcopy-recover':
    case 'postcopy-recover-setup':
      return 'postcopy';
    case 'completed':
    case 'failed':
    case 'cancelled':
      return 'done';
    default:
      return 'setup';
  }
}

/**
 * Update the report from one `query-migrate` answer taken `elapsedMs` after `migrate`. Counters are cumulative in
 * QEMU, so the last answer gives the totals; `cacheBytesPeak` and the throttle keep their highest value.
 */
export function applyQueryMigrate(r: QemuMigrationReport, info: QmpMigrationInfo, elapsedMs: number): void {
  r.status = statusOf(info.status);
  r.phase = phaseOf(info.status, r.strategy);
  r.totalTimeMs = info['total-time'] ?? elapsedMs;
  if (info['setup-time'] !== undefined) r.setupTimeMs = info['setup-time'];
  if (info.downtime !== undefined) r.downtimeMs = info.downtime;
  if (info['expected-downtime'] !== undefined) r.expectedDowntimeMs = info['expected-downtime'];
  const t = info['cpu-throttle-percentage'] ?? 0;
  r.qemu.cpuThrottlePercent = Math.max(r.qemu.cpuThrottlePercent, t);
  const ram = info.ram;
  if (ram) {
    r.pageSize = ram['page-size'] || 4096;
    r.ramBytes = ram.total;
    r.transferredBytes = ram.transferred;
    r.remainingBytes = ram.remaining;
    r.dirtyPages = Math.round(ram.remaining / r.pageSize);
    // QEMU zeroes the rate when the migration ends: keep the last one measured.
    if (ram['dirty-pages-rate'] > 0 || !isFinalStatus(info.status))
      r.dirtyRatePagesPerSec = ram['dirty-pages-rate'];
    r.throughputMbps = ram.mbps;
    r.pages.zero = ram.duplicate;
    r.pages.raw = ram.normal;
    r.postcopy.faults = ram['postcopy-requests'];
    r.postcopy.requestedPages = ram['postcopy-requests'];
    r.qemu.postcopyBytes = ram['postcopy-bytes'] ?? 0;
    r.postcopy.pushedPages = Math.round((ram['postcopy-bytes'] ?? 0) / r.pageSize);
    const syncs = ram['dirty-sync-count'];
    r.qemu.dirtySyncCount = syncs;
    const final = info.status === 'completed' || r.qemu.switchedToPostcopy;
    r.rounds = Math.max(0, syncs - (final ? 2 : 1));
  }
  const x = info['xbzrle-cache'];
  if (x && r.xbzrle.enabled) {
    r.pages.xbzrle = x.pages;
    // A cache hit goes as XBZRLE, or raw when the delta overflows (unchanged pages are not counted by QEMU).
    r.xbzrle.cacheHits = x.pages + x.overflow;
    r.xbzrle.cacheMisses = x['cache-miss'];
    r.xbzrle.overflows = x.overflow;
    r.xbzrle.encodedBytes = x.bytes;
    r.xbzrle.pageBytes = x.pages * r.pageSize;
    r.xbzrle.cacheBytes = x['cache-size'];
    r.xbzrle.cacheBytesPeak = Math.max(r.xbzrle.cacheBytesPeak, x['cache-size']);
    r.qemu.xbzrleCacheMissRate = x['cache-miss-rate'];
  }
  r.qemu.samples.push({
    tMs: elapsedMs,
    status: info.status,
    transferred: ram?.transferred ?? 0,
    remaining: ram?.remaining ?? 0,
  });
  if (info['error-desc'] && !r.error) r.error = { code: 'INTERNAL', message: info['error-desc'] };
}

/** Elapsed time as the engine writes it in events. */
export function stamp(r: MigrationReport): string {
  return `${(r.totalTimeMs / 1000).toFixed(3)}s`;
}

/** Whether a report is a QEMU one (the CLI and experiments take both). */
export function isQemuReport(r: MigrationReport): r is QemuMigrationReport {
  return (r as Partial<QemuMigrationReport>).engine === 'qemu';
}
