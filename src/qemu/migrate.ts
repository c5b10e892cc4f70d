/**
 * Drive one QEMU live migration over QMP: set capabilities and parameters on both sides, `migrate`, poll
 * `query-migrate` until it ends, and fill a report with the field names of livemig's own MigrationReport.
 *
 * Strategies, in livemig's words: pre-copy (QEMU's default), post-copy (`postcopy-ram` on both sides and
 * `migrate-start-postcopy` as soon as the migration is active, so the switch-over happens after the first round),
 * hybrid (pre-copy for `hybridRounds` rounds, then post-copy if not yet complete).
 */
import { readFile } from 'node:fs/promises';
import { MigrationError } from '../errors.js';
import { type CpuCap, capQemu } from './cgroup.js';
import type { QmpClient, QmpMigrationInfo, QmpMigrationStatus } from './qmp.js';

export type QemuStrategy = 'pre-copy' | 'post-copy' | 'hybrid';

export interface QemuMigrateOptions {
  /** The destination's `-incoming` address, e.g. `tcp:127.0.0.1:4444`. */
  uri: string;
  strategy?: QemuStrategy;
  xbzrle?: boolean;
  xbzrleCacheBytes?: number;
  downtimeLimitMs?: number;
  /** Bytes per second; 0 or undefined leaves QEMU's default. */
  maxBandwidth?: number;
  autoConverge?: boolean;
  /** Pre-copy rounds before a hybrid migration switches to post-copy. Default 3. */
  hybridRounds?: number;
  pollMs?: number;
  /** Cancel (`migrate_cancel`) and fail with TIMEOUT after this long. Default 120 s. */
  timeoutMs?: number;
  onProgress?: (info: QmpMigrationInfo) => void;
  /**
   * CAP of the source's vCPU threads while it migrates, in percent of one CPU (0 or undefined = none), through the
   * cgroup CPU controller (`cgroup.ts`); released when the migration ends. `cgroupRoot` is for tests.
   */
  cap?: number;
  cgroupRoot?: string;
}

export interface QemuMigrationReport {
  engine: 'qemu';
  status: 'completed' | 'failed' | 'cancelled';
  strategy: QemuStrategy;
  destination: string;
  startedAt: string;
  totalTimeMs: number;
  setupTimeMs: number;
  downtimeMs: number;
  expectedDowntimeMs: number;
  downtimeLimitMs: number;
  /** Dirty-log syncs (`dirty-sync-count`): the number of rounds. */
  rounds: number;
  ramBytes: number;
  pageSize: number;
  transferredBytes: number;
  remainingBytes: number;
  pages: { zero: number; raw: number };
  dirtyRatePagesPerSec: number;
  throughputMbps: number;
  maxBandwidth: number;
  autoConverge: boolean;
  /** Highest vCPU throttle auto-converge applied, as seen while polling (QEMU resets it to 0 at the end). */
  cpuThrottlePercent: number;
  switchedToPostcopy: boolean;
  postcopy: { requests: number; bytes: number };
  xbzrle: {
    enabled: boolean;
    cacheBytes: number;
    encodedBytes: number;
    pages: number;
    cacheMisses: number;
    cacheMissRate: number;
    overflows: number;
  };
  /** Every `query-migrate` seen while polling, for plots and debugging. */
  /** The CAP applied to the source's vCPU threads, and how often the kernel throttled them. */
  cap?: {
    percent: number;
    cgroup: 'v1' | 'v2';
    vcpuThreads: number[];
    throttledPeriods: number;
    throttledMs: number;
  };
  samples: { tMs: number; status: QmpMigrationStatus | undefined; transferred: number; remaining: number }[];
  error?: string;
}

const FINAL: ReadonlySet<string> = new Set(['completed', 'failed', 'cancelled']);

export async function migrateQemu(
  source: QmpClient,
  dest: QmpClient,
  o: QemuMigrateOptions,
): Promise<QemuMigrationReport> {
  const strategy = o.strategy ?? 'pre-copy';
  const postcopy = strategy !== 'pre-copy';
  const caps = (list: [string, boolean | undefined][]) =>
    list
      .filter(([, on]) => on !== undefined)
      .map(([capability, state]) => ({ capability, state: state as boolean }));
  await source.execute('migrate-set-capabilities', {
    capabilities: caps([
      ['xbzrle', o.xbzrle ?? false],
      ['auto-converge', o.autoConverge ?? false],
      ['postcopy-ram', postcopy],
    ]),
  });
  // The destination must agree on post-copy before the stream starts.
  if (postcopy)
    await dest.execute('migrate-set-capabilities', { capabilities: caps([['postcopy-ram', true]]) });
  const params: Record<string, number> = {};
  if (o.downtimeLimitMs !== undefined) params['downtime-limit'] = Math.round(o.downtimeLimitMs);
  if (o.maxBandwidth) params['max-bandwidth'] = Math.round(o.maxBandwidth);
  if (o.xbzrleCacheBytes !== undefined) params['xbzrle-cache-size'] = Math.round(o.xbzrleCacheBytes);
  if (Object.keys(params).length > 0) await source.execute('migrate-set-parameters', params);
  const effective = await source.execute('query-migrate-parameters');

  let cap: CpuCap | undefined;
  let vcpuThreads: number[] = [];
  if (o.cap) {
    const cpus = await source.execute<{ 'thread-id': number }[]>('query-cpus-fast');
    vcpuThreads = cpus.map((c) => c['thread-id']);
    const pid = await processOf(vcpuThreads[0] ?? 0);
    cap = await capQemu({ pid, threadIds: vcpuThreads }, o.cap, {
      name: `qemu-${pid}`,
      ...(o.cgroupRoot ? { root: o.cgroupRoot } : {}),
    });
  }
  try {
    const report = await run(source, o, strategy, postcopy, effective);
    if (cap) {
      const st = await cap.stat();
      report.cap = {
        percent: cap.percent,
        cgroup: cap.version,
        vcpuThreads,
        throttledPeriods: st.throttled,
        throttledMs: st.throttledNs / 1e6,
      };
    }
    return report;
  } finally {
    await cap?.release();
  }
}

async function run(
  source: QmpClient,
  o: QemuMigrateOptions,
  strategy: QemuStrategy,
  postcopy: boolean,
  effective: Record<string, unknown>,
): Promise<QemuMigrationReport> {
  const startedAt = new Date();
  const t0 = Date.now();
  const samples: QemuMigrationReport['samples'] = [];
  await source.execute('migrate', { uri: o.uri });
  let switched = false;
  let throttle = 0;
  let info: QmpMigrationInfo = {};
  const deadline = t0 + (o.timeoutMs ?? 120_000);
  for (;;) {
    info = await source.execute('query-migrate');
    samples.push({
      tMs: Date.now() - t0,
      status: info.status,
      transferred: info.ram?.transferred ?? 0,
      remaining: info.ram?.remaining ?? 0,
    });
    throttle = Math.max(throttle, info['cpu-throttle-percentage'] ?? 0);
    o.onProgress?.(info);
    if (info.status && FINAL.has(info.status)) break;
    const rounds = info.ram?.['dirty-sync-count'] ?? 0;
    if (postcopy && !switched && info.status === 'active') {
      const due = strategy === 'post-copy' || rounds > (o.hybridRounds ?? 3);
      if (due) {
        await source.execute('migrate-start-postcopy');
        switched = true;
      }
    }
    if (Date.now() > deadline) {
      // Before switch-over the source is still authoritative: cancelling leaves the guest running there.
      if (!switched) await source.execute('migrate_cancel').catch(() => undefined);
      throw new MigrationError('TIMEOUT', `QEMU migration not complete after ${o.timeoutMs ?? 120_000} ms`, {
        status: info.status,
        rounds,
      });
    }
    await new Promise((r) => setTimeout(r, o.pollMs ?? 100));
  }
  const ram = info.ram;
  const x = info['xbzrle-cache'];
  const status = info.status as 'completed' | 'failed' | 'cancelled';
  const report: QemuMigrationReport = {
    engine: 'qemu',
    status,
    strategy,
    destination: o.uri,
    startedAt: startedAt.toISOString(),
    totalTimeMs: info['total-time'] ?? Date.now() - t0,
    setupTimeMs: info['setup-time'] ?? 0,
    downtimeMs: info.downtime ?? 0,
    expectedDowntimeMs: info['expected-downtime'] ?? 0,
    downtimeLimitMs: Number(effective['downtime-limit'] ?? 0),
    rounds: ram?.['dirty-sync-count'] ?? 0,
    ramBytes: ram?.total ?? 0,
    pageSize: ram?.['page-size'] ?? 4096,
    transferredBytes: ram?.transferred ?? 0,
    remainingBytes: ram?.remaining ?? 0,
    pages: { zero: ram?.duplicate ?? 0, raw: ram?.normal ?? 0 },
    dirtyRatePagesPerSec: ram?.['dirty-pages-rate'] ?? 0,
    throughputMbps: ram?.mbps ?? 0,
    maxBandwidth: Number(effective['max-bandwidth'] ?? 0),
    autoConverge: o.autoConverge ?? false,
    cpuThrottlePercent: throttle,
    switchedToPostcopy: switched,
    postcopy: { requests: ram?.['postcopy-requests'] ?? 0, bytes: ram?.['postcopy-bytes'] ?? 0 },
    xbzrle: {
      enabled: o.xbzrle ?? false,
      cacheBytes: x?.['cache-size'] ?? Number(effective['xbzrle-cache-size'] ?? 0),
      encodedBytes: x?.bytes ?? 0,
      pages: x?.pages ?? 0,
      cacheMisses: x?.['cache-miss'] ?? 0,
      cacheMissRate: x?.['cache-miss-rate'] ?? 0,
      overflows: x?.overflow ?? 0,
    },
    samples,
  };
  if (info['error-desc']) report.error = info['error-desc'];
  return report;
}

/** The process (thread group) a thread belongs to, from /proc/TID/status. */
async function processOf(tid: number): Promise<number> {
  const status = await readFile(`/proc/${tid}/status`, 'utf8').catch(() => '');
  const tgid = Number(/^Tgid:\s+(\d+)$/m.exec(status)?.[1] ?? 0);
  if (!tgid)
    throw new MigrationError(
      'GUEST_NOT_FOUND',
      `vCPU thread ${tid} not found in /proc: is QEMU on this host?`,
    );
  return tgid;
}

/** Wait until the destination runs the guest (after `completed`, or during post-copy). */
export async function waitRunning(dest: QmpClient, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await dest.execute('query-status');
    if (st.running) return;
    if (Date.now() > deadline)
      throw new MigrationError(
        'TIMEOUT',
        `destination QEMU not running after ${timeoutMs} ms (status ${st.status})`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}
