/**
 * model: the pre-copy model (src/migration/model.ts) against real migrations. Before any cell runs, every guest of
 * the grid is profiled (`livemig profile`'s code: W(t), zero pages, XBZRLE deltas) and the engine's fixed and
 * per-page costs are measured on a near-idle guest at unlimited bandwidth — neither on a cell of the grid. Each cell
 * is then predicted from its guest's profile and the cell's own options (bandwidth, XBZRLE, stop rules), and
 * migrated for real. Also shown: the papers' model a priori with the uniform dirty set (no profile), for comparison.
 */
import { existsSync } from 'node:fs';
import { UsageError } from '../errors.js';
import type { GuestConfig } from '../guest/index.js';
import type { MigrationOptions, MigrationReport } from '../migration/index.js';
import { DEFAULT_ENGINE_COSTS, type EngineCosts, type PrecopyInput } from '../migration/model.js';
import { type GuestProfile, profileGuest, workingSetAt, xbzrleAt } from '../profile/index.js';
import type { VegaLiteSpec } from '../report/index.js';
import {
  type ExperimentWorkload,
  guest,
  MiB,
  mib,
  modelInput,
  ms,
  PAGE,
  SHIPPED_TRACES,
  shippedTracePath,
  sizes,
  statusOf,
} from './common.js';
import { toPredicted } from './measure.js';
import { runScenario, startPair } from './scenario.js';
import type { Cell, CellResult, Experiment, ExperimentConfig, Predicted, Summary } from './types.js';

interface Grid {
  workloads: ExperimentWorkload[];
  bandwidths: number[];
  rates: number[];
  xbzrle: boolean[];
}

function grid(cfg: ExperimentConfig): Grid {
  const traces = SHIPPED_TRACES.filter((t) => existsSync(shippedTracePath(t))).map(
    (t) => `trace:${t}` as const,
  );
  if (cfg.mode === 'tiny') return { workloads: ['gap'], bandwidths: [64], rates: [2000], xbzrle: [false] };
  const all: ExperimentWorkload[] = ['idle', 'gap', 'zipf', 'kv', ...traces];
  const workloads = cfg.workloads
    ? all.filter((w) => cfg.workloads!.includes(w.replace(/^trace:/, '')))
    : all;
  const unknown = (cfg.workloads ?? []).filter((w) => !all.some((a) => a.replace(/^trace:/, '') === w));
  if (unknown.length > 0) {
    throw new UsageError(
      `unknown workload ${unknown.map((w) => `"${w}"`).join(', ')} for experiment model; known: ${all.map((w) => w.replace(/^trace:/, '')).join(', ')}`,
      '--workloads',
    );
  }
  // quick: the whole grid (4 bandwidths × 3 write rates × XBZRLE off/on) on 64 MiB guests, one repetition; full:
  // the same grid on 256 MiB guests, three repetitions.
  return { workloads, bandwidths: [16, 32, 64, 128], rates: [500, 2000, 6000], xbzrle: [false, true] };
}

/** The guests of the grid: a trace plays at its recorded rate and idle at its own, so they take no write rate. */
function guests(
  cfg: ExperimentConfig,
): { key: string; workload: string; rate: number | ''; config: GuestConfig }[] {
  const g = grid(cfg);
  const out: { key: string; workload: string; rate: number | ''; config: GuestConfig }[] = [];
  for (const w of g.workloads) {
    const fixed = w === 'idle' || w.startsWith('trace:');
    for (const rate of fixed ? [undefined] : g.rates) {
      const config = guest(cfg, w, rate === undefined ? {} : { writeRate: rate });
      out.push({ key: JSON.stringify(config), workload: w.replace(/^trace:/, ''), rate: rate ?? '', config });
    }
  }
  return out;
}

/** What `prepare` measured: a profile per guest, the engine's costs without and with XBZRLE. */
let prepared:
  | { mode: string; profiles: Map<string, GuestProfile>; engine: EngineCosts; engineXbzrle: EngineCosts }
  | undefined;
/** The a-priori input of each cell (papers' model, uniform dirty set), for the comparison column. */
const classic = new Map<string, PrecopyInput>();
/** The profile-fed input of each cell, to re-run the model with what the run measured (summarise). */
const fed = new Map<string, PrecopyInput>();

/** The profile-fed model input of every cell of the latest plan (by cell id): to re-run the model on a run's data. */
export function modelInputs(): ReadonlyMap<string, PrecopyInput> {
  return fed;
}

/** Grid cells between two checks of the engine's speed. */
const CHECK_EVERY = 8;
const ENGINE_CHECK = 'engine check';

/** Calibration migrations per variant (without and with XBZRLE) and per kind (fast, slow). */
const CALIBRATION_RUNS = 3;
/**
 * Switch-over calibration migrations per variant: its fixed cost is bimodal on a shared host (3–5 ms or 15–20 ms,
 * timer and scheduling wake-ups), so the median needs more samples than the per-page costs do.
 */
const SWITCHOVER_RUNS = 6;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : Number.NaN;
}

/**
 * The engine's own costs from migrations of a near-idle guest (10 pages/s) at unlimited bandwidth: round 1's
 * time per non-zero page, the fixed time before round 1, and the switch-over's fixed cost. Median of three.
 */
export function engineCostsOf(reports: readonly MigrationReport[], zeroPageSec: number): EngineCosts {
  const c = engineSamples(reports, zeroPageSec);
  if (c.page.length === 0) return DEFAULT_ENGINE_COSTS;
  return {
    ...DEFAULT_ENGINE_COSTS,
    pageSec: median(c.page),
    startSec: median(c.start),
    switchoverSec: median(c.switchover),
    pageHeaderBytes: median(c.header),
  };
}

function engineSamples(
  reports: readonly MigrationReport[],
  zeroPageSec: number,
): { page: number[]; start: number[]; switchover: number[]; header: number[] } {
  const out = {
    page: [] as number[],
    start: [] as number[],
    switchover: [] as number[],
    header: [] as number[],
  };
  for (const r of reports) {
    const first = r.perRound[0];
    if (r.status !== 'completed' || !first) continue;
    const zero = r.pages.zero; // zero pages, skipped in round 1 (a near-idle guest writes none later)
    const nonZero = Math.max(1, first.pagesSent - zero);
    const pageSec = Math.max(0, first.durationMs / 1000 - zero * zeroPageSec) / nonZero;
    out.page.push(pageSec);
    out.header.push(Math.max(0, first.bytes / nonZero - r.pageSize));
    const rounds = r.perRound.reduce((a, x) => a + x.durationMs, 0);
    out.start.push(Math.max(0, (r.totalTimeMs - r.setupTimeMs - rounds - r.downtimeMs) / 1000));
    out.switchover.push(Math.max(0, r.downtimeMs / 1000 - r.dirtyPages * pageSec));
  }
  return out;
}

async function prepare(cfg: ExperimentConfig): Promise<void> {
  if (cfg.mode === 'tiny') return; // CI: the a-priori model only
  const profiles = new Map<string, GuestProfile>();
  const { warmupMs, ramBytes } = sizes(cfg);
  const durationMs = cfg.mode === 'quick' ? 2000 : 5000;
  for (const g of guests(cfg)) profiles.set(g.key, await profileGuest(g.config, { durationMs, warmupMs }));
  const engine = await measureEngineCosts({ ramBytes, warmupMs, seed: cfg.seed });
  prepared = { mode: cfg.mode, profiles, engine: engine.plain, engineXbzrle: engine.xbzrle };
}

/**
 * This engine's costs on this machine (`EngineCosts`), without and with XBZRLE, on a fresh pair of agents on
 * loopback, each variant alternated with the other so a burst of load spreads over both:
 * - per-page cost and the fixed time before round 1: `runs` migrations each of a near-idle guest (half of
 *   `ramBytes` in use, 10 pages/s) at unlimited bandwidth — round 1 then runs as fast as the source can send;
 * - the switch-over's fixed cost: SWITCHOVER_RUNS migrations per variant of a quarter of that guest at 8 MiB/s — at unlimited
 *   bandwidth the destination still has pages to apply when the switch-over starts, which a limited link does not
 *   leave (the grid's links are limited).
 * - the stop-and-copy's per-page cost: `runs` migrations each of a fast writer (20 000 pages/s) at 32 MiB/s with a
 *   60 s downtime limit, so that the switch-over follows round 1 with thousands of pages to send while the guest is
 *   paused (a limited link, so the destination has no backlog of round 1 left to apply).
 * Per-page cost per variant; the fixed costs, which do not depend on the codec, pooled. Medians.
 */
export async function measureEngineCosts(o: {
  ramBytes: number;
  warmupMs?: number;
  seed?: number;
  runs?: number;
}): Promise<{ plain: EngineCosts; xbzrle: EngineCosts }> {
  const pair = await startPair();
  const fast: [MigrationReport[], MigrationReport[]] = [[], []];
  const slow: MigrationReport[] = [];
  const stop: [MigrationReport[], MigrationReport[]] = [[], []];
  const guestOf = (ramBytes: number): GuestConfig => ({
    ramBytes,
    seed: o.seed ?? 1,
    workload: { name: 'gap', params: { workingSetBytes: ramBytes / 2, writeRate: 10 } },
  });
  try {
    const n = (o.runs ?? CALIBRATION_RUNS) * 2;
    for (let i = 0; i < n; i++) {
      const xbzrle = i % 2 === 1;
      const { report } = await runScenario(pair, {
        guest: guestOf(o.ramBytes),
        warmupMs: o.warmupMs ?? 300,
        options: { maxBandwidth: 0, xbzrle },
      });
      fast[i % 2]!.push(report);
    }
    const nSwitchover = Math.max(n, (o.runs ?? SWITCHOVER_RUNS) * 2);
    for (let i = 0; i < nSwitchover; i++) {
      const { report } = await runScenario(pair, {
        guest: guestOf(Math.max(1024 * 1024, o.ramBytes / 4)),
        warmupMs: o.warmupMs ?? 300,
        options: { maxBandwidth: 8 * MiB, xbzrle: i % 2 === 1 },
      });
      slow.push(report);
    }
    // The stop-and-copy's per-page cost: a fast writer and a downtime limit so high that the switch-over follows
    // round 1 with thousands of pages left to send while the guest is paused.
    for (let i = 0; i < n; i++) {
      const { report } = await runScenario(pair, {
        guest: {
          ...guestOf(o.ramBytes),
          workload: { name: 'gap', params: { workingSetBytes: o.ramBytes / 2, writeRate: 20_000 } },
        },
        warmupMs: o.warmupMs ?? 300,
        // On a limited link (32 MiB/s, not a bandwidth of the grid): at unlimited bandwidth the destination is still
        // applying round 1 when the switch-over starts, and that backlog would be priced as the stop-and-copy's.
        options: { maxBandwidth: 32 * MiB, downtimeLimitMs: 60_000, xbzrle: i % 2 === 1 },
      });
      stop[i % 2]!.push(report);
    }
  } finally {
    await pair.close();
  }
  const zeroSec = DEFAULT_ENGINE_COSTS.zeroPageSec;
  const plain = engineCostsOf(fast[0], zeroSec);
  const fixed = {
    startSec: median(engineSamples([...fast[0], ...fast[1]], zeroSec).start),
    switchoverSec: median(
      slow
        .filter((r) => r.status === 'completed')
        .map((r) => Math.max(0, r.downtimeMs / 1000 - r.dirtyPages * plain.pageSec)),
    ),
  };
  const stopPageSec = (reports: readonly MigrationReport[]) =>
    median(
      reports
        .filter((r) => r.status === 'completed' && r.dirtyPages > 100)
        .map((r) => Math.max(0, r.downtimeMs / 1000 - fixed.switchoverSec) / r.dirtyPages),
    );
  const withStop = (c: EngineCosts, reports: readonly MigrationReport[]): EngineCosts => {
    const s = stopPageSec(reports);
    return Number.isFinite(s) ? { ...c, stopPageSec: s } : c;
  };
  return {
    plain: withStop({ ...plain, ...fixed }, stop[0]),
    xbzrle: withStop({ ...engineCostsOf(fast[1], zeroSec), ...fixed }, stop[1]),
  };
}

function plan(cfg: ExperimentConfig): Cell[] {
  const { warmupMs } = sizes(cfg);
  const g = grid(cfg);
  const cells: Cell[] = [];
  const ready = prepared?.mode === cfg.mode ? prepared : undefined;
  const { ramBytes } = sizes(cfg);
  let n = 0;
  for (const gu of guests(cfg)) {
    for (const bw of g.bandwidths) {
      for (const xbzrle of g.xbzrle) {
        // Every few cells, the engine's speed again (a near-idle guest at unlimited bandwidth, not a cell of the
        // grid): the load on a shared machine drifts, and a prediction can use the latest measurement before it.
        if (ready && n++ % CHECK_EVERY === 0) {
          for (const x of [false, true]) {
            cells.push({
              id: `engine-check/${n}/${x ? 'xbzrle' : 'raw'}`,
              labels: { workload: ENGINE_CHECK, 'pages/s': 10, 'MiB/s': 0, xbzrle: x ? 'on' : 'off' },
              spec: {
                guest: {
                  ramBytes,
                  seed: cfg.seed,
                  workload: { name: 'gap', params: { workingSetBytes: ramBytes / 2, writeRate: 10 } },
                },
                warmupMs,
                options: { maxBandwidth: 0, xbzrle: x },
              },
            });
          }
        }
        const o: Partial<MigrationOptions> = { maxBandwidth: bw * MiB, ...(xbzrle ? { xbzrle: true } : {}) };
        const id = `${gu.workload}/${gu.rate}/${bw}/${xbzrle ? 'xbzrle' : 'raw'}`;
        const apriori = modelInput(gu.config, o);
        classic.set(id, { ...apriori, dirtySet: 'uniform' });
        const profile = ready?.profiles.get(gu.key);
        const input: PrecopyInput | undefined = profile
          ? {
              ...apriori,
              profile,
              migration: xbzrle ? { xbzrle: true } : {},
              engine: xbzrle ? ready!.engineXbzrle : ready!.engine,
            }
          : undefined;
        if (input) fed.set(id, input);
        cells.push({
          id,
          labels: { workload: gu.workload, 'pages/s': gu.rate, 'MiB/s': bw, xbzrle: xbzrle ? 'on' : 'off' },
          spec: { guest: gu.config, warmupMs, options: o },
          model: input ?? apriori,
        });
      }
    }
  }
  return cells;
}

function relErr(pred: number, meas: number): number {
  return meas > 0 ? (pred - meas) / meas : Number.NaN;
}

function fmtErr(e: number): string {
  return Number.isFinite(e) ? `${e >= 0 ? '+' : '−'}${Math.abs(e * 100).toFixed(0)}%` : 'n/a';
}

/** The q-quantile (0..1) of |x| over the finite xs. */
function quantileAbs(xs: number[], q: number): number {
  const s = xs
    .filter(Number.isFinite)
    .map(Math.abs)
    .sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const i = (s.length - 1) * q;
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return s[lo]! + (s[hi]! - s[lo]!) * (i - lo);
}

const pctOf = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(0)}%` : 'n/a');

const toPred = (i: PrecopyInput | undefined): Predicted | undefined => (i ? toPredicted(i) : undefined);

function summarise(results: readonly CellResult[], cfg: ExperimentConfig): Summary {
  const ready = prepared?.mode === cfg.mode ? prepared : undefined;
  const rows: (string | number)[][] = [];
  const points: Record<string, string | number>[] = [];
  const err = {
    total: [] as number[],
    bytes: [] as number[],
    down: [] as number[],
    classic: [] as number[],
    throughput: [] as number[],
    throughputBytes: [] as number[],
    w1: [] as number[],
  };
  let downOk = 0;
  const downDelta: number[] = [];
  const byWorkload = new Map<string, number[]>();
  // The engine's per-page cost from the latest check before each cell (results come in plan order).
  const local = { off: ready?.engine.pageSec, on: ready?.engineXbzrle.pageSec };
  const localErr: number[] = [];
  const localBytesErr: number[] = [];
  for (const r of results) {
    const m = r.measured;
    if (r.labels.workload === ENGINE_CHECK) {
      const hdr = ready?.engine.pageHeaderBytes ?? DEFAULT_ENGINE_COSTS.pageHeaderBytes;
      if (m.status === 'completed' && m.round1MiBps > 0 && m.round1Bytes > 0) {
        const t1 = m.round1Bytes / (m.round1MiBps * MiB);
        local[r.labels.xbzrle === 'on' ? 'on' : 'off'] = t1 / (m.round1Bytes / (PAGE + hdr));
      }
      continue;
    }
    const p = r.predicted;
    if (!p) continue;
    const done = m.status === 'completed';
    const c = toPred(classic.get(r.id));
    const eT = done ? relErr(p.totalTimeMs, m.migrationTimeMs) : Number.NaN;
    const eB = done ? relErr(p.bytes, m.bytes) : Number.NaN;
    const eD = done ? relErr(p.downtimeMs, m.downtimeMs) : Number.NaN;
    const eC = done && c ? relErr(c.totalTimeMs, m.migrationTimeMs) : Number.NaN;
    // The same model with this run's own round-1 throughput in place of the engine's measured per-page cost, and the
    // guest's speed during the migration as the engine measured it: what is left is the error of the dirty sets, the
    // stop rule and the fixed costs, not of the machine's speed.
    const input = fed.get(r.id);
    const t1 = m.round1MiBps > 0 ? m.round1Bytes / (m.round1MiBps * MiB) : Number.NaN;
    const tp =
      done && input && t1 > 0
        ? toPred({
            ...input,
            bandwidth: m.round1MiBps * MiB,
            engine: { ...input.engine, pageSec: 0, zeroPageSec: 0 },
            guestSpeed: Math.min(1, Math.max(0.05, 1 - m.guestSlowdown)),
          })
        : undefined;
    const eP = tp ? relErr(tp.totalTimeMs, m.migrationTimeMs) : Number.NaN;
    const pageSec = local[r.labels.xbzrle === 'on' ? 'on' : 'off'];
    const lp =
      done && input && pageSec !== undefined
        ? toPred({ ...input, engine: { ...input.engine, pageSec } })
        : undefined;
    const eL = lp ? relErr(lp.totalTimeMs, m.migrationTimeMs) : Number.NaN;
    if (lp) {
      localErr.push(eL);
      localBytesErr.push(relErr(lp.bytes, m.bytes));
    }
    const ePB = tp ? relErr(tp.bytes, m.bytes) : Number.NaN;
    // Round 1's dirty set: measured, and W(T₁) of the profile at round 1's measured duration.
    const d1 = m.round1DirtyPagesPerSec * t1;
    const w1 = input?.profile && t1 > 0 ? workingSetAt(input.profile, t1 * 1000) : Number.NaN;
    const eW = done && d1 > 20 ? relErr(w1, d1) : Number.NaN;
    if (done) {
      err.throughput.push(eP);
      err.throughputBytes.push(ePB);
      err.w1.push(eW);
      err.total.push(eT);
      err.bytes.push(eB);
      err.down.push(eD);
      err.classic.push(eC);
      const d = Math.abs(p.downtimeMs - m.downtimeMs);
      downDelta.push(d);
      if (d <= Math.max(0.1 * m.downtimeMs, 5)) downOk++;
      const w = String(r.labels.workload);
      byWorkload.set(w, [...(byWorkload.get(w) ?? []), eT]);
      points.push({ workload: w, measured: ms(m.migrationTimeMs), predicted: ms(p.totalTimeMs) });
    }
    rows.push([
      r.labels.workload!,
      r.labels['pages/s']!,
      r.labels['MiB/s']!,
      r.labels.xbzrle!,
      ms(m.migrationTimeMs),
      ms(p.totalTimeMs),
      fmtErr(eT),
      mib(m.bytes),
      mib(p.bytes),
      fmtErr(eB),
      ms(m.downtimeMs),
      ms(p.downtimeMs),
      fmtErr(eD),
      `${m.rounds} / ${p.rounds}`,
      Number.isFinite(d1) ? `${Math.round(d1)} / ${Number.isFinite(w1) ? Math.round(w1) : ''}` : '',
      `${Math.round(m.guestSlowdown * 100)}%`,
      lp ? fmtErr(eL) : '',
      tp ? fmtErr(eP) : '',
      c ? fmtErr(eC) : '',
      statusOf(r),
    ]);
  }
  const n = err.total.length;
  const loads = results.map((r) => r.measured.loadAvg1 ?? 0).filter((x) => x > 0);
  const loadLine = loads.length
    ? `Load average (1 min) at the cells: ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}, median ${median(loads).toFixed(1)}.`
    : 'Load average not measured.';
  const e = ready?.engine;
  const ex = ready?.engineXbzrle;
  const us = (s: number) => `${(s * 1e6).toFixed(1)} µs`;
  const findings = [
    `Over ${n} completed migrations, |error| of the ${ready ? 'profile-fed' : 'a-priori'} model: total time median ${pctOf(quantileAbs(err.total, 0.5))}, ` +
      `p90 ${pctOf(quantileAbs(err.total, 0.9))}; bytes median ${pctOf(quantileAbs(err.bytes, 0.5))}, p90 ` +
      `${pctOf(quantileAbs(err.bytes, 0.9))}; downtime median ${pctOf(quantileAbs(err.down, 0.5))} ` +
      `(median |Δ| ${ms(quantileAbs(downDelta, 0.5))} ms; ${downOk} of ${n} within max(10 %, 5 ms)). ` +
      `Targets: ≤ 10 % median and ≤ 25 % p90 for time and bytes; downtime within max(10 %, 5 ms) at the median. ${loadLine}`,
    `With the engine's per-page cost from the latest check before each cell (a near-idle guest at unlimited ` +
      `bandwidth every ${CHECK_EVERY} cells) instead of the one measured before the grid: total time median |error| ` +
      `${pctOf(quantileAbs(localErr, 0.5))}, p90 ${pctOf(quantileAbs(localErr, 0.9))}; bytes median ` +
      `${pctOf(quantileAbs(localBytesErr, 0.5))}, p90 ${pctOf(quantileAbs(localBytesErr, 0.9))}.`,
    `With each run's own round-1 throughput instead of the engine's per-page cost, and the guest's measured speed ` +
      `during the migration (the machine's speed taken out): ` +
      `total time median |error| ${pctOf(quantileAbs(err.throughput, 0.5))}, p90 ${pctOf(quantileAbs(err.throughput, 0.9))}; ` +
      `bytes median ${pctOf(quantileAbs(err.throughputBytes, 0.5))}, p90 ${pctOf(quantileAbs(err.throughputBytes, 0.9))}. ` +
      `Round 1's dirty set against the profile's W(T₁) at round 1's measured duration (cells with > 20 dirty pages): ` +
      `median |error| ${pctOf(quantileAbs(err.w1, 0.5))}, p90 ${pctOf(quantileAbs(err.w1, 0.9))}.`,
    `The papers' model a priori (configured write rate, uniform dirty set, no profile): total time median |error| ` +
      `${pctOf(quantileAbs(err.classic, 0.5))}, p90 ${pctOf(quantileAbs(err.classic, 0.9))}.`,
    `Total time, median |error| per workload: ${[...byWorkload]
      .map(([w, xs]) => `${w} ${pctOf(quantileAbs(xs, 0.5))}`)
      .join(', ')}.`,
    e && ex
      ? `Engine costs measured before the grid (near-idle guest at unlimited bandwidth, and a quarter of it at 8 MiB/s ` +
        `for the switch-over; medians of ${CALIBRATION_RUNS} each, ${SWITCHOVER_RUNS * 2} for the switch-over): ${us(e.pageSec)} ` +
        `per page (${us(ex.pageSec)} with XBZRLE), ${ms(e.startSec * 1000)} ms before round 1, switch-over ` +
        `${ms(e.switchoverSec * 1000)} ms (${ms(ex.switchoverSec * 1000)} ms with XBZRLE), ${e.pageHeaderBytes.toFixed(1)} header bytes per page, ` +
        `${us(e.stopPageSec ?? e.pageSec)} per page in the stop-and-copy (${us(ex.stopPageSec ?? ex.pageSec)} with XBZRLE).`
      : 'No profiles (tiny mode or a plan without prepare): the a-priori model only.',
  ];
  const scatter: VegaLiteSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: 'Predicted (from the profile) against measured migration time',
    width: 420,
    height: 300,
    data: { values: points },
    layer: [
      {
        mark: { type: 'point', filled: true, size: 60 },
        encoding: {
          x: { field: 'measured', type: 'quantitative', title: 'measured ms', scale: { type: 'log' } },
          y: { field: 'predicted', type: 'quantitative', title: 'predicted ms', scale: { type: 'log' } },
          color: { field: 'workload', type: 'nominal' },
        },
      },
    ],
  };
  const profileRows: (string | number)[][] = [];
  if (ready) {
    for (const g of guests(cfg)) {
      const p = ready.profiles.get(g.key);
      if (!p) continue;
      const x = xbzrleAt(p, 100);
      profileRows.push([
        g.workload,
        g.rate,
        Math.round(p.dirtyPagesPerSec),
        Math.round(workingSetAt(p, 100)),
        Math.round(workingSetAt(p, 1000)),
        p.pagesWritten,
        p.hotSet.find((h) => h.share === 0.9)?.pages ?? '',
        p.zeroFraction === null ? '' : `${(p.zeroFraction * 100).toFixed(0)}%`,
        x ? x.ratio.toFixed(3) : '',
        p.incomingMs == null ? '' : Math.round(p.incomingMs),
      ]);
    }
  }
  return {
    tables: [
      {
        title: 'Guest profiles (measured before the grid)',
        slug: 'model-profiles',
        columns: [
          'workload',
          'pages/s',
          'dirty pages/s',
          'W(100 ms)',
          'W(1 s)',
          'pages written',
          'hot set (90 %)',
          'zero pages',
          'XBZRLE delta ÷ page',
          'destination start ms',
        ],
        rows: profileRows,
      },
      {
        title: 'Measured against predicted',
        slug: 'model',
        columns: [
          'workload',
          'pages/s',
          'MiB/s',
          'XBZRLE',
          'measured ms',
          'predicted ms',
          'time error',
          'MiB',
          'predicted MiB',
          'bytes error',
          'downtime ms',
          'predicted downtime',
          'downtime error',
          'rounds (meas / pred)',
          'round-1 dirty pages (meas / W(T₁))',
          'guest slowdown',
          'time error, engine speed of the last check',
          'time error, measured throughput and guest speed',
          'a-priori time error',
          'status',
        ],
        rows,
      },
    ],
    charts: [scatter],
    findings,
  };
}

export const modelExperiment: Experiment = {
  name: 'model',
  title: 'The pre-copy model against measurements',
  description:
    'Profiles every guest of the grid first (working-set curve, zero pages, XBZRLE deltas: `livemig profile`) and ' +
    'measures the engine’s fixed and per-page costs on a near-idle guest, then migrates idle, gap, zipf, kv and the ' +
    'shipped traces over a grid of bandwidths and write rates, with and without XBZRLE, and sets each measured ' +
    'migration time, bytes and downtime beside the profile-fed prediction (src/migration/model.ts, also ' +
    '`livemig predict`). Reports median and p90 |error|.',
  prepare,
  plan,
  summarise,
};
