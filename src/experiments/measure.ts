/**
 * One cell, measured: runs the scenario on the pair, reads CPU time of both agents around the migration, and
 * flattens the migration report into the figures the experiments compare. Also the model's predictions, a priori
 * (configured inputs) and calibrated (inputs measured in the run).
 */
import { loadavg } from 'node:os';
import { AgentClient } from '../agent/index.js';
import type { MigrationReport, SwitchoverTimes } from '../migration/index.js';
import { type PrecopyInput, predictPrecopy } from '../migration/model.js';
import { processCpuTimeMs, threadCpuTimes } from '../power/cputime.js';
import { fetchPowerSeries } from '../power/remote-energy.js';
import { type Pair, runScenario } from './scenario.js';
import type { Cell, Measured, Predicted } from './types.js';

const MiB = 1024 * 1024;

/** CPU time of a process's main thread (TID = PID), ms; 0 if it cannot be read. */
function mainThreadCpuMs(pid: number): number {
  try {
    const t = threadCpuTimes(pid).get(pid);
    return t ? t.utimeMs + t.stimeMs : 0;
  } catch {
    return 0;
  }
}

function processCpuMs(pid: number): number {
  try {
    return processCpuTimeMs(pid);
  } catch {
    return 0;
  }
}

interface CpuSnapshot {
  source: number;
  sourceMain: number;
  dest: number;
  destMain: number;
}

function cpuSnapshot(pair: Pair): CpuSnapshot {
  return {
    source: processCpuMs(pair.source.pid),
    sourceMain: mainThreadCpuMs(pair.source.pid),
    dest: processCpuMs(pair.destination.pid),
    destMain: mainThreadCpuMs(pair.destination.pid),
  };
}

/** Runs one cell on the pair and returns its measurement. */
export async function measureCell(pair: Pair, cell: Cell): Promise<Measured> {
  const t = performance.now();
  let before: CpuSnapshot | undefined;
  let start: Promise<{ steps: number; at: number } | undefined> | undefined;
  let end: { steps: number; at: number } | undefined;
  const src = new AgentClient(pair.source.address);
  // The first progress report arrives right after the migration was accepted: CPU from here on is the migration's
  // (guest start-up and warm-up are not counted). The guest's steps here and at the end, on whichever host runs it,
  // give its progress rate across the whole migration, post-copy included.
  const { report, oracle } = await runScenario(
    pair,
    {
      ...cell.spec,
      // Only the first report is needed (the CPU window's start): no polling inside the window.
      progress: 'first',
      onMigrated: async (holder, id) => {
        end = await stepsOf(holder, id);
      },
    },
    (r) => {
      if (before) return;
      before = cpuSnapshot(pair);
      start = stepsOf(src, r.guestId);
    },
  );
  const after = cpuSnapshot(pair);
  const b = before ?? after;
  const s = await start;
  const before_ = report.guest.stepsPerSecBefore;
  const during = s && end && end.at > s.at ? ((end.steps - s.steps) * 1000) / (end.at - s.at) : 0;
  const m = flatten(report, {
    sourceCpuMs: after.source - b.source,
    sourceMainCpuMs: after.sourceMain - b.sourceMain,
    destMainCpuMs: after.destMain - b.destMain,
    wallMs: performance.now() - t,
    guestSlowdownEndToEnd: before_ > 0 && during > 0 ? Math.max(0, 1 - during / before_) : 0,
  });
  m.destCpuMs = after.dest - b.dest;
  m.loadAvg1 = loadavg()[0] ?? 0;
  keepSwitchover(m, report);
  // A cell that asked for the oracle is verified only if the oracle agreed too.
  if (oracle) {
    m.oracleChecked = oracle.checked;
    m.verified = m.verified && oracle.equal;
  }
  return m;
}

async function stepsOf(agent: AgentClient, id: string): Promise<{ steps: number; at: number } | undefined> {
  try {
    const g = await agent.guest(id);
    return { steps: g.steps.reduce((a, x) => a + x, 0), at: performance.now() };
  } catch {
    return undefined;
  }
}

export function flatten(
  r: MigrationReport,
  extra: Pick<
    Measured,
    'sourceCpuMs' | 'sourceMainCpuMs' | 'destMainCpuMs' | 'wallMs' | 'guestSlowdownEndToEnd'
  >,
): Measured {
  const first = r.perRound[0];
  const later = r.perRound.slice(1);
  const laterBytes = later.reduce((a, x) => a + x.bytes, 0);
  const laterPages = later.reduce((a, x) => a + x.pagesSent, 0);
  return {
    status: r.status,
    verified: r.verified,
    switchoverReason: r.switchoverReason,
    errorCode: r.error?.code ?? '',
    rounds: r.rounds,
    totalTimeMs: r.totalTimeMs,
    setupTimeMs: r.setupTimeMs,
    migrationTimeMs: r.totalTimeMs - r.setupTimeMs,
    downtimeMs: r.downtimeMs,
    bytes: r.transferredBytes,
    pagesZero: r.pages.zero,
    pagesRaw: r.pages.raw,
    pagesXbzrle: r.pages.xbzrle,
    pagesRle: r.pages.rle,
    pagesCompressed: r.pages.compressed,
    pagesSkipped: r.pages.skipped,
    pagesRedirtied: r.pages.redirtied,
    cacheHits: r.xbzrle.cacheHits,
    cacheMisses: r.xbzrle.cacheMisses,
    cacheOverflows: r.xbzrle.overflows,
    cacheBytes: r.xbzrle.cacheBytes,
    cacheBytesPeak: Math.max(r.xbzrle.cacheBytesPeak, r.xbzrle.enabled ? r.xbzrle.cacheBytes : 0),
    cacheResizes: r.xbzrle.cacheResizes.length,
    xbzrleRatio: r.xbzrle.pageBytes > 0 ? r.xbzrle.encodedBytes / r.xbzrle.pageBytes : 0,
    round1Bytes: first?.bytes ?? 0,
    round1MiBps: first && first.durationMs > 0 ? first.bytes / MiB / (first.durationMs / 1000) : 0,
    round1DirtyPagesPerSec: first && first.durationMs > 0 ? (first.dirtyPages * 1000) / first.durationMs : 0,
    resendRatio: laterPages > 0 ? laterBytes / (laterPages * r.pageSize) : 1,
    heldPagesMax: r.perRound.reduce((a, x) => Math.max(a, x.heldPages), 0),
    // The engine's own count; else what the rounds did not send (which also counts the handshake, and a trace
    // guest's trace).
    stopCopyBytes:
      r.stopCopyBytes ??
      (r.perRound.length > 0
        ? Math.max(0, r.transferredBytes - r.perRound.reduce((a, x) => a + x.bytes, 0))
        : 0),
    ...switchoverSplit(r),
    throttleMax: r.cap.reduce((a, c) => Math.max(a, c.throttle), 0),
    postcopyFaults: r.postcopy.faults,
    faultP50Ms: r.postcopy.faultLatencyMs.p50,
    faultP99Ms: r.postcopy.faultLatencyMs.p99,
    faultMaxMs: r.postcopy.faultLatencyMs.max,
    guestSlowdown: r.guest.slowdown,
    readsPerSecBefore: r.guest.readsPerSecBefore ?? 0,
    readsPerSecDuring: r.guest.readsPerSecDuring ?? 0,
    readSlowdown: r.guest.readSlowdown ?? 0,
    dirtyLimitThrottleMs: (r.dirtyLimit?.throttleMs ?? []).reduce((a, x) => a + x, 0),
    dirtyLimitRateMBps: (r.dirtyLimit?.dirtyRateMBps ?? []).reduce((a, x) => a + x, 0),
    heldMsVcpu0: r.guest.heldMs?.[0] ?? 0,
    heldMsOtherVcpus: (r.guest.heldMs ?? []).slice(1).reduce((a, x) => a + x, 0),
    downtimeLimitEndMs: r.downtimeLimitMs,
    ...extra,
  };
}

/**
 * The paused window in two parts (from report.switchover): what depends on the pages left — the last sync and their
 * writing on the source, their transit (the destination reads them before the digest behind them) and their
 * draining into RAM there — and the rest, a fixed cost of every switch-over (pausing, state, digest, the
 * destination's check and state load, resuming, the acknowledgements). Without the destination's own times only
 * the source's writing counts as page-dependent.
 */
export function switchoverSplit(
  r: Pick<MigrationReport, 'switchover' | 'downtimeMs'>,
): Pick<Measured, 'switchoverPageMs' | 'switchoverFixedMs'> {
  const t = r.switchover;
  if (!t) return { switchoverPageMs: 0, switchoverFixedMs: 0 };
  const d = t.destination;
  // checkMs = written → READY read: the transit of what was written (last pages, then state and digest), the
  // destination's drain, verify and state load, and READY's way back (a loopback hop, counted with the transit).
  const transit = d
    ? Math.max(0, t.checkMs - (d.drainMs ?? 0) - (d.verifyMs ?? 0) - (d.loadStateMs ?? 0))
    : 0;
  const page = Math.min(r.downtimeMs, t.lastPagesMs + transit + (d?.drainMs ?? 0));
  return { switchoverPageMs: page, switchoverFixedMs: r.downtimeMs - page };
}

/**
 * A repetition's switch-over steps, as the report gave them (source and destination, sub-millisecond): what
 * switchoverSplit reads, kept on the repetition so that results.json lets the split be recomputed and the paused
 * window analysed step by step. Not a figure of its own: the cell's medians and CSV columns leave it out.
 */
export type WithSwitchover = Measured & { switchover?: SwitchoverTimes };

export function keepSwitchover(m: Measured, r: Pick<MigrationReport, 'switchover'>): void {
  if (r.switchover) (m as WithSwitchover).switchover = r.switchover;
}

/** The steps keepSwitchover kept on a repetition, if any. */
export function switchoverOf(m: Measured): SwitchoverTimes | undefined {
  return (m as WithSwitchover).switchover;
}

export function toPredicted(input: PrecopyInput): Predicted {
  const p = predictPrecopy(input);
  return {
    totalTimeMs: p.totalTime * 1000,
    downtimeMs: p.downtime * 1000,
    bytes: p.bytes,
    rounds: p.rounds,
    converged: p.converged,
    ratio: p.ratio,
  };
}

/**
 * The model fed with what the run measured: round 1's bytes (the non-zero RAM), round 1's throughput as the
 * bandwidth, round 1's dirty-page rate as the dirty rate, and the wire bytes per resent page byte as c. What is left
 * of the error is the model's own (rounds, the stop rule, the switch-over's fixed cost), not its inputs'.
 */
export function calibratedInput(m: Measured, a: PrecopyInput, pageSize: number): PrecopyInput | undefined {
  if (m.round1MiBps <= 0 || m.status !== 'completed') return undefined;
  return {
    ...a,
    ramBytes: m.round1Bytes,
    bandwidth: m.round1MiBps * MiB,
    dirtyRate: m.round1DirtyPagesPerSec * pageSize,
    compressionRatio: Math.min(1, Math.max(0.001, m.resendRatio)),
  };
}

/**
 * CPU of a livemig agent's migration counted as the engines experiment counts QEMU's: every thread of the process
 * but the guest's vCPU threads (QEMU: main loop + migration thread + the rest; livemig: main thread + V8's and
 * libuv's helper threads, e.g. the garbage collector's). The process's total comes from /proc at both ends, the
 * vCPU threads' share from the agent's own meter (`GET /v1/power?sample=1` takes a sample at each end, so the
 * window is the same to within the request's few milliseconds).
 */
export class AgentMigrationCpu {
  private constructor(
    private readonly address: string,
    private readonly pid: number,
    private readonly fromAt: number,
    private readonly totalMs: number,
  ) {}

  /** Marks the start: a meter sample now, and the process's CPU time. */
  static async start(address: string, pid: number): Promise<AgentMigrationCpu> {
    const s = await fetchPowerSeries(address, Date.now() - 1000);
    const at = s.samples.at(-1)?.at ?? Date.now();
    return new AgentMigrationCpu(address, pid, at, processCpuMs(pid));
  }

  /** The window's CPU, ms: the whole process, its vCPU threads, and the rest (the migration's). */
  async stop(): Promise<{ totalMs: number; vcpuMs: number; migrationMs: number }> {
    const totalMs = processCpuMs(this.pid) - this.totalMs;
    const s = await fetchPowerSeries(this.address, this.fromAt);
    let vcpuMs = 0;
    for (const x of s.samples) if (x.at > this.fromAt) vcpuMs += x.vcpuCpuMs;
    return { totalMs, vcpuMs, migrationMs: Math.max(0, totalMs - vcpuMs) };
  }
}
