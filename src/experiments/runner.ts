/**
 * The experiment runner: starts one pair of agents, runs every cell of an experiment's plan on it (repetitions
 * included), adds the model's predictions, and writes results/<name>/: results.json, cells.csv, one CSV per
 * summary table and a self-contained report.html with SVG charts.
 */
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { describeDowntime, downtimeDistribution } from '../migration/downtime-distribution.js';
import { renderReport, writeCsv, writeHtml, writeJson } from '../report/index.js';
import { VERSION } from '../version.js';
import { cacheSize } from './cache-size.js';
import { codecs } from './codecs.js';
import { median } from './common.js';
import { convergence } from './convergence.js';
import { dirtyLimit } from './dirty-limit.js';
import { calibratedInput, measureCell, toPredicted } from './measure.js';
import { mechanisms } from './mechanisms.js';
import { modelExperiment } from './model.js';
import { pageOrder } from './page-order.js';
import { type Pair, startPair } from './scenario.js';
import { strategies } from './strategies.js';
import {
  type Cell,
  type CellResult,
  EXPERIMENT_NAMES,
  type Experiment,
  type ExperimentConfig,
  type ExperimentMode,
  type ExperimentName,
  type Measured,
  type Summary,
} from './types.js';

export const EXPERIMENTS: Readonly<Record<ExperimentName, Experiment>> = {
  codecs,
  'cache-size': cacheSize,
  'page-order': pageOrder,
  strategies,
  convergence,
  model: modelExperiment,
  'dirty-limit': dirtyLimit,
  mechanisms,
};

export interface RunExperimentOptions {
  /** Small guests and few points: minutes for `all` on 2 cores. */
  quick?: boolean;
  /** Smaller still (seconds): for CI. Implies quick. */
  tiny?: boolean;
  seed?: number;
  /** Repetitions per cell (default: 1 in quick/tiny mode, 3 in full mode). */
  repetitions?: number;
  /** Only these workloads (experiments that sweep workloads: model). */
  workloads?: readonly string[];
  /** Results folder; the experiment writes into <out>/<name>/. Default "results". */
  out?: string;
  /** Called before each cell and once at the end (done = total). */
  onProgress?: (p: { done: number; total: number; cell?: string }) => void;
  /** Run on this pair instead of starting one (the caller closes it). */
  pair?: Pair;
  /** Only the cells whose id contains one of these (a run split in parts); every cell when absent. */
  cells?: readonly string[];
  /** The command line, for the report's footer. */
  command?: string;
}

export interface ExperimentOutput {
  name: ExperimentName;
  title: string;
  config: ExperimentConfig;
  results: CellResult[];
  summary: Summary;
  dir: string;
  files: string[];
  wallMs: number;
}

export function isExperimentName(name: string): name is ExperimentName {
  return (EXPERIMENT_NAMES as readonly string[]).includes(name);
}

export function experimentConfig(o: RunExperimentOptions): ExperimentConfig {
  const mode: ExperimentMode = o.tiny ? 'tiny' : o.quick ? 'quick' : 'full';
  const repetitions = o.repetitions ?? (mode === 'full' ? 3 : 1);
  if (!Number.isInteger(repetitions) || repetitions < 1) {
    throw new UsageError(`repetitions must be an integer ≥ 1 (got ${repetitions})`, '--repetitions');
  }
  return { mode, seed: o.seed ?? 1, repetitions, ...(o.workloads ? { workloads: o.workloads } : {}) };
}

/** The cells an experiment would run (for --help, --dry-run and progress totals). */
export function planOf(name: ExperimentName, o: RunExperimentOptions = {}): Cell[] {
  return selected(EXPERIMENTS[name].plan(experimentConfig(o)), o.cells);
}

function selected(cells: Cell[], only: readonly string[] | undefined): Cell[] {
  if (only === undefined) return cells;
  const out = cells.filter((c) => only.some((s) => c.id.includes(s)));
  if (out.length === 0) {
    throw new UsageError(`no cell id contains any of: ${only.join(', ')} (--dry-run lists them)`, '--cells');
  }
  return out;
}

export async function runExperiment(
  name: ExperimentName,
  o: RunExperimentOptions = {},
): Promise<ExperimentOutput> {
  if (!isExperimentName(name)) {
    throw new UsageError(
      `unknown experiment "${String(name)}"; known: ${EXPERIMENT_NAMES.join(', ')}, all`,
      'NAME',
    );
  }
  const exp = EXPERIMENTS[name];
  const config = experimentConfig(o);
  await exp.prepare?.(config);
  const cells = selected(exp.plan(config), o.cells);
  const t0 = performance.now();
  const pair = o.pair ?? (await startPair());
  const results: CellResult[] = [];
  const total = cells.length * config.repetitions;
  let done = 0;
  try {
    for (const cell of cells) {
      const reps: Measured[] = [];
      for (let i = 0; i < config.repetitions; i++) {
        o.onProgress?.({ done, total, cell: describe(cell) });
        reps.push(await measureSafely(pair, cell));
        done++;
      }
      results.push(resultOf(cell, reps));
    }
  } finally {
    if (!o.pair) await pair.close();
  }
  o.onProgress?.({ done: total, total });
  const own = exp.summarise(results, config);
  const summary = { ...own, findings: [...own.findings, downtimeFinding(results)] };
  const dir = join(o.out ?? 'results', name);
  const files = await writeResults(dir, exp, config, results, summary, o.command);
  return { name, title: exp.title, config, results, summary, dir, files, wallMs: performance.now() - t0 };
}

function describe(cell: Pick<Cell, 'labels'>): string {
  return Object.values(cell.labels).join(' ');
}

/** A cell whose scenario throws (rather than reporting a failed migration) is recorded, not fatal. */
async function measureSafely(pair: Pair, cell: Cell): Promise<Measured> {
  try {
    if (cell.measure) return { ...emptyMeasured(), ...(await cell.measure(pair)) };
    return await measureCell(pair, cell);
  } catch (err) {
    const m = emptyMeasured();
    m.status = 'error';
    m.errorCode = err instanceof Error ? `${err.name}: ${err.message}`.slice(0, 200) : String(err);
    return m;
  }
}

function emptyMeasured(): Measured {
  return {
    status: '',
    verified: false,
    switchoverReason: '',
    errorCode: '',
    rounds: 0,
    totalTimeMs: 0,
    setupTimeMs: 0,
    migrationTimeMs: 0,
    downtimeMs: 0,
    bytes: 0,
    pagesZero: 0,
    pagesRaw: 0,
    pagesXbzrle: 0,
    pagesRle: 0,
    pagesCompressed: 0,
    pagesSkipped: 0,
    pagesRedirtied: 0,
    cacheHits: 0,
    cacheMisses: 0,
    cacheOverflows: 0,
    cacheBytes: 0,
    cacheBytesPeak: 0,
    cacheResizes: 0,
    xbzrleRatio: 0,
    round1Bytes: 0,
    round1MiBps: 0,
    round1DirtyPagesPerSec: 0,
    resendRatio: 0,
    heldPagesMax: 0,
    stopCopyBytes: 0,
    switchoverPageMs: 0,
    switchoverFixedMs: 0,
    throttleMax: 0,
    postcopyFaults: 0,
    faultP50Ms: 0,
    faultP99Ms: 0,
    faultMaxMs: 0,
    guestSlowdown: 0,
    guestSlowdownEndToEnd: 0,
    readsPerSecBefore: 0,
    readsPerSecDuring: 0,
    readSlowdown: 0,
    dirtyLimitThrottleMs: 0,
    dirtyLimitRateMBps: 0,
    heldMsVcpu0: 0,
    heldMsOtherVcpus: 0,
    downtimeLimitEndMs: 0,
    sourceCpuMs: 0,
    sourceMainCpuMs: 0,
    destMainCpuMs: 0,
    destCpuMs: 0,
    oracleChecked: false,
    snapshotMs: 0,
    snapshotPauseMs: 0,
    snapshotFileBytes: 0,
    restoreMs: 0,
    loadAvg1: 0,
    wallMs: 0,
  };
}

/** Medians of numeric figures; the most common status and reason; verified only if every repetition was. */
export function medianMeasured(reps: readonly Measured[]): Measured {
  const out = emptyMeasured();
  const rec = out as unknown as Record<string, unknown>;
  for (const key of Object.keys(out) as (keyof Measured)[]) {
    const values = reps.map((r) => r[key]);
    if (typeof values[0] === 'number') rec[key] = median(values as number[]);
    else if (typeof values[0] === 'boolean') rec[key] = (values as boolean[]).every(Boolean);
    else rec[key] = mostCommon(values as string[]);
  }
  return out;
}

function mostCommon(xs: string[]): string {
  const counts = new Map<string, number>();
  for (const x of xs) counts.set(x, (counts.get(x) ?? 0) + 1);
  let best = xs[0] ?? '';
  for (const [x, n] of counts) if (n > (counts.get(best) ?? 0)) best = x;
  return best;
}

function resultOf(cell: Cell, reps: Measured[]): CellResult {
  const measured = medianMeasured(reps);
  const pageSize = cell.spec.guest.pageSize ?? 4096;
  const calibrated = cell.model ? calibratedInput(measured, cell.model, pageSize) : undefined;
  return {
    id: cell.id,
    labels: cell.labels,
    measured,
    ...(cell.model
      ? {
          predicted: toPredicted(cell.model),
          uniform: toPredicted({ ...cell.model, dirtySet: 'uniform' }),
        }
      : {}),
    ...(calibrated ? { calibrated: toPredicted(calibrated) } : {}),
    repetitions: reps,
  };
}

/** One flat record per cell: labels, measured figures, predictions (predicted_*, calibrated_*). */
export function cellRecords(results: readonly CellResult[]): Record<string, string | number | boolean>[] {
  return results.map((r) => {
    const rec: Record<string, string | number | boolean> = { id: r.id, ...r.labels, ...r.measured };
    for (const [prefix, p] of [
      ['predicted', r.predicted],
      ['uniform', r.uniform],
      ['calibrated', r.calibrated],
    ] as const) {
      if (!p) continue;
      for (const [k, v] of Object.entries(p)) rec[`${prefix}_${k}`] = v;
    }
    return rec;
  });
}

async function writeResults(
  dir: string,
  exp: Experiment,
  config: ExperimentConfig,
  results: CellResult[],
  summary: Summary,
  command: string | undefined,
): Promise<string[]> {
  const files: string[] = [];
  const json = join(dir, 'results.json');
  await writeJson(json, {
    experiment: exp.name,
    title: exp.title,
    description: exp.description,
    config,
    version: VERSION,
    date: new Date().toISOString(),
    command,
    findings: summary.findings,
    tables: summary.tables,
    cells: results,
  });
  files.push(json);
  const records = cellRecords(results);
  const columns = [...new Set(records.flatMap((r) => Object.keys(r)))];
  const cellsCsv = join(dir, 'cells.csv');
  await writeCsv(
    cellsCsv,
    columns,
    records.map((r) => columns.map((c) => r[c])),
  );
  files.push(cellsCsv);
  for (const t of summary.tables) {
    const path = join(dir, `${t.slug}.csv`);
    await writeCsv(path, t.columns, t.rows);
    files.push(path);
  }
  const html = await renderReport({
    title: `livemig experiment: ${exp.title}`,
    intro:
      `${exp.description}\n\nMode ${config.mode}, seed ${config.seed}, ${config.repetitions} repetition(s) per cell ` +
      '(figures are medians). Every figure is measured on a real migration between two agent processes over ' +
      'loopback TCP; the machine is shared, so CPU and time figures carry noise (±20 % is common).',
    sections: [
      ...(summary.findings.length > 0 ? [{ heading: 'Findings', text: summary.findings.join('\n\n') }] : []),
      ...summary.tables.map((t) => ({
        heading: t.title,
        table: { columns: t.columns, rows: t.rows },
      })),
      ...(summary.charts.length > 0 ? [{ heading: 'Charts', charts: summary.charts }] : []),
      {
        heading: 'Every cell',
        text: 'All figures of every cell (medians over repetitions); cells.csv has the same columns.',
        table: {
          columns: [
            'cell',
            'status',
            'rounds',
            'total ms',
            'downtime ms',
            'MiB sent',
            'src CPU ms',
            'reason',
          ],
          rows: results.map((r) => [
            describe(r),
            r.measured.status + (r.measured.errorCode ? ` (${r.measured.errorCode})` : ''),
            r.measured.rounds,
            Math.round(r.measured.totalTimeMs),
            Math.round(r.measured.downtimeMs),
            round(r.measured.bytes / 1024 / 1024, 1),
            Math.round(r.measured.sourceMainCpuMs),
            r.measured.switchoverReason,
          ]),
        },
      },
    ],
    footer: `livemig ${VERSION}${command ? ` — ${command}` : ''} — ${new Date().toISOString()}`,
  });
  const htmlPath = join(dir, 'report.html');
  await writeHtml(htmlPath, html);
  files.push(htmlPath);
  return files;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Downtime as a distribution over every completed repetition of every cell, beside a production fleet's. */
function downtimeFinding(results: readonly CellResult[]): string {
  const downtimes = results.flatMap((r) =>
    r.repetitions.filter((m) => m.status === 'completed').map((m) => m.downtimeMs),
  );
  return `${describeDowntime(downtimeDistribution(downtimes), 'completed migrations of this run (every cell and repetition)')}.`;
}
