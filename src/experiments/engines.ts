/**
 * engines: the same workload, link and settings migrated by QEMU (the test VM under TCG, driven over QMP by the QEMU
 * bridge) and by livemig's engine (two agent processes), side by side: total time, downtime, bytes, rounds, CPU.
 *
 * The workload is matched, not identical. The QEMU guest program dirties `dirtyMiB` of its RAM at `rate` random
 * pages per second, each write changing the first `bytesPerWrite` bytes of the page (src/qemu/guest-program.ts); the
 * livemig guest runs `gap` with the same working set, rate and bytes per write, uniform page choice and no
 * whole-page rewrites. What cannot be matched — the QEMU guest also holds a kernel and an initramfs, its vCPU is
 * emulated by TCG, QEMU syncs its dirty log on its own schedule — is measured and explained (docs/engines.md), and
 * every difference found is written into the findings with its numbers; where QEMU does better it says so.
 */
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { MigrationError } from '../errors.js';
import type { GuestConfig } from '../guest/index.js';
import type { MigrationOptions, MigrationReport } from '../migration/index.js';
import { hostPowerModel, processCpuTimeMs, threadCpuTimes, wattsAt } from '../power/index.js';
import {
  buildTestVm,
  findQemu,
  migrateQemu,
  type QemuMigrationReport,
  type QmpClient,
  qemuUnfitReason,
  startTestVm,
  type TestVmImage,
  waitForConsole,
  waitRunning,
} from '../qemu/index.js';
import { barChart, renderReport, writeCsv, writeHtml, writeJson } from '../report/index.js';
import { VERSION } from '../version.js';
import { type DowntimeRatio, downtimeRatios, ratioCell } from './engines-downtime.js';
import { AgentMigrationCpu, flatten } from './measure.js';
import { type Pair, runScenario, startPair } from './scenario.js';
import type { Measured, SummaryTable } from './types.js';

const MiB = 2 ** 20;

/** One workload + link + settings, run by both engines. */
export interface EngineConfig {
  id: string;
  /** Guest RAM (QEMU -m, livemig ramBytes), MiB. */
  ramMiB: number;
  /** Memory the guest program dirties and checks = livemig's working set, MiB. */
  dirtyMiB: number;
  /** Pages written per second. */
  rate: number;
  /** Bytes changed per page write (4096 = the whole page). */
  bytesPerWrite: number;
  /** Bandwidth limit, bytes/s. */
  bandwidth: number;
  downtimeLimitMs: number;
  xbzrle: boolean;
  xbzrleCacheBytes: number;
  /** dynamic: livemig's cache-sizing policy on both engines, with xbzrleCacheBytes as the budget. */
  cacheSizing?: 'static' | 'dynamic';
  /** Default pre-copy. */
  strategy?: 'precopy' | 'postcopy';
  /** Parallel channels on both engines (QEMU's multifd capability and multifd-channels); absent = one connection. */
  multifdChannels?: number;
}

export type EngineName = 'qemu' | 'livemig';

export interface EngineRun {
  engine: EngineName;
  config: EngineConfig;
  measured: Measured;
  /** QEMU: the destination guest checked every page it wrote over a whole sweep (true = no corrupt page). */
  healthy: boolean | null;
  /** Dirty pages per second the engine measured (last round). */
  dirtyRatePagesPerSec: number;
  /** CPU of the migration itself on the source: every thread but the vCPUs' (QEMU: main loop, migration thread and the rest; livemig: main thread and V8's and libuv's helper threads). */
  migrationCpuMs: number;
  /** CPU of the guest's vCPUs on the source while it migrated. */
  guestCpuMs: number;
  /** Source host energy over the migration, modelled (i7-920) from the source process's measured CPU time. */
  energyJ: number;
  /** Bytes of the stop-and-copy (sent while the guest was paused). */
  stopAndCopyBytes: number;
  report?: MigrationReport & { qemu?: Omit<QemuMigrationReport['qemu'], 'samples'> };
}

export interface EnginesOptions {
  quick?: boolean;
  /** One small config (CI smoke). */
  tiny?: boolean;
  seed?: number;
  out?: string;
  /** Instead of the plan. */
  configs?: EngineConfig[];
  log?: (line: string) => void;
  command?: string;
  pair?: Pair;
}

export interface EnginesResult {
  configs: EngineConfig[];
  runs: EngineRun[];
  table: SummaryTable;
  findings: string[];
  /** Notes: where QEMU did better, and where livemig did, each with its reason (also among the findings). */
  qemuBetter: string[];
  livemigBetter: string[];
  /** livemig's downtime ÷ QEMU's, per config (engines-downtime.ts). */
  downtime: DowntimeRatio[];
  qemu: string;
  files: string[];
  wallMs: number;
}

export function enginesPlan(o: { quick?: boolean; tiny?: boolean } = {}): EngineConfig[] {
  const base = {
    ramMiB: 256,
    dirtyMiB: 64,
    rate: 2000,
    bandwidth: 32 * MiB,
    downtimeLimitMs: 300,
    xbzrleCacheBytes: 64 * MiB,
  };
  const whole = { ...base, id: 'whole-page', bytesPerWrite: 4096, xbzrle: false };
  const small = { ...base, id: 'small-writes+xbzrle', bytesPerWrite: 64, xbzrle: true };
  // CI smoke: the smallest guest the test VM runs, a fast link (a few seconds per engine).
  if (o.tiny) return [{ ...whole, id: 'tiny', ramMiB: 128, dirtyMiB: 16, bandwidth: 128 * MiB }];
  if (o.quick) return [whole, small];
  return [
    whole,
    { ...base, id: 'small-writes', bytesPerWrite: 64, xbzrle: false },
    small,
    { ...whole, id: 'whole-page, 5000 pages/s', rate: 5000 },
    { ...small, id: 'small-writes+xbzrle, 30 ms limit', downtimeLimitMs: 30 },
    {
      ...small,
      id: 'small-writes+xbzrle, dynamic cache, 30 ms limit',
      downtimeLimitMs: 30,
      cacheSizing: 'dynamic',
    },
    { ...whole, id: 'whole-page, post-copy', strategy: 'postcopy' },
    // QEMU's multifd against livemig's: 4 channels on a fast link, where parallel encoding can show.
    { ...whole, id: 'whole-page, multifd 4 channels, 512 MiB/s', bandwidth: 512 * MiB, multifdChannels: 4 },
  ];
}

/** The livemig guest matching the QEMU guest program: gap over the dirtied region, uniform, small writes only. */
export function livemigGuest(c: EngineConfig, seed = 1): GuestConfig {
  return {
    ramBytes: c.ramMiB * MiB,
    vcpus: 1,
    seed,
    workload: {
      name: 'gap',
      params: {
        workingSetBytes: c.dirtyMiB * MiB,
        writeRate: c.rate,
        bytesPerWrite: c.bytesPerWrite,
        wholePageFraction: 0,
        distribution: 'uniform',
      },
    },
  };
}

/** The settings both engines get. */
export function engineOptions(c: EngineConfig): Partial<MigrationOptions> {
  return {
    strategy: c.strategy ?? 'precopy',
    maxBandwidth: c.bandwidth,
    downtimeLimitMs: c.downtimeLimitMs,
    xbzrle: c.xbzrle,
    ...(c.xbzrle && c.cacheSizing !== 'dynamic' ? { xbzrleCacheBytes: c.xbzrleCacheBytes } : {}),
    ...(c.xbzrle && c.cacheSizing === 'dynamic'
      ? { cacheSizing: 'dynamic' as const, xbzrleCacheMaxBytes: c.xbzrleCacheBytes }
      : {}),
    ...(c.multifdChannels !== undefined ? { multifdChannels: c.multifdChannels } : {}),
    timeoutMs: 120_000,
  };
}

/**
 * livemig's options: the shared ones, and the point of no return where QEMU has it. QEMU's source commits when it
 * writes its last byte: in pre-copy it has no return path here (the destination never acknowledges; the source
 * reports completion once its last byte is flushed), and its post-copy package carries the destination's "run"
 * command. livemig by default waits for READY before it sends GO (a stronger guarantee, one round trip inside the
 * pause); here GO rides with the digest (`goWithDigest`) or the post-copy start (`postcopyGoWithStart`), so both
 * engines hand over at the same point. The destination still resumes only a guest whose check passed.
 */
export function livemigOptions(c: EngineConfig): Partial<MigrationOptions> {
  const o = engineOptions(c);
  return o.strategy === 'postcopy' ? { ...o, postcopyGoWithStart: true } : { ...o, goWithDigest: true };
}

/** Source-host energy, modelled: the i7-920 model at the busy fraction the source process's CPU time gives. */
export function modelledEnergyJ(cpuMs: number, durationMs: number, cores = availableParallelism()): number {
  if (durationMs <= 0) return 0;
  const u = Math.min(1, cpuMs / (durationMs * cores));
  return (wattsAt(hostPowerModel('i7-920'), u) * durationMs) / 1000;
}

export async function runEngines(o: EnginesOptions = {}): Promise<EnginesResult> {
  const t0 = performance.now();
  const log = o.log ?? (() => undefined);
  const configs = o.configs ?? enginesPlan(o);
  const qemu = await findQemu();
  const unfit = qemuUnfitReason(qemu);
  if (unfit) throw new MigrationError('RESOURCE_LIMIT', `engines: ${unfit}`);
  const image = await buildTestVm({ log });
  const runs: EngineRun[] = [];
  const pair = o.pair ?? (await startPair());
  try {
    for (const c of configs) {
      log(`${c.id}: QEMU`);
      runs.push(await runQemu(image, c));
      log(`${c.id}: livemig`);
      runs.push(await runLivemig(pair, c, o.seed ?? 1, o.tiny ? 300 : 1000));
    }
  } finally {
    if (!o.pair) await pair.close();
  }
  const table = sideBySide(runs);
  const { findings, qemuBetter, livemigBetter } = explain(runs);
  const version = `${qemu?.version.major}.${qemu?.version.minor}.${qemu?.version.micro}`;
  const notes = { qemuBetter, livemigBetter };
  const downtime = downtimeRatios(runs);
  const files = await writeEngines(o, configs, runs, table, findings, notes, version, downtime);
  return {
    configs,
    runs,
    table,
    findings,
    qemuBetter,
    livemigBetter,
    downtime,
    qemu: version,
    files,
    wallMs: performance.now() - t0,
  };
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const a = s.address();
  await new Promise((r) => s.close(r));
  if (a === null || typeof a === 'string') throw new Error('no free port');
  return a.port;
}

/** One QEMU migration of the test VM with `c`'s settings; `beforeMigrate` runs once the guest program is up. */
export async function runQemu(
  image: TestVmImage,
  c: EngineConfig,
  hooks: { beforeMigrate?: (source: QmpClient) => Promise<void> } = {},
): Promise<EngineRun> {
  const t = performance.now();
  const workload = { image, memMiB: c.ramMiB, mib: c.dirtyMiB, rate: c.rate, bytes: c.bytesPerWrite, hot: 0 };
  const uri = `tcp:127.0.0.1:${await freePort()}`;
  const src = await startTestVm(workload);
  // QEMU sets multifd before its destination listens: that one starts deferred, migrateQemu starts the listener.
  const dst = await startTestVm({ ...workload, incoming: c.multifdChannels ? 'defer' : uri }).catch(
    async (e: unknown) => {
      await src.stop();
      throw e;
    },
  );
  const sq = await src.connect();
  const dq = await dst.connect();
  try {
    await waitForConsole(src.consolePath, (g) => g.sweeps.length >= 1, 60_000);
    await hooks.beforeMigrate?.(sq);
    let report: QemuMigrationReport | undefined;
    let error = '';
    try {
      report = await migrateQemu(sq, dq, { uri, ...engineOptions(c), sourceName: 'test VM' });
    } catch (err) {
      error = err instanceof MigrationError ? err.code : (err as Error).message;
    }
    let healthy: boolean | null = null;
    if (report?.status === 'completed') {
      await waitRunning(dq, 15_000);
      // Two sweep lines on the destination: the second covers a whole sweep made after the switch-over.
      const after = await waitForConsole(dst.consolePath, (g) => g.sweeps.length >= 2, 30_000).catch(
        () => undefined,
      );
      healthy = after ? after.corruptPages.length === 0 && after.sweeps.every((s) => s.corrupt === 0) : false;
    }
    if (!report) return failedRun('qemu', c, error, performance.now() - t);
    const cpu = report.qemu.cpu.source;
    const measured = flatten(report, {
      sourceCpuMs: cpu?.totalMs ?? 0,
      sourceMainCpuMs: cpu ? cpu.mainMs + cpu.otherMs : 0,
      destMainCpuMs: report.qemu.cpu.destination?.totalMs ?? 0,
      wallMs: performance.now() - t,
      guestSlowdownEndToEnd: 0,
    });
    // QEMU sends no digest: the destination guest's own check over a whole sweep stands in for verification.
    measured.verified = healthy === true;
    const { samples: _samples, ...qemuExtras } = report.qemu;
    return {
      engine: 'qemu',
      config: c,
      measured,
      healthy,
      dirtyRatePagesPerSec: measured.round1DirtyPagesPerSec,
      migrationCpuMs: measured.sourceMainCpuMs,
      guestCpuMs: cpu?.vcpuMs ?? 0,
      energyJ: report.energy?.source.joules ?? modelledEnergyJ(measured.sourceCpuMs, report.totalTimeMs),
      stopAndCopyBytes: stopAndCopyBytes(report),
      report: { ...report, qemu: qemuExtras },
    };
  } finally {
    await sq.close().catch(() => undefined);
    await dq.close().catch(() => undefined);
    await src.stop();
    await dst.stop();
  }
}

/** CPU ms of a whole process and of its main thread (TID = PID); 0 when it cannot be read. */
function cpuOf(pid: number): { total: number; main: number } {
  try {
    const t = threadCpuTimes(pid).get(pid);
    return { total: processCpuTimeMs(pid), main: t ? t.utimeMs + t.stimeMs : 0 };
  } catch {
    return { total: 0, main: 0 };
  }
}

async function runLivemig(pair: Pair, c: EngineConfig, seed: number, warmupMs: number): Promise<EngineRun> {
  const t = performance.now();
  try {
    // CPU from the first progress report on (the migration accepted): guest start-up and warm-up do not count.
    let before: { src: { total: number; main: number }; dst: { total: number; main: number } } | undefined;
    // Migration CPU as QEMU's is counted: every source thread but the vCPU's (measure.ts).
    let cpu: Promise<AgentMigrationCpu | undefined> | undefined;
    const { report } = await runScenario(
      pair,
      { guest: livemigGuest(c, seed), warmupMs, options: livemigOptions(c), progress: 'first' },
      () => {
        before ??= { src: cpuOf(pair.source.pid), dst: cpuOf(pair.destination.pid) };
        cpu ??= AgentMigrationCpu.start(pair.source.address, pair.source.pid).catch(() => undefined);
      },
    );
    const split = await (await cpu)?.stop().catch(() => undefined);
    const src = cpuOf(pair.source.pid);
    const dst = cpuOf(pair.destination.pid);
    const b = before ?? { src, dst };
    const measured = flatten(report, {
      sourceCpuMs: src.total - b.src.total,
      sourceMainCpuMs: src.main - b.src.main,
      destMainCpuMs: dst.main - b.dst.main,
      wallMs: performance.now() - t,
      guestSlowdownEndToEnd: 0,
    });
    return {
      engine: 'livemig',
      config: c,
      measured,
      healthy: null,
      dirtyRatePagesPerSec: measured.round1DirtyPagesPerSec,
      migrationCpuMs: split?.migrationMs ?? measured.sourceMainCpuMs,
      guestCpuMs: split?.vcpuMs ?? Math.max(0, measured.sourceCpuMs - measured.sourceMainCpuMs),
      energyJ: report.energy?.source.joules ?? modelledEnergyJ(measured.sourceCpuMs, measured.totalTimeMs),
      stopAndCopyBytes: stopAndCopyBytes(report),
      report,
    };
  } catch (err) {
    return failedRun('livemig', c, (err as Error).message, performance.now() - t);
  }
}

/** Bytes sent after the last live round: the stop-and-copy (final dirty pages, vCPU and device state, digest). */
export function stopAndCopyBytes(r: MigrationReport): number {
  return Math.max(0, r.transferredBytes - r.perRound.reduce((a, x) => a + x.bytes, 0));
}

function failedRun(engine: EngineName, c: EngineConfig, error: string, wallMs: number): EngineRun {
  const m = flatten(emptyLike(), {
    sourceCpuMs: 0,
    sourceMainCpuMs: 0,
    destMainCpuMs: 0,
    wallMs,
    guestSlowdownEndToEnd: 0,
  });
  m.status = 'failed';
  m.errorCode = error.slice(0, 200);
  return {
    engine,
    config: c,
    measured: m,
    healthy: null,
    dirtyRatePagesPerSec: 0,
    migrationCpuMs: 0,
    guestCpuMs: 0,
    energyJ: 0,
    stopAndCopyBytes: 0,
  };
}

function emptyLike(): Parameters<typeof flatten>[0] {
  return {
    id: '',
    guestId: '',
    status: 'failed',
    phase: 'done',
    strategy: 'precopy',
    source: '',
    destination: '',
    verified: false,
    verify: 'none',
    startedAt: '',
    totalTimeMs: 0,
    setupTimeMs: 0,
    downtimeMs: 0,
    expectedDowntimeMs: 0,
    downtimeLimitMs: 0,
    rounds: 0,
    ramBytes: 0,
    pageSize: 4096,
    transferredBytes: 0,
    remainingBytes: 0,
    dirtyPages: 0,
    pages: { zero: 0, raw: 0, xbzrle: 0, rle: 0, compressed: 0, skipped: 0, redirtied: 0 },
    xbzrle: {
      enabled: false,
      cacheHits: 0,
      cacheMisses: 0,
      overflows: 0,
      encodedBytes: 0,
      pageBytes: 0,
      cacheBytes: 0,
      cacheBytesPeak: 0,
      cacheWays: 0,
      cacheSizing: 'static',
      cacheResizes: [],
    },
    pageOrder: 'address',
    stalled: false,
    compress: 'none',
    dirtyRatePagesPerSec: 0,
    throughputMbps: 0,
    maxBandwidth: 0,
    postcopy: { faults: 0, faultLatencyMs: { p50: 0, p99: 0, max: 0 }, pushedPages: 0, requestedPages: 0 },
    cap: [],
    guest: { stepsPerSecBefore: 0, stepsPerSecDuring: 0, slowdown: 0 },
    switchoverReason: '',
    events: [],
    perRound: [],
  };
}

const r1 = (x: number) => Math.round(x * 10) / 10;
const r0 = (x: number) => Math.round(x);

export const SIDE_BY_SIDE_COLUMNS = [
  'config',
  'engine',
  'status',
  'total s',
  'setup ms',
  'downtime ms',
  'downtime livemig/QEMU',
  'stop-and-copy MiB',
  'MiB sent',
  'round 1 MiB',
  'round 1 MiB/s',
  'rounds',
  'zero pages',
  'XBZRLE pages',
  'cache misses',
  'dirty pages/s',
  'migration CPU ms',
  'guest CPU ms',
  'energy J (modelled)',
] as const;

export function sideBySide(runs: readonly EngineRun[]): SummaryTable {
  return {
    title: 'QEMU and livemig, side by side (same workload, link and settings)',
    slug: 'side-by-side',
    columns: [...SIDE_BY_SIDE_COLUMNS],
    rows: runs.map((r, _i, all) => {
      const m = r.measured;
      const status =
        m.status === 'completed'
          ? r.engine === 'qemu'
            ? r.healthy
              ? 'ok (guest checked)'
              : 'completed, guest NOT healthy'
            : m.verified
              ? 'ok (digest)'
              : 'unverified'
          : `${m.status}${m.errorCode ? `: ${m.errorCode}` : ''}`;
      return [
        r.config.id,
        r.engine,
        status,
        r1(m.totalTimeMs / 1000),
        r0(m.setupTimeMs),
        r1(m.downtimeMs),
        ratioCell(downtimeRatios(all), r),
        r1(r.stopAndCopyBytes / MiB),
        r1(m.bytes / MiB),
        r1(m.round1Bytes / MiB),
        r1(m.round1MiBps),
        m.rounds,
        m.pagesZero,
        m.pagesXbzrle,
        m.cacheMisses,
        r0(r.dirtyRatePagesPerSec),
        r0(r.migrationCpuMs),
        r0(r.guestCpuMs),
        r0(r.energyJ),
      ];
    }),
  };
}

/**
 * Findings from the numbers: per config, who is faster, has the shorter downtime, sends less, uses less CPU — and
 * why, where the reason is known (docs/engines.md explains each one at length).
 */
export function explain(runs: readonly EngineRun[]): {
  findings: string[];
  qemuBetter: string[];
  livemigBetter: string[];
} {
  const findings: string[] = [];
  const qemuBetter: string[] = [];
  const livemigBetter: string[] = [];
  // Better only when the difference is more than noise: 10 % and an absolute floor.
  const clearly = (a: number, b: number, floor: number) => a < b && b - a > floor && (b - a) / b > 0.1;
  const rate = (bytes: number, ms: number) => (ms > 0 ? bytes / MiB / (ms / 1000) : 0);
  const ids = [...new Set(runs.map((r) => r.config.id))];
  for (const id of ids) {
    const q = runs.find((r) => r.config.id === id && r.engine === 'qemu');
    const l = runs.find((r) => r.config.id === id && r.engine === 'livemig');
    if (!q || !l) continue;
    const qm = q.measured;
    const lm = l.measured;
    if (qm.status !== 'completed' || lm.status !== 'completed') {
      findings.push(
        `${id}: QEMU ${qm.status}${qm.errorCode ? ` (${qm.errorCode})` : ''}, livemig ${lm.status}${lm.errorCode ? ` (${lm.errorCode})` : ''}: not compared.`,
      );
      continue;
    }
    const f = (x: number) => x.toFixed(1);
    const times = `total ${f(qm.totalTimeMs / 1000)} s (QEMU) vs ${f(lm.totalTimeMs / 1000)} s (livemig)`;
    const post = q.config.strategy === 'postcopy';
    // Post-copy: round 1 is cut short by the switch, so the guest-size difference shows in the total bytes.
    const extraRound1 = post ? (qm.bytes - lm.bytes) / MiB : (qm.round1Bytes - lm.round1Bytes) / MiB;
    if (post) {
      findings.push(
        `${id}: ${times}; downtime ${f(qm.downtimeMs)} vs ${f(lm.downtimeMs)} ms; ${f(qm.bytes / MiB)} vs ${f(lm.bytes / MiB)} MiB sent. ` +
          `After the switch the destination asked for ${qm.postcopyFaults} pages (QEMU's postcopy-requests) vs ${lm.postcopyFaults} faults in livemig ` +
          `(p50 ${f(lm.faultP50Ms)} ms, p99 ${f(lm.faultP99Ms)} ms; QEMU reports no fault latency without its postcopy-blocktime capability). ` +
          `Both push the rest in the background at the same ${f(q.config.bandwidth / MiB)} MiB/s limit (QEMU: max-postcopy-bandwidth).`,
      );
    } else
      findings.push(
        `${id}: ${times}; QEMU's round 1 carried ${f(qm.round1Bytes / MiB)} MiB against livemig's ${f(lm.round1Bytes / MiB)} MiB` +
          (extraRound1 > 8
            ? ` — ${f(extraRound1)} MiB more, the test VM's kernel image and initramfs, which livemig's guest does not have; at ${f(q.config.bandwidth / MiB)} MiB/s that alone is ${f(extraRound1 / (q.config.bandwidth / MiB))} s.`
            : '.'),
      );
    // Time per byte: how close each engine runs to the bandwidth limit.
    const qRate = qm.bytes / MiB / Math.max(0.001, qm.totalTimeMs / 1000);
    const lRate = lm.bytes / MiB / Math.max(0.001, lm.totalTimeMs / 1000);
    findings.push(
      `${id}: effective rate ${f(qRate)} MiB/s (QEMU) vs ${f(lRate)} MiB/s (livemig) against a ${f(q.config.bandwidth / MiB)} MiB/s limit.`,
    );
    findings.push(
      `${id}: setup ${r0(qm.setupTimeMs)} ms (QEMU: the destination allocated its RAM when it started with -incoming) vs ${r0(lm.setupTimeMs)} ms (livemig: its own allocations and the HELLO / HELLO_ACK round trip; the destination builds the guest after acknowledging, during round 1); without setup ${f(qm.migrationTimeMs / 1000)} s vs ${f(lm.migrationTimeMs / 1000)} s.`,
    );
    if (!post)
      findings.push(
        `${id}: downtime ${f(qm.downtimeMs)} ms (QEMU) vs ${f(lm.downtimeMs)} ms (livemig) for a stop-and-copy of ${f(q.stopAndCopyBytes / MiB)} vs ${f(l.stopAndCopyBytes / MiB)} MiB: ` +
          `${f(rate(q.stopAndCopyBytes, qm.downtimeMs))} vs ${f(rate(l.stopAndCopyBytes, lm.downtimeMs))} MiB/s while the guest was paused.`,
      );
    if (!post)
      findings.push(
        `${id}: rounds ${qm.rounds} (QEMU) vs ${lm.rounds} (livemig): QEMU syncs its dirty log only when what is left of a pass falls below bandwidth × downtime limit and switches over right after a sync whose dirty set fits the limit; livemig syncs after every whole pass and, once a set fits, runs more (shorter) rounds while each is expected to leave at most 3/4 of the set, so its stop-and-copy is the smaller (${f(l.stopAndCopyBytes / MiB)} vs ${f(q.stopAndCopyBytes / MiB)} MiB).`,
      );
    if (post && clearly(qm.downtimeMs, lm.downtimeMs, 2)) {
      qemuBetter.push(
        `${id}: QEMU's post-copy downtime is shorter (${f(qm.downtimeMs)} vs ${f(lm.downtimeMs)} ms): at the switch it sends the device state and the dirty bitmap's discard list over an open stream, while livemig pauses its vCPU worker and sends the vCPU state before the destination resumes.`,
      );
    } else if (!post && clearly(qm.downtimeMs, lm.downtimeMs, 2)) {
      qemuBetter.push(
        `${id}: QEMU's downtime is shorter (${f(qm.downtimeMs)} vs ${f(lm.downtimeMs)} ms). Both engines send the stop-and-copy without the rate limit (QEMU's ram_save_complete "regardless of rate limiting", here at ${f(rate(q.stopAndCopyBytes, qm.downtimeMs))} MiB/s; livemig at ${f(rate(l.stopAndCopyBytes, lm.downtimeMs))} MiB/s over ${f(l.stopAndCopyBytes / MiB)} MiB). What livemig adds is per-page work in JavaScript while the guest is paused (CRC32C and framing on the source, whose pages leave as views of the paused RAM without a copy; checking and applying on the destination) and its switch-over steps (parking the vCPU worker, vCPU state, the RAM digest and its check, resuming the destination's worker), each a few milliseconds; the source's report events time them.`,
      );
    } else if (clearly(lm.downtimeMs, qm.downtimeMs, 2)) {
      livemigBetter.push(
        `${id}: livemig's downtime is shorter (${f(lm.downtimeMs)} vs ${f(qm.downtimeMs)} ms): its final dirty set was smaller (${f(l.stopAndCopyBytes / MiB)} vs ${f(q.stopAndCopyBytes / MiB)} MiB).`,
      );
    }
    if (clearly(qm.bytes, lm.bytes, MiB)) {
      qemuBetter.push(
        `${id}: QEMU sent fewer bytes (${f(qm.bytes / MiB)} vs ${f(lm.bytes / MiB)} MiB)${qm.rounds < lm.rounds ? `, in fewer rounds (${qm.rounds} vs ${lm.rounds})` : ''}.`,
      );
    } else if (clearly(lm.bytes, qm.bytes, MiB)) {
      livemigBetter.push(
        `${id}: livemig sent ${f((qm.bytes - lm.bytes) / MiB)} MiB less (${f(lm.bytes / MiB)} vs ${f(qm.bytes / MiB)} MiB): ${post ? 'the QEMU guest also carries its kernel and initramfs' : `${f(extraRound1)} MiB of it is round 1 (the QEMU guest's kernel and initramfs)`}${q.config.xbzrle ? `, the rest mostly XBZRLE hitting on first resends (${lm.pagesXbzrle} vs ${qm.pagesXbzrle} pages encoded)` : ''}.`,
      );
    }
    const qPerMiB = q.migrationCpuMs / Math.max(1, qm.bytes / MiB);
    const lPerMiB = l.migrationCpuMs / Math.max(1, lm.bytes / MiB);
    findings.push(
      `${id}: migration CPU ${r0(q.migrationCpuMs)} ms (QEMU's threads but the vCPU's) vs ${r0(l.migrationCpuMs)} ms (livemig agent's threads but the vCPU's): ${f(qPerMiB)} vs ${f(lPerMiB)} ms per MiB sent; guest vCPU ${r0(q.guestCpuMs)} ms under TCG vs ${r0(l.guestCpuMs)} ms in livemig's worker.`,
    );
    if (clearly(qPerMiB, lPerMiB, 0.2)) {
      qemuBetter.push(
        `${id}: QEMU's migration costs less CPU per MiB (${f(qPerMiB)} vs ${f(lPerMiB)} ms): a C loop over guest RAM with one write() per buffer, against a copy, a zero check and a CRC32C per page in JavaScript, a socket write per 64 KiB frame and a user-space rate limiter in one Node event loop, plus V8's helper threads (JIT compilation, most of it in an agent's first migration, and the garbage collector); docs/engines.md has the breakdown.`,
      );
    } else if (clearly(lPerMiB, qPerMiB, 0.2)) {
      livemigBetter.push(
        `${id}: livemig's migration cost less CPU per MiB (${f(lPerMiB)} vs ${f(qPerMiB)} ms)${post ? ": QEMU's source kept its main loop and migration thread busy through post-copy, serving page requests and pushing the rest" : ''}.`,
      );
    }

    if (q.config.xbzrle) {
      findings.push(
        `${id}: XBZRLE pages ${qm.pagesXbzrle} (QEMU) vs ${lm.pagesXbzrle} (livemig), cache misses ${qm.cacheMisses} vs ${lm.cacheMisses}: QEMU does not use its cache in round 1, so a page's first resend is a miss; livemig caches what round 1 sent and can encode the first resend.`,
      );
      if (clearly(lm.pagesXbzrle, qm.pagesXbzrle, 10))
        qemuBetter.push(
          `${id}: QEMU encoded more pages with XBZRLE (${qm.pagesXbzrle} vs ${lm.pagesXbzrle}).`,
        );
    }
    if (clearly(qm.totalTimeMs, lm.totalTimeMs, 200)) {
      qemuBetter.push(
        `${id}: QEMU finished sooner (${times}), although it sent ${f(extraRound1)} MiB more${post ? '' : ' in round 1'}: livemig's setup took ${r0(lm.setupTimeMs)} ms against QEMU's ${r0(qm.setupTimeMs)} ms (QEMU's destination allocated its RAM before the migration, livemig's destination agent does it in the handshake).`,
      );
    } else if (clearly(lm.migrationTimeMs, qm.migrationTimeMs, 200)) {
      livemigBetter.push(
        `${id}: without setup livemig took ${f(lm.migrationTimeMs / 1000)} s against QEMU's ${f(qm.migrationTimeMs / 1000)} s, mostly the ${f(extraRound1)} MiB less it had to send in round 1.`,
      );
    }
  }
  findings.push(...qemuBetter.map((x) => `Where QEMU is better — ${x}`));
  findings.push(...livemigBetter.map((x) => `Where livemig is better — ${x}`));
  return { findings, qemuBetter, livemigBetter };
}

async function writeEngines(
  o: EnginesOptions,
  configs: EngineConfig[],
  runs: EngineRun[],
  table: SummaryTable,
  findings: string[],
  notes: { qemuBetter: string[]; livemigBetter: string[] },
  qemu: string,
  downtime: DowntimeRatio[],
): Promise<string[]> {
  const dir = join(o.out ?? 'results', 'engines');
  const files: string[] = [];
  const put = async (name: string, p: Promise<void>) => {
    await p;
    files.push(join(dir, name));
  };
  await put(
    'results.json',
    writeJson(join(dir, 'results.json'), {
      experiment: 'engines',
      version: VERSION,
      qemu,
      date: new Date().toISOString(),
      command: o.command,
      // Other work on the (shared) machine: figures carry more noise when it is high.
      loadAverage: loadavg(),
      configs,
      findings,
      notes,
      downtime,
      table,
      runs,
    }),
  );
  await put('side-by-side.csv', writeCsv(join(dir, 'side-by-side.csv'), table.columns, table.rows));
  const records = runs.map((r) => ({ config: r.config.id, engine: r.engine, ...r.measured }));
  const columns = [...new Set(records.flatMap((r) => Object.keys(r)))];
  await put(
    'runs.csv',
    writeCsv(
      join(dir, 'runs.csv'),
      columns,
      records.map((r) => columns.map((c) => (r as Record<string, string | number | boolean>)[c])),
    ),
  );
  const values = (pick: (r: EngineRun) => number) =>
    runs
      .filter((r) => r.measured.status === 'completed')
      .map((r) => ({ config: r.config.id, engine: r.engine, v: pick(r) }));
  const chart = (title: string, pick: (r: EngineRun) => number, valueTitle: string) =>
    barChart({ title, values: values(pick), category: 'config', value: 'v', series: 'engine', valueTitle });
  const html = await renderReport({
    title: 'livemig experiment: engines — QEMU and livemig side by side',
    intro:
      `The same workload (RAM size, dirty rate, bytes changed per write), the same link (bandwidth limit over loopback) ` +
      `and the same settings (pre-copy, downtime limit, XBZRLE), migrated by QEMU ${qemu} (TCG, test VM from Debian ` +
      `packages, driven over QMP by livemig's QEMU bridge) and by livemig's engine (two agent processes). QEMU's ` +
      'destination guest checks every page it wrote over a whole sweep after the switch-over; livemig checks a digest ' +
      "of RAM at switch-over. Energy is modelled (i7-920 model) from the source process's measured CPU time. " +
      'docs/engines.md explains every difference.',
    sections: [
      { heading: 'Side by side', table: { columns: table.columns, rows: table.rows } },
      { heading: 'Findings', text: findings.join('\n\n') },
      {
        heading: 'Charts',
        charts: [
          chart('Total time', (r) => r.measured.totalTimeMs / 1000, 's'),
          chart('Downtime', (r) => r.measured.downtimeMs, 'ms'),
          chart('Bytes sent', (r) => r.measured.bytes / MiB, 'MiB'),
          chart('Migration CPU (source)', (r) => r.migrationCpuMs, 'ms'),
        ],
      },
      {
        heading: 'Configurations',
        table: {
          columns: [
            'config',
            'strategy',
            'RAM MiB',
            'dirtied MiB',
            'pages/s',
            'bytes/write',
            'MiB/s',
            'downtime limit ms',
            'XBZRLE',
            'channels',
          ],
          rows: configs.map((c) => [
            c.id,
            c.strategy ?? 'precopy',
            c.ramMiB,
            c.dirtyMiB,
            c.rate,
            c.bytesPerWrite,
            c.bandwidth / MiB,
            c.downtimeLimitMs,
            c.xbzrle
              ? `${c.xbzrleCacheBytes / MiB} MiB${c.cacheSizing === 'dynamic' ? ' budget, dynamic' : ''}`
              : 'off',
            c.multifdChannels ?? 1,
          ]),
        },
      },
    ],
    footer: `livemig ${VERSION}${o.command ? ` — ${o.command}` : ''} — ${new Date().toISOString()}`,
  });
  await put('report.html', writeHtml(join(dir, 'report.html'), html));
  return files;
}
