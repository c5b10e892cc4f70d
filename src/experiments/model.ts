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
  type Which = 'priori' | 'uniform' | 'calibrated';
  const total: Record<Which, number[]> = { priori: [], uniform: [], calibrated: [] };
  const down: Record<Which, number[]> = { priori: [], uniform: [], calibrated: [] };
  const downAbs: Record<Which, number[]> = { priori: [], uniform: [], calibrated: [] };
  for (const r of results) {
    const m = r.measured;
    const p = r.predicted;
    if (!p) continue;
    const done = m.status === 'completed';
    const preds: Record<Which, Predicted | undefined> = {
      priori: p,
      uniform: r.uniform,
      calibrated: r.calibrated,
    };
    const errT: Record<Which, number> = { priori: Number.NaN, uniform: Number.NaN, calibrated: Number.NaN };
    for (const w of ['priori', 'uniform', 'calibrated'] as const) {
      const q = preds[w];
      if (!q || !done) continue;
      errT[w] = relErr(q.totalTimeMs, m.migrationTimeMs);
      total[w].push(errT[w]);
      down[w].push(relErr(q.downtimeMs, m.downtimeMs));
      downAbs[w].push(q.downtimeMs - m.downtimeMs);
      points.push({
        which: w === 'priori' ? 'a priori' : w === 'uniform' ? 'uniform dirty set' : 'calibrated',
        measured: ms(m.migrationTimeMs),
        predicted: ms(q.totalTimeMs),
      });
    }
    const u = r.uniform;
    const c = r.calibrated;
    rows.push([
      r.labels['MiB/s']!,
      r.labels['pages/s']!,
      Number(p.ratio.toFixed(2)),
      ms(m.migrationTimeMs),
      ms(p.totalTimeMs),
      fmtErr(errT.priori),
      u ? ms(u.totalTimeMs) : '',
      fmtErr(errT.uniform),
      c ? ms(c.totalTimeMs) : '',
      fmtErr(errT.calibrated),
      ms(m.downtimeMs),
      ms(p.downtimeMs),
      u ? ms(u.downtimeMs) : '',
      c ? ms(c.downtimeMs) : '',
      `${m.rounds} / ${p.rounds} / ${u?.rounds ?? ''} / ${c?.rounds ?? ''}`,
      `${mib(m.bytes)} / ${mib(p.bytes)}`,
      statusOf(r),
    ]);
  }
  const pctOf = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(0)}%` : 'n/a');
  const worst = (xs: number[]) => pctOf(Math.max(...xs.filter(Number.isFinite).map(Math.abs)));
  const findings = [
    `Migration time (total without setup), median |error| over ${total.priori.length} points: ` +
      `${pctOf(medianAbs(total.priori))} a priori (worst ${worst(total.priori)}), ` +
      `${pctOf(medianAbs(total.uniform))} a priori with the uniform dirty set (worst ${worst(total.uniform)}), ` +
      `${pctOf(medianAbs(total.calibrated))} calibrated (worst ${worst(total.calibrated)}).`,
    `Downtime, median |error|: ${pctOf(medianAbs(down.priori))} a priori (median |Δ| ` +
      `${ms(medianAbs(downAbs.priori))} ms), ${pctOf(medianAbs(down.uniform))} uniform ` +
      `(${ms(medianAbs(downAbs.uniform))} ms), ${pctOf(medianAbs(down.calibrated))} calibrated ` +
      `(${ms(medianAbs(downAbs.calibrated))} ms). The model's downtime is the last dirty set over the bandwidth; ` +
      'the switch-over itself (vCPU state, digest, READY/GO/RESUMED round trips, resuming the guest) is a fixed ' +
      'cost it leaves out (resumeOverhead = 0).',
    "A priori, the dirty rate is the configured write rate × page size, and the papers' model counts every " +
      'write as a newly dirty page; a uniform writer over W pages really dirties W·(1 − e^(−rate·T/W)) distinct ' +
      'pages in T seconds (the "uniform" columns, dirtySet: "uniform"). The calibrated columns feed the papers\' ' +
      'model the bandwidth and dirty-page rate measured in round 1.',
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
          'uniform ms',
          'uniform error',
          'calibrated ms',
          'cal. error',
          'downtime ms',
          'predicted downtime',
          'uniform downtime',
          'calibrated downtime',
          'rounds (meas/pred/unif/cal)',
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
    'prediction (src/migration/model.ts, also `livemig predict`): a priori, a priori with the uniform-writer ' +
    'dirty set, and calibrated with the run’s own round-1 bandwidth, dirty rate and compression. Reports the error.',
  plan,
  summarise,
};
