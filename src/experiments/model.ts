/**
 * model: the pre-copy model (src/migration/model.ts) against real migrations over a grid of bandwidths and dirty
 * rates. Two predictions per point: a priori (the configured bandwidth, write rate and working set) and calibrated
 * (the bandwidth, dirty rate and compression measured in the run itself), so the error of the model's inputs can
 * be told from the error of the model.
 */
import type { MigrationOptions } from '../migration/index.js';
import type { VegaLiteSpec } from '../report/index.js';
import { guest, MiB, mib, modelInput, ms, sizes, statusOf } from './common.js';
import type { Cell, CellResult, Experiment, ExperimentConfig, Predicted, Summary } from './types.js';

function grid(cfg: ExperimentConfig): { bandwidths: number[]; rates: number[] } {
  if (cfg.mode === 'tiny') return { bandwidths: [64], rates: [2000] };
  if (cfg.mode === 'quick') return { bandwidths: [16, 32, 64], rates: [1000, 4000] };
  return { bandwidths: [16, 32, 64], rates: [500, 2000, 4000, 8000] };
}

function plan(cfg: ExperimentConfig): Cell[] {
  const { warmupMs } = sizes(cfg);
  const cells: Cell[] = [];
  const { bandwidths, rates } = grid(cfg);
  for (const bw of bandwidths) {
    for (const rate of rates) {
      const g = guest(cfg, 'gap', { writeRate: rate });
      const o: Partial<MigrationOptions> = { maxBandwidth: bw * MiB };
      cells.push({
        id: `${bw}/${rate}`,
        labels: { 'MiB/s': bw, 'pages/s': rate },
        spec: { guest: g, warmupMs, options: o },
        model: modelInput(g, o),
      });
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

function medianAbs(xs: number[]): number {
  const s = xs
    .filter(Number.isFinite)
    .map(Math.abs)
    .sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

function summarise(results: readonly CellResult[], _cfg: ExperimentConfig): Summary {
  const rows: (string | number)[][] = [];
  const points: Record<string, string | number>[] = [];
  const errs = {
    total: [] as number[],
    calTotal: [] as number[],
    down: [] as number[],
    calDown: [] as number[],
  };
  const downAbs: number[] = [];
  const calDownAbs: number[] = [];
  for (const r of results) {
    const m = r.measured;
    const p = r.predicted;
    const c = r.calibrated;
    if (!p) continue;
    const done = m.status === 'completed';
    const e = (q: Predicted | undefined, f: (x: Predicted) => number, meas: number) =>
      q && done ? relErr(f(q), meas) : Number.NaN;
    const eT = e(p, (x) => x.totalTimeMs, m.migrationTimeMs);
    const cT = e(c, (x) => x.totalTimeMs, m.migrationTimeMs);
    const eD = e(p, (x) => x.downtimeMs, m.downtimeMs);
    const cD = e(c, (x) => x.downtimeMs, m.downtimeMs);
    if (done) {
      errs.total.push(eT);
      errs.calTotal.push(cT);
      errs.down.push(eD);
      errs.calDown.push(cD);
      downAbs.push(p.downtimeMs - m.downtimeMs);
      if (c) calDownAbs.push(c.downtimeMs - m.downtimeMs);
      points.push({ which: 'a priori', measured: ms(m.migrationTimeMs), predicted: ms(p.totalTimeMs) });
      if (c)
        points.push({ which: 'calibrated', measured: ms(m.migrationTimeMs), predicted: ms(c.totalTimeMs) });
    }
    rows.push([
      r.labels['MiB/s']!,
      r.labels['pages/s']!,
      Number(p.ratio.toFixed(2)),
      ms(m.migrationTimeMs),
      ms(p.totalTimeMs),
      fmtErr(eT),
      c ? ms(c.totalTimeMs) : '',
      fmtErr(cT),
      ms(m.downtimeMs),
      ms(p.downtimeMs),
      c ? ms(c.downtimeMs) : '',
      `${m.rounds} / ${p.rounds}${c ? ` / ${c.rounds}` : ''}`,
      `${mib(m.bytes)} / ${mib(p.bytes)}`,
      statusOf(r),
    ]);
  }
  const pctOf = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(0)}%` : 'n/a');
  const findings = [
    `Migration time (total without setup): median |error| ${pctOf(medianAbs(errs.total))} a priori, ` +
      `${pctOf(medianAbs(errs.calTotal))} calibrated, over ${errs.total.length} points.`,
    `Downtime: median |error| ${pctOf(medianAbs(errs.down))} a priori (median |Δ| ` +
      `${ms(medianAbs(downAbs))} ms), ${pctOf(medianAbs(errs.calDown))} calibrated (median |Δ| ` +
      `${ms(medianAbs(calDownAbs))} ms). The model's downtime is the last dirty set over the bandwidth; the ` +
      'switch-over itself (vCPU state, digest, READY/GO/RESUMED round trips, resuming the guest) is a fixed cost ' +
      'it leaves out (resumeOverhead = 0).',
    'A priori, the dirty rate is the configured write rate × page size; the real dirty set is smaller because ' +
      'writes land on pages already dirty in the same round (a uniform writer over W pages dirties ' +
      'W·(1 − e^(−rate·T/W)) distinct pages in T seconds, not rate·T), and the real bandwidth is what the token ' +
      'bucket and this machine allow. The calibrated column feeds both as measured in round 1.',
  ];
  const scatter: VegaLiteSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: 'Predicted against measured migration time',
    width: 420,
    height: 300,
    data: { values: points },
    layer: [
      {
        mark: { type: 'point', filled: true, size: 60 },
        encoding: {
          x: { field: 'measured', type: 'quantitative', title: 'measured ms' },
          y: { field: 'predicted', type: 'quantitative', title: 'predicted ms' },
          color: { field: 'which', type: 'nominal' },
        },
      },
    ],
  };
  return {
    tables: [
      {
        title: 'Measured against predicted',
        slug: 'model',
        columns: [
          'MiB/s',
          'pages/s',
          'λ',
          'measured ms',
          'predicted ms',
          'error',
          'calibrated ms',
          'cal. error',
          'downtime ms',
          'predicted downtime',
          'calibrated downtime',
          'rounds (meas/pred/cal)',
          'MiB (meas/pred)',
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
    'Migrates a gap guest (half of RAM in use, uniform writes) over a grid of link bandwidths and write rates ' +
    'and sets each measured migration time (total without setup) and downtime beside the pre-copy model’s ' +
    'prediction (src/migration/model.ts, also `livemig predict`), a priori and calibrated with the run’s own ' +
    'round-1 bandwidth, dirty rate and compression. Reports the error.',
  plan,
  summarise,
};
