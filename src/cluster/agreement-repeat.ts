/**
 * The cluster's figures as what they are: a distribution. The same configuration (policy, day, window, hosts, VMs,
 * seed, limits) decides differently from run to run — a THR or LR decision turns on a tenth of a percent of measured
 * utilisation, and each run measures its own noise (src/cluster/divergence.ts) — so one run's migration count is one
 * draw. `livemig cluster --repeat N` (or `livemig sim --against DIR DIR …` over saved runs) compares the plain
 * simulator, which is deterministic, with the median of N runs, and shows the runs' range next to it.
 */
import { UsageError } from '../errors.js';
import { medianOf } from '../sim/index.js';
import { type Agreement, type AgreementRow, agreementRows, type SimVariant } from './agreement.js';
import { formatDelta, formatMetric, formatTarget } from './agreement-table.js';
import type { Divergence, FidelityBand } from './divergence.js';
import { type ClusterMetrics, METRIC_LABELS } from './metrics.js';

/** What a run contributes: its configuration (to check the runs are of one), its metrics and its agreement. */
export interface RepeatRun {
  readonly policy: string;
  readonly day: string;
  readonly window: { readonly startSec: number; readonly durationSec: number };
  readonly speed: number;
  readonly hosts: readonly unknown[];
  readonly vms: readonly unknown[];
  readonly seed: number;
  readonly metrics: ClusterMetrics;
  readonly agreement: Agreement;
}

export interface RepeatRow {
  metric: string;
  /** The cluster's figure in each run, in run order. */
  values: number[];
  median: number;
  min: number;
  max: number;
  /** The plain simulator's figure (the same in every run: deterministic). */
  sim: number;
  /** The agreement of the median with the simulator: relative difference, target, verdict (as one run's row). */
  row: AgreementRow;
  /** The simulator's figure lies within the runs' range. */
  inRange: boolean;
  /** Per run, the simulator on that run's measured demand and migrations: its relative difference (null: sim 0). */
  measuredDemand: (number | null)[];
}

export interface RepeatAgreement {
  runs: number;
  label: string;
  variant: string;
  rows: RepeatRow[];
  /** Per run, where its rounds planned apart from the simulator's (null: the run recorded no rounds). */
  divergence: (Omit<Divergence, 'intervals' | 'fidelity'> | null)[];
  /** Measured against traced per VM and interval, by band of traced utilisation, the runs pooled: the noise. */
  noise: FidelityBand[];
}

/**
 * Bands of several runs as one: each band's VM-intervals together (means weighted by count; the sd of measured −
 * traced over all of them, from each run's count, bias and sd).
 */
export function pooledFidelity(runs: readonly (readonly FidelityBand[])[]): FidelityBand[] {
  const by = new Map<string, { n: number; traced: number; measured: number; diff2: number }>();
  for (const bands of runs) {
    for (const b of bands) {
      const a = by.get(b.band) ?? { n: 0, traced: 0, measured: 0, diff2: 0 };
      const bias = b.measured - b.traced;
      a.n += b.n;
      a.traced += b.traced * b.n;
      a.measured += b.measured * b.n;
      a.diff2 += b.n * (b.sd * b.sd + bias * bias);
      by.set(b.band, a);
    }
  }
  return [...by].map(([band, a]) => {
    const bias = (a.measured - a.traced) / a.n;
    return {
      band,
      n: a.n,
      traced: a.traced / a.n,
      measured: a.measured / a.n,
      sd: Math.sqrt(Math.max(0, a.diff2 / a.n - bias * bias)),
    };
  });
}

const METRICS: readonly (keyof ClusterMetrics)[] = [
  'energyKWh',
  'migrations',
  'slatah',
  'pdm',
  'slav',
  'esv',
  'hostShutdowns',
  'meanMigrationTime',
  'meanDowntime',
  'migrationBytes',
];

/** The configuration that must be equal across the runs. */
function configOf(r: RepeatRun): string {
  return JSON.stringify([
    r.policy,
    r.day,
    r.window.startSec,
    r.window.durationSec,
    r.speed,
    r.hosts.length,
    r.vms.length,
    r.seed,
  ]);
}

/** The runs of one configuration against the plain simulator (`model`): the median, the range, the verdict. */
export function repeatAgreement(runs: readonly RepeatRun[]): RepeatAgreement {
  if (runs.length === 0)
    throw new UsageError('no run to compare: give at least one cluster run', '--against');
  const first = runs[0]!;
  for (const r of runs) {
    if (configOf(r) !== configOf(first)) {
      throw new UsageError(
        `the runs are not of one configuration (${first.policy} ${first.day} against ${r.policy} ${r.day}, or ` +
          'another window, speed, size or seed): a distribution is of repeats of the same run',
        '--against',
      );
    }
  }
  const model = first.agreement.variants.find((v) => v.key === 'model');
  if (!model) throw new UsageError('the runs have no plain simulator run to compare with', '--against');
  const medians = Object.fromEntries(
    METRICS.map((k) => [k, medianOf(runs.map((r) => r.metrics[k]))]),
  ) as unknown as ClusterMetrics;
  // The median against the plain simulator, judged as one run's row is (the same targets and absolute tolerance);
  // the ladder's causes need the whole ladder of one run, so none here.
  const rows = agreementRows(medians, [model as SimVariant], {
    deliveredRatio: 1,
    measuredMigrationS: 0,
    modelMigrationS: 0,
    measuredDowntimeS: 0,
    modelDowntimeS: 0,
    deferred: 0,
    spanIntervals: 0,
    meanSlowdown: 0,
  });
  const keyOf = new Map<string, keyof ClusterMetrics>(METRIC_LABELS.map(([k, label]) => [label, k]));
  return {
    runs: runs.length,
    label: `${first.policy}, ${first.day}`,
    variant: model.label,
    noise: pooledFidelity(runs.map((r) => r.agreement.divergence?.fidelity ?? [])),
    divergence: runs.map((r) => {
      const d = r.agreement.divergence;
      if (!d) return null;
      const { intervals: _i, fidelity: _f, ...rest } = d;
      return rest;
    }),
    rows: rows.map((row) => {
      const k = keyOf.get(row.metric)!;
      const values = runs.map((r) => r.metrics[k]);
      const min = Math.min(...values);
      const max = Math.max(...values);
      const sim = row.sims[0]!;
      return {
        metric: row.metric,
        values,
        median: row.cluster,
        min,
        max,
        sim,
        row: { ...row, cause: '' },
        inRange: sim >= min && sim <= max,
        measuredDemand: runs.map((r) => {
          const md = r.agreement.rows.find((x) => x.metric === row.metric);
          const i = r.agreement.variants.findIndex((v) => v.key === 'measured-demand');
          return md && i >= 0 ? (md.relative[i] ?? null) : null;
        }),
      };
    }),
  };
}

/** The distribution as Markdown (docs/cluster.md) or plain lines (the CLI): one row per metric. */
export function repeatMarkdown(a: RepeatAgreement): string {
  const head = [
    'metric',
    `cluster: median of ${a.runs} (min–max)`,
    'runs',
    a.variant,
    'Δ (median)',
    'sim in the runs’ range',
    'target',
  ];
  const lines = [
    `**${a.label}**, ${a.runs} runs of one configuration:`,
    '',
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
  ];
  for (const r of a.rows) {
    const f = (x: number): string => formatMetric(r.metric, x);
    lines.push(
      `| ${[
        r.metric,
        `${f(r.median)} (${f(r.min)}–${f(r.max)})`,
        r.values.map(f).join(', '),
        f(r.sim),
        formatDelta(r.row, 0),
        r.inRange ? 'yes' : 'no',
        formatTarget(r.row),
      ].join(' | ')} |`,
    );
  }
  const mig = a.rows.find((r) => r.metric === 'migrations');
  if (mig) {
    const rel = mig.measuredDemand.map((x) =>
      x === null ? 'n/a' : `${x >= 0 ? '+' : ''}${(x * 100).toFixed(0)} %`,
    );
    lines.push(
      '',
      `Migrations, per run, against the simulator on that run's measured demand: ${rel.join(', ')}.`,
    );
  }
  const d = a.divergence.filter((x) => x !== null);
  if (d.length > 0) {
    lines.push(
      '',
      'Rounds planned apart from the simulator, per run (first; by cause measurement / placement / in flight / ' +
        `other; rounds the measurement alone turned on the run's own state): ${d
          .map(
            (x) =>
              `${x.differing}/${x.rounds} (${x.firstDiffering ?? '—'}; ${x.byCause.measurement}/` +
              `${x.byCause.placement}/${x.byCause['in-flight']}/${x.byCause.other}; ${x.measurementFlips})`,
          )
          .join(', ')}.`,
    );
  }
  if (a.noise.length > 0) {
    const pt = (x: number): string => `${x >= 0 ? '+' : '−'}${Math.abs(x * 100).toFixed(1)}`;
    lines.push(
      '',
      `Measured − traced per VM and interval, the ${a.runs} runs pooled (points of the VM's MIPS: mean, sd, ` +
        `VM-intervals): ${a.noise
          .map((b) => `${b.band} ${pt(b.measured - b.traced)}, sd ${(b.sd * 100).toFixed(1)} (${b.n})`)
          .join('; ')}.`,
    );
  }
  return lines.join('\n');
}
