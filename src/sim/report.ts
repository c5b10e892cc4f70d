/** Turns simulation results into a report (tables, time-series charts) and flat rows for CSV. */
import { barChart, lineChart, type Report, type ReportSection } from '../report/index.js';
import type { SimResult } from './engine/index.js';
import { medians } from './run.js';

export const RESULT_COLUMNS = [
  'workload',
  'mode',
  'policy',
  'energy_kwh',
  'migrations',
  'slatah',
  'pdm',
  'slav',
  'esv',
  'host_shutdowns',
  'mean_time_before_host_shutdown_s',
  'mean_time_before_vm_migration_s',
  'mean_migration_time_s',
  'mean_downtime_s',
  'migration_gib',
  'vms_deleted',
  'duplicate_migrations',
  'migration_time_p99_s',
  'downtime_p99_s',
  'migration_energy_kwh',
  'wall_ms',
] as const;

export function resultRow(r: SimResult): (string | number)[] {
  return [
    r.workload,
    r.mode,
    r.policy,
    r.energyKWh,
    r.migrations,
    r.slatah,
    r.pdm,
    r.slav,
    r.esv,
    r.hostShutdowns,
    r.meanTimeBeforeHostShutdown,
    r.meanTimeBeforeVmMigration,
    r.meanMigrationTime,
    r.meanDowntime,
    r.migrationBytes / 2 ** 30,
    r.vmsDeleted,
    r.duplicateMigrations,
    r.migrationTime?.p99 ?? 0,
    r.downtime?.p99 ?? 0,
    r.migrationEnergyKWh,
    Math.round(r.wallMs),
  ];
}

/** One row per run: the distribution of its modelled migration times and downtimes, and their energy. */
export function migrationDistributionTable(results: readonly SimResult[]): {
  columns: string[];
  rows: (string | number)[][];
} {
  const q = (x: number): number => +x.toPrecision(4);
  return {
    columns: [
      'workload',
      'mode',
      'policy',
      'migrations',
      'time p50 s',
      'time p99 s',
      'time max s',
      'downtime p50 ms',
      'downtime p99 ms',
      'downtime max ms',
      'migration kWh',
    ],
    rows: results
      .filter((r) => r.migrationTime !== undefined)
      .map((r) => [
        r.workload,
        r.mode,
        r.policy,
        r.migrations,
        q(r.migrationTime!.p50),
        q(r.migrationTime!.p99),
        q(r.migrationTime!.max),
        q((r.downtime?.p50 ?? 0) * 1000),
        q((r.downtime?.p99 ?? 0) * 1000),
        q((r.downtime?.max ?? 0) * 1000),
        q(r.migrationEnergyKWh),
      ]),
  };
}

/** Per-interval rows: workload, mode, policy, time, energy, active hosts, … */
export function seriesRows(results: readonly SimResult[]): (string | number)[][] {
  const rows: (string | number)[][] = [];
  for (const r of results) {
    const s = r.series;
    if (!s) continue;
    for (let i = 0; i < s.time.length; i++) {
      rows.push([
        r.workload,
        r.mode,
        r.policy,
        s.time[i]!,
        s.energyKWh[i]!,
        s.activeHosts[i]!,
        s.overloadedHosts[i]!,
        s.migrations[i]!,
        s.slaViolation[i]!,
        s.vms[i]!,
      ]);
    }
  }
  return rows;
}

export const SERIES_COLUMNS = [
  'workload',
  'mode',
  'policy',
  'time_s',
  'energy_kwh',
  'active_hosts',
  'overloaded_hosts',
  'migrations',
  'sla_violation',
  'vms',
];

const pct = (x: number) => `${(x * 100).toFixed(3)} %`;

/** Groups by mode + policy and gives the medians over workloads (days). */
export function medianTable(results: readonly SimResult[]): {
  columns: string[];
  rows: (string | number)[][];
} {
  const groups = new Map<string, SimResult[]>();
  for (const r of results) {
    const k = `${r.mode}\u0000${r.policy}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const rows: (string | number)[][] = [];
  for (const [k, rs] of groups) {
    const [mode, policy] = k.split('\u0000') as [string, string];
    const m = medians(rs);
    rows.push([
      mode,
      policy,
      rs.length,
      +m.energyKWh.toFixed(2),
      m.migrations,
      pct(m.slatah),
      pct(m.pdm),
      +(m.slav * 1e5).toFixed(3),
      +(m.esv * 1e3).toFixed(3),
    ]);
  }
  return {
    columns: [
      'mode',
      'policy',
      'days',
      'energy kWh',
      'migrations',
      'SLATAH',
      'PDM',
      'SLAV ×10⁻⁵',
      'ESV ×10⁻³',
    ],
    rows,
  };
}

export function simReport(
  results: readonly SimResult[],
  opts: { title?: string; command?: string } = {},
): Report {
  const sections: ReportSection[] = [];
  const medianT = medianTable(results);
  sections.push({
    heading: 'Summary (medians over workloads)',
    text:
      'Energy in kWh over the simulated day; SLATAH = share of active host time with requests not met; PDM = ' +
      'share of requested CPU lost to migrations; SLAV = SLATAH × PDM; ESV = energy × SLAV.',
    table: medianT,
    charts: [
      barChart({
        title: 'Energy (kWh, median; NPA and DVFS baselines left out of the chart)',
        values: medianT.rows
          .filter((r) => r[1] !== 'NPA' && r[1] !== 'DVFS')
          .map((r) => ({ policy: String(r[1]), mode: String(r[0]), kWh: Number(r[3]) })),
        category: 'policy',
        value: 'kWh',
        series: 'mode',
      }),
      barChart({
        title: 'Migrations (median)',
        values: medianT.rows.map((r) => ({
          policy: String(r[1]),
          mode: String(r[0]),
          migrations: Number(r[4]),
        })),
        category: 'policy',
        value: 'migrations',
        series: 'mode',
      }),
      barChart({
        title: 'ESV ×10⁻³ (median; lower is better)',
        values: medianT.rows
          .filter((r) => r[1] !== 'NPA' && r[1] !== 'DVFS')
          .map((r) => ({ policy: String(r[1]), mode: String(r[0]), esv: Number(r[8]) })),
        category: 'policy',
        value: 'esv',
        series: 'mode',
      }),
    ],
  });
  const dist = migrationDistributionTable(results);
  if (dist.rows.length > 0) {
    sections.push({
      heading: 'Migrations as the model priced them',
      text:
        "Each run's modelled migration time and downtime, seconds (nearest-rank quantiles over its migrations). " +
        'CloudSim mode: RAM ÷ half the bandwidth, no downtime. livemig mode with profile pricing: the profile-fed ' +
        "pre-copy model on guest profiles measured on the engine; the energy is the engine's J per GiB moved " +
        '(modelled, data/profiles/README.md).',
      table: dist,
    });
  }
  sections.push({
    heading: 'Every run',
    table: {
      columns: [...RESULT_COLUMNS],
      rows: results.map((r) => resultRow(r).map((c) => (typeof c === 'number' ? +c.toPrecision(6) : c))),
    },
  });
  // Time series of the first workload only (one line per mode/policy), to keep the page small.
  const first = results[0]?.workload;
  // NPA (every host at full power) would flatten every other line.
  const withSeries = results.filter((r) => r.series && r.workload === first && r.policy !== 'NPA');
  if (withSeries.length > 0) {
    const values = (f: (r: SimResult, i: number) => number) =>
      withSeries.flatMap((r) =>
        r.series!.time.map((t, i) => ({
          hour: +(t / 3600).toFixed(3),
          run: `${r.mode} ${r.policy}`,
          y: f(r, i),
        })),
      );
    sections.push({
      heading: `Over time (${first})`,
      charts: [
        lineChart({
          title: 'Energy per interval (kWh)',
          values: values((r, i) => r.series!.energyKWh[i]!),
          x: 'hour',
          y: 'y',
          series: 'run',
          yTitle: 'kWh',
        }),
        lineChart({
          title: 'Active hosts',
          values: values((r, i) => r.series!.activeHosts[i]!),
          x: 'hour',
          y: 'y',
          series: 'run',
          yTitle: 'hosts',
        }),
        lineChart({
          title: 'SLA violation (share of active host time)',
          values: values((r, i) => r.series!.slaViolation[i]!),
          x: 'hour',
          y: 'y',
          series: 'run',
          yTitle: 'fraction',
        }),
      ],
    });
  }
  return {
    title: opts.title ?? 'livemig sim — energy-aware consolidation',
    intro:
      'Simulated with livemig sim. Mode "cloudsim" reproduces CloudSim 3.0.3 (quirks included); mode "livemig" ' +
      'fixes its defects and prices each migration with the pre-copy model (see docs/simulator.md).',
    sections,
    ...(opts.command ? { footer: opts.command } : {}),
  };
}
