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
import { isStalled, type RoundSample } from '../migration/index.js';
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
  /**
   * Stall detection with livemig's policy (`isStalled`): the dirty set has not shrunk below its best for this many
   * rounds (0 or undefined = off). Then `onStall`: `postcopy` switches (postcopy-ram is enabled up front for it),
   * `cancel` cancels (the source keeps the guest) and fails with STALLED.
   */
  stallRounds?: number;
  onStall?: 'postcopy' | 'cancel';
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
  /** Why post-copy started: the strategy, or a stall. */
  postcopyReason?: 'strategy' | 'stalled';
  stalled: boolean;
  /** One row per finished round, from the `dirty-sync-count` steps seen while polling. */
  roundSamples: RoundSample[];
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
  const postcopy = strategy !== 'pre-copy' || (Boolean(o.stallRounds) && o.onStall === 'postcopy');
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
    const report = await run(source, o, strategy, effective);
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
  effective: Record<string, unknown>,
): Promise<QemuMigrationReport> {
  const startedAt = new Date();
  const t0 = Date.now();
  const samples: QemuMigrationReport['samples'] = [];
  await source.execute('migrate', { uri: o.uri });
  let switched = false;
  let postcopyReason: QemuMigrationReport['postcopyReason'];
  let stalled = false;
  let throttle = 0;
  let info: QmpMigrationInfo = {};
  const rounds: RoundSample[] = [];
  let sync = 0;
  let roundStart = t0;
  let sentAtSync = 0;
  let pagesAtSync = 0;
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
    const syncs = info.ram?.['dirty-sync-count'] ?? 0;
    if (info.ram && syncs > sync) {
      // A sync ended a round: what it sent, and the dirty set it left (`remaining` right after the sync).
      const pages = info.ram.normal + info.ram.duplicate;
      const now = Date.now();
      if (sync > 0)
        rounds.push({
          round: sync,
          pagesSent: pages - pagesAtSync,
          bytesSent: info.ram.transferred - sentAtSync,
          durationMs: now - roundStart,
          dirtyPages: Math.round(info.ram.remaining / (info.ram['page-size'] || 4096)),
        });
      sync = syncs;
      roundStart = now;
      sentAtSync = info.ram.transferred;
      pagesAtSync = pages;
      if (
        info.status === 'active' &&
        !stalled &&
        o.stallRounds &&
        !switched &&
        isStalled(rounds, o.stallRounds)
      ) {
        stalled = true;
        if (o.onStall === 'cancel') {
          await source.execute('migrate_cancel').catch(() => undefined);
          throw new MigrationError(
            'STALLED',
            `QEMU pre-copy stalled: the dirty set did not shrink for ${o.stallRounds} rounds; cancelled, the source keeps the guest`,
            {
              rounds: rounds.length,
              dirtyPages: rounds.at(-1)?.dirtyPages,
            },
          );
        }
        if (o.onStall === 'postcopy' && info.status === 'active') {
          await source.execute('migrate-start-postcopy');
          switched = true;
          postcopyReason = 'stalled';
        }
      }
    }
    if (info.status && FINAL.has(info.status)) break;
    if (strategy !== 'pre-copy' && !switched && info.status === 'active') {
      const due = strategy === 'post-copy' || syncs > (o.hybridRounds ?? 3);
      if (due) {
        await source.execute('migrate-start-postcopy');
        switched = true;
        postcopyReason = 'strategy';
      }
    }
    if (Date.now() > deadline) {
      // Before switch-over the source is still authoritative: cancelling leaves the guest running there.
      if (!switched) await source.execute('migrate_cancel').catch(() => undefined);
      throw new MigrationError('TIMEOUT', `QEMU migration not complete after ${o.timeoutMs ?? 120_000} ms`, {
        status: info.status,
        rounds: syncs,
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
    ...(postcopyReason ? { postcopyReason } : {}),
    stalled,
    roundSamples: rounds,
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
