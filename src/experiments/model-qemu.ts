/**
 * model-qemu: the pre-copy model (src/migration/model.ts, profile-fed) against real QEMU migrations of the test VM.
 *
 * QEMU's guest cannot be profiled with livemig's dirty log, so its profile comes from the guest program's own
 * parameters (src/qemu/guest-program.ts: RATE random pages per second, uniformly over MIB MiB, the first BYTES bytes
 * of a page changed per write): W(t) = D·(1 − e^(−r·t/D)), XBZRLE's delta = the changed bytes. QEMU's
 * `calc-dirty-rate` measures the same guest before each cell and is reported beside W(1 s) as a check of that
 * profile. QEMU's own costs (time per page, the fixed time before round 1, the switch-over) and the RAM's zero share
 * are calibrated first, on migrations that are not cells of the grid: a near-idle VM at 1 GiB/s, and one at 8 MiB/s.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MigrationError } from '../errors.js';
import type { MigrationReport } from '../migration/index.js';
import { DEFAULT_ENGINE_COSTS, type EngineCosts, predictPrecopy } from '../migration/model.js';
import type { GuestProfile } from '../profile/index.js';
import { PROFILE_VERSION } from '../profile/schema.js';
import { buildTestVm, findQemu, type QmpClient, qemuUnfitReason } from '../qemu/index.js';
import { type EngineConfig, type EngineRun, engineOptions, runQemu } from './engines.js';

const MiB = 2 ** 20;
const PAGE = 4096;

export interface ModelQemuOptions {
  quick?: boolean;
  /** One cell (the test suite). */
  tiny?: boolean;
  out?: string;
  log?: (line: string) => void;
}

/** One cell: what QEMU did, what the model said, and the relative errors (predicted − measured) ÷ measured. */
export interface ModelQemuRow {
  config: EngineConfig;
  measured: { totalTimeMs: number; downtimeMs: number; bytes: number; rounds: number; verified: boolean };
  predicted: { totalTimeMs: number; downtimeMs: number; bytes: number; rounds: number };
  error: { totalTime: number; bytes: number; downtimeMs: number };
  /**
   * QEMU's calc-dirty-rate of the guest (page sampling over 1 s; QEMU says "MB/s", its code counts MiB) and the
   * profile's W(1 s) in the same unit: pages dirtied in a second, not writes per second.
   */
  dirtyRate: { qemuMiBps: number | null; profileMiBps: number };
}

export interface ModelQemuResult {
  qemu: string;
  engine: EngineCosts;
  zeroFraction: number;
  rows: ModelQemuRow[];
  summary: {
    totalTime: { median: number; p90: number };
    bytes: { median: number; p90: number };
    downtimeMs: { median: number };
  };
  files: string[];
}

/** The grid: the engines experiment's guest (256 MiB, 64 MiB dirtied), over rates, bandwidths and write sizes. */
export function modelQemuPlan(o: { quick?: boolean; tiny?: boolean } = {}): EngineConfig[] {
  const base = { ramMiB: 256, dirtyMiB: 64, downtimeLimitMs: 300, xbzrleCacheBytes: 64 * MiB };
  const cell = (rate: number, bwMiB: number, small: boolean): EngineConfig => ({
    ...base,
    id: `${rate} pages/s, ${bwMiB} MiB/s${small ? ', 64-byte writes + XBZRLE' : ''}`,
    rate,
    bandwidth: bwMiB * MiB,
    bytesPerWrite: small ? 64 : PAGE,
    xbzrle: small,
  });
  if (o.tiny) return [{ ...cell(1000, 64, false), ramMiB: 128, dirtyMiB: 16 }];
  const rates = o.quick ? [1000, 4000] : [500, 2000, 6000];
  const bws = o.quick ? [16, 64] : [16, 32, 64, 128];
  const out: EngineConfig[] = [];
  for (const small of o.quick ? [false] : [false, true])
    for (const r of rates) for (const b of bws) out.push(cell(r, b, small));
  if (o.quick) out.push(cell(2000, 32, true));
  return out;
}

/**
 * The guest program's profile from its parameters: uniform writes of `rate` pages/s over D pages leave
 * W(t) = D·(1 − e^(−rate·t/D)) distinct pages dirty after t; a write changes the page's first `bytesPerWrite` bytes,
 * which XBZRLE encodes as one run (a whole-page write overflows it).
 */
export function guestProgramProfile(c: EngineConfig, zeroFraction: number): GuestProfile {
  const D = c.dirtyMiB * (MiB / PAGE);
  const workingSet: { ms: number; pages: number }[] = [];
  for (let ms = 10; ms <= 120_000; ms *= 1.5) {
    workingSet.push({ ms, pages: D * (1 - Math.exp((-c.rate * ms) / 1000 / D)) });
  }
  const whole = c.bytesPerWrite >= PAGE;
  return {
    kind: 'livemig-profile',
    version: PROFILE_VERSION,
    source: {
      workload: `qemu test-VM program: ${c.rate} pages/s over ${c.dirtyMiB} MiB, ${c.bytesPerWrite} B`,
    },
    measuredAt: new Date().toISOString(),
    pageSize: PAGE,
    ramPages: c.ramMiB * (MiB / PAGE),
    durationMs: 120_000,
    tickMs: 10,
    workingSet,
    pagesWritten: D,
    dirtyPagesPerSec: c.rate,
    hotSet: [0.5, 0.9, 0.99].map((share) => ({ share, pages: Math.round(share * D) })),
    zeroFraction,
    incomingMs: null,
    xbzrle: [
      {
        lagMs: 1000,
        pages: 1000,
        unchanged: 0,
        overflow: whole ? 1 : 0,
        // One (zero run, changed run) pair: two ULEB128 lengths and the changed bytes.
        ratio: whole ? 1 : Math.min(1, (c.bytesPerWrite + 4) / PAGE),
      },
    ],
  };
}

/**
 * QEMU's costs from three calibration migrations of a near-idle VM, none a cell of the grid:
 * - `fast` at 1 GiB/s: round 1 runs at QEMU's own speed — its time per page (`pageSec`);
 * - `whole` at 8 MiB/s with a 60 s limit: everything fits the limit at once, so QEMU sends the whole RAM in the
 *   stop-and-copy, unthrottled — its time per page while the guest is paused (`stopPageSec`), and the zero pages;
 * - `slow` at 8 MiB/s with a 20 ms limit: almost nothing is left at the switch-over, so its downtime is the fixed
 *   cost, and what its rounds and downtime leave of the total is the time before round 1.
 */
export function qemuEngineCosts(
  fast: MigrationReport,
  whole: MigrationReport,
  slow: MigrationReport,
): EngineCosts {
  const first = fast.perRound[0];
  const pageSec =
    first && first.pagesSent > 0 ? first.durationMs / 1000 / first.pagesSent : DEFAULT_ENGINE_COSTS.pageSec;
  const rounds = slow.perRound.reduce((a, r) => a + r.durationMs, 0);
  return {
    ...DEFAULT_ENGINE_COSTS,
    pageSec,
    stopPageSec: whole.downtimeMs / 1000 / nonZeroPages(whole),
    startSec: Math.max(0, (slow.totalTimeMs - slow.setupTimeMs - rounds - slow.downtimeMs) / 1000),
    switchoverSec: Math.max(0, slow.downtimeMs / 1000),
  };
}

/**
 * Non-zero pages of the near-idle calibration VM: what went on the wire, in pages (a near-idle guest resends almost
 * nothing; QEMU's own zero-page counter also counts pages it scanned again and is not used).
 */
export function nonZeroPages(fast: MigrationReport): number {
  return Math.max(
    1,
    Math.min(fast.ramBytes / PAGE, fast.transferredBytes / (PAGE + DEFAULT_ENGINE_COSTS.pageHeaderBytes)),
  );
}

const rel = (p: number, m: number): number => (m > 0 ? (p - m) / m : 0);
function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]! : Number.NaN;
}

export function predictCell(c: EngineConfig, engine: EngineCosts, zeroFraction: number) {
  return predictPrecopy({
    ramBytes: c.ramMiB * MiB,
    dirtyRate: 0,
    bandwidth: c.bandwidth,
    profile: guestProgramProfile(c, zeroFraction),
    engine,
    migration: engineOptions(c),
    switchover: 'qemu',
  });
}

export async function runModelQemu(o: ModelQemuOptions = {}): Promise<ModelQemuResult> {
  const log = o.log ?? (() => undefined);
  const qemu = await findQemu();
  const unfit = qemuUnfitReason(qemu);
  if (unfit) throw new MigrationError('RESOURCE_LIMIT', `model-qemu: ${unfit}`);
  const image = await buildTestVm({ log });
  const plan = modelQemuPlan(o);
  const calib = { ...plan[0]!, rate: 10, bytesPerWrite: PAGE, xbzrle: false, downtimeLimitMs: 300 };
  log(
    'calibration: a near-idle VM at 1 GiB/s (time per page), all in the stop-and-copy, and at 8 MiB/s (fixed costs)',
  );
  const fast = await runQemu(image, { ...calib, id: 'calibration, 1 GiB/s', bandwidth: 1024 * MiB });
  const whole = await runQemu(image, {
    ...calib,
    id: 'calibration, stop-and-copy',
    bandwidth: 8 * MiB,
    downtimeLimitMs: 60_000,
  });
  const slow = await runQemu(image, {
    ...calib,
    id: 'calibration, 8 MiB/s',
    bandwidth: 8 * MiB,
    downtimeLimitMs: 20,
  });
  if (
    fast.report?.status !== 'completed' ||
    whole.report?.status !== 'completed' ||
    slow.report?.status !== 'completed'
  ) {
    throw new MigrationError('INTERNAL', 'model-qemu: a calibration migration of the test VM failed');
  }
  const engine = qemuEngineCosts(fast.report, whole.report, slow.report);
  const zeroFraction = 1 - nonZeroPages(whole.report) / (whole.report.ramBytes / PAGE);
  const rows: ModelQemuRow[] = [];
  for (const c of plan) {
    log(`${c.id}: QEMU`);
    let qemuMiBps: number | null = null;
    const run: EngineRun = await runQemu(image, c, {
      beforeMigrate: async (q) => {
        qemuMiBps = await calcDirtyRate(q).catch(() => null);
      },
    });
    const r = run.report;
    if (r?.status !== 'completed') {
      log(`${c.id}: QEMU's migration did not complete (${r?.status ?? 'failed'}); left out`);
      continue;
    }
    const p = predictCell(c, engine, zeroFraction);
    const profile = guestProgramProfile(c, zeroFraction);
    const w1 = profile.workingSet.reduce((a, w) => (Math.abs(w.ms - 1000) < Math.abs(a.ms - 1000) ? w : a));
    const measured = {
      totalTimeMs: r.totalTimeMs,
      downtimeMs: r.downtimeMs,
      bytes: r.transferredBytes,
      rounds: r.rounds,
      verified: run.healthy === true,
    };
    const predicted = {
      totalTimeMs: p.totalTime * 1000,
      downtimeMs: p.downtime * 1000,
      bytes: p.bytes,
      rounds: p.rounds,
    };
    rows.push({
      config: c,
      measured,
      predicted,
      error: {
        totalTime: rel(predicted.totalTimeMs, measured.totalTimeMs),
        bytes: rel(predicted.bytes, measured.bytes),
        downtimeMs: predicted.downtimeMs - measured.downtimeMs,
      },
      dirtyRate: { qemuMiBps, profileMiBps: (w1.pages * PAGE * 1000) / w1.ms / MiB },
    });
  }
  const abs = (f: (r: ModelQemuRow) => number) => rows.map((r) => Math.abs(f(r)));
  const result: ModelQemuResult = {
    qemu: `${qemu?.version.major}.${qemu?.version.minor}.${qemu?.version.micro}`,
    engine,
    zeroFraction,
    rows,
    summary: {
      totalTime: {
        median: quantile(
          abs((r) => r.error.totalTime),
          0.5,
        ),
        p90: quantile(
          abs((r) => r.error.totalTime),
          0.9,
        ),
      },
      bytes: {
        median: quantile(
          abs((r) => r.error.bytes),
          0.5,
        ),
        p90: quantile(
          abs((r) => r.error.bytes),
          0.9,
        ),
      },
      downtimeMs: {
        median: quantile(
          abs((r) => r.error.downtimeMs),
          0.5,
        ),
      },
    },
    files: [],
  };
  if (o.out) {
    const file = join(o.out, 'model-qemu.json');
    await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
    result.files.push(file);
  }
  return result;
}

/** QEMU's own estimate of the guest's dirty rate (calc-dirty-rate, page sampling, 1 s), MiB/s. */
async function calcDirtyRate(q: QmpClient): Promise<number | null> {
  await q.execute('calc-dirty-rate', { 'calc-time': 1 });
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const s = (await q.execute('query-dirty-rate')) as { status?: string; 'dirty-rate'?: number };
    if (s.status === 'measured') return typeof s['dirty-rate'] === 'number' ? s['dirty-rate'] : null;
  }
  return null;
}
