/**
 * The agreement table as text (the CLI) and as Markdown (docs/cluster.md is written from runs' cluster.json with
 * it): the cluster's metric, each simulator variant with its relative difference, the target, and per metric the
 * assumption behind a gap; then migration time per VM against the model.
 */
import Table from 'cli-table3';
import type { Agreement, AgreementRow } from './agreement.js';
import { divergenceMarkdown } from './divergence.js';

/** What the tables read of a run: its agreement. */
type WithAgreement = { readonly agreement: Agreement };

const pct = (x: number): string => `${(x * 100).toFixed(2)} %`;

export function formatMetric(metric: string, x: number): string {
  if (metric === 'SLATAH' || metric === 'PDM') return pct(x);
  if (metric === 'SLAV' || metric === 'ESV') return x.toExponential(2);
  if (metric.startsWith('energy')) return x.toFixed(3);
  return Number.isInteger(x) ? String(x) : x.toFixed(1);
}

export function formatRelative(r: number | null, ok: boolean | null = null): string {
  const mark = ok === null ? '' : ok ? ' ✓' : ' ✗';
  if (r === null) return `n/a (sim 0)${mark}`;
  return `${r >= 0 ? '+' : ''}${(r * 100).toFixed(0)} %${mark}`;
}

/**
 * Variant i's Δ cell: the relative difference, or, where one side is 0 and the row has an absolute tolerance, the
 * absolute difference against it (e.g. `|Δ| 4.6e-7 ≤ 1e-6 ✓`), so the cell says which rule judged it.
 */
export function formatDelta(row: AgreementRow, i: number): string {
  const ok = row.agrees[i] ?? null;
  if (!row.byAbsolute?.[i] || row.absolute == null) return formatRelative(row.relative[i] ?? null, ok);
  const d = Math.abs(row.cluster - row.sims[i]!);
  const e = (x: number): string => (x === 0 ? '0' : x.toExponential(1));
  return `|Δ| ${e(d)} ${d <= row.absolute ? '≤' : '>'} ${e(row.absolute)}${ok === null ? '' : ok ? ' ✓' : ' ✗'}`;
}

/** The target cell: the relative target, and the absolute one where a side may be 0. */
export function formatTarget(row: AgreementRow): string {
  if (row.target === null) return '';
  const rel = `±${(row.target * 100).toFixed(0)} %`;
  return row.absolute == null ? rel : `${rel}; |Δ| ≤ ${row.absolute.toExponential(0)} if one is 0`;
}

function cells(row: AgreementRow): string[] {
  const out = [row.metric, formatMetric(row.metric, row.cluster)];
  row.sims.forEach((s, i) => {
    out.push(formatMetric(row.metric, s), formatDelta(row, i));
  });
  out.push(formatTarget(row));
  return out;
}

function migrationLine(r: WithAgreement): string {
  const m = r.agreement.migrationModel;
  if (!m) return 'Migration time per VM: no migration completed.';
  return (
    `Migration time per VM (${m.n} completed, wall): measured ${m.measuredMeanS.toFixed(2)} s mean; pre-copy model ` +
    `a priori ${m.apriori.meanS.toFixed(2)} s (median |error| ${pct(m.apriori.medianAbsError)}), calibrated on the ` +
    `run ${m.calibrated.meanS.toFixed(2)} s (median |error| ${pct(m.calibrated.medianAbsError)}; the model's own ` +
    `error ${pct(m.target)}: ${m.agrees ? 'within' : 'outside'}).`
  );
}

/** The CLI's table, then the causes, then the migration model line. */
export function agreementText(r: WithAgreement): string {
  const a = r.agreement;
  const head = ['metric', 'cluster'];
  for (const v of a.variants) head.push(v.label, 'Δ');
  head.push('target');
  const t = new Table({ head });
  for (const row of a.rows) t.push(cells(row));
  const causes = a.rows.filter((x) => x.cause).map((x) => `- ${x.metric}: ${x.cause}`);
  return [
    `Agreement (guests delivered ${a.deliveredRatio.toFixed(2)} × their traced CPU):`,
    t.toString(),
    ...(causes.length ? ['Where they differ, and the simulator assumption behind it:', ...causes] : []),
    migrationLine(r),
    ...(a.divergence ? ['', divergenceMarkdown(a.divergence, 3)] : []),
  ].join('\n');
}

/** The same as Markdown, for docs. */
export function agreementMarkdown(r: WithAgreement): string {
  const a = r.agreement;
  const head = ['metric', 'cluster'];
  a.variants.forEach((v) => {
    head.push(v.label, 'Δ');
  });
  head.push('target');
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const row of a.rows) lines.push(`| ${cells(row).join(' | ')} |`);
  lines.push('', migrationLine(r));
  const causes = a.rows.filter((x) => x.cause).map((x) => `- ${x.metric}: ${x.cause}`);
  if (causes.length) lines.push('', ...causes);
  if (a.divergence) lines.push('', divergenceMarkdown(a.divergence));
  return lines.join('\n');
}

/** What the docs' heading of a run reads. */
export interface RunSummary {
  readonly policy: string;
  readonly day: string;
  readonly wallMs: number;
  readonly deferred: number;
  readonly intervals: readonly {
    readonly activeHosts: number;
    readonly started: number;
    readonly gain: number;
  }[];
  readonly migrations: readonly { readonly status: string }[];
}

/**
 * One run's section for docs/cluster.md: a heading line (wall time, delivered CPU, migrations, hosts on and
 * migrations started per interval in the cluster and in each simulator run), then the Markdown table.
 */
export function agreementSection(run: RunSummary, a: Agreement): string {
  const done = run.migrations.filter((m) => m.status === 'completed').length;
  const short = (label: string): string => label.replace(/^sim: /, '');
  const per = (
    cluster: readonly number[],
    of: (v: Agreement['variants'][number]) => readonly number[],
  ): string =>
    [`cluster ${cluster.join('')}`, ...a.variants.map((v) => `${short(v.label)} ${of(v).join('')}`)].join(
      ', ',
    );
  const gain = run.intervals.at(-1)?.gain ?? 1;
  const head =
    `**${run.policy}, ${run.day}** (wall ${(run.wallMs / 1000).toFixed(0)} s; guests delivered ` +
    `${a.deliveredRatio.toFixed(2)} × their traced CPU, CPU gain ${gain.toFixed(2)} at the end; ${done}/` +
    `${run.migrations.length} migrations completed and verified, ${run.deferred} held back. Hosts on per interval: ` +
    `${per(
      run.intervals.map((i) => i.activeHosts),
      (v) => v.series.activeHosts,
    )}. Migrations started per interval: ${per(
      run.intervals.map((i) => i.started),
      (v) => v.series.migrations,
    )})`;
  return `${head}\n\n${agreementMarkdown({ agreement: a })}`;
}
