/** The power-capping experiment's tables, charts and report files (runs from power-capping.ts). */

import { join } from 'node:path';
import {
  barChart,
  lineChart,
  renderReport,
  renderSvg,
  type VegaLiteSpec,
  writeCsv,
  writeHtml,
  writeJson,
  writeResultFile,
} from '../report/index.js';
import { VERSION } from '../version.js';
import {
  type PowerCappingOptions,
  type PowerCappingResult,
  type PowerRun,
  type PowerRunMode,
  SEED_FIGURES,
  type VmKind,
} from './power-capping-types.js';
import { CLAIM_COLUMNS, claimRows, SWEEP_COLUMNS, type SweepPoint, sweepTable } from './power-sweep.js';

const MiB = 1024 * 1024;

function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

/** Signed relative change of `w` against `ref`, e.g. "−5.9%" or "+2.3%". */
function change(w: number, ref: number): string {
  const d = w / ref - 1;
  return `${d <= 0 ? '−' : '+'}${pct(Math.abs(d))}`;
}

/** Rows of the main table: one per run. */
export function summaryRows(runs: readonly PowerRun[]): (string | number)[][] {
  return runs.map((r) => {
    const none = runs.find((x) => x.kind === r.kind && x.mode === 'none');
    const others = r.vms.filter((v) => !v.migrating);
    const mig = r.vms.find((v) => v.migrating)!;
    return [
      r.kind,
      r.mode,
      r.status,
      +(r.migrationTimeMs / 1000).toFixed(2),
      r.rounds,
      +r.before.watts.toFixed(1),
      +r.during.watts.toFixed(1),
      +r.after.watts.toFixed(1),
      +(r.during.watts - r.before.watts).toFixed(1),
      none && r !== none ? change(r.during.watts, none.during.watts) : '',
      pct(mig.slowdownDuring),
      pct(mean(others.map((v) => v.slowdownDuring))),
      r.caps.length > 6 ? `${r.caps.length} changes` : r.caps.join(' ') || '-',
      r.energy?.cost ? Math.round(r.energy.cost.sourceJoules) : '-',
      r.energy?.cost ? Math.round(r.energy.cost.sourceJoulesPerGiB) : '-',
      r.energy?.cost?.destinationJoules != null ? Math.round(r.energy.cost.destinationJoules) : '-',
    ];
  });
}

export const SUMMARY_COLUMNS = [
  'VM migrated',
  'capping',
  'status',
  'migration s',
  'rounds',
  'W before',
  'W during',
  'W after',
  'W during − before',
  'W during vs none',
  'migrating VM slowdown',
  'other VMs slowdown',
  'CAPs',
  'source J per migration',
  'source J/GiB',
  'destination J per migration',
];

export async function writePowerReport(
  dir: string,
  c: PowerCappingResult['config'],
  runs: PowerRun[],
  o: PowerCappingOptions,
  loads: readonly number[],
  sweeps: readonly SweepPoint[] = [],
): Promise<string[]> {
  const files: string[] = [];
  const put = async (name: string, p: Promise<void>) => {
    await p;
    files.push(join(dir, name));
  };
  await put(
    'results.json',
    writeJson(join(dir, 'results.json'), { version: VERSION, config: c, loadAverage: loads, runs, sweeps }),
  );
  if (sweeps.length > 0) {
    await put('sweeps.csv', writeCsv(join(dir, 'sweeps.csv'), SWEEP_COLUMNS, sweepTable(sweeps)));
    await put('claims.csv', writeCsv(join(dir, 'claims.csv'), CLAIM_COLUMNS, claimRows(sweeps)));
  }
  await put('summary.csv', writeCsv(join(dir, 'summary.csv'), SUMMARY_COLUMNS, summaryRows(runs)));
  const seriesRows = runs.flatMap((r) =>
    r.series.map((s) => [r.kind, r.mode, s.t, s.watts, s.utilisation, s.migrationCpuMs]),
  );
  await put(
    'series.csv',
    writeCsv(
      join(dir, 'series.csv'),
      ['vm', 'capping', 't_s', 'watts', 'utilisation', 'migration_cpu_ms'],
      seriesRows,
    ),
  );
  const vmRows = runs.flatMap((r) =>
    r.vms.map((v) => [r.kind, r.mode, v.id, v.kind, v.migrating ? 'yes' : '', v.before, v.during, v.after]),
  );
  await put(
    'vms.csv',
    writeCsv(
      join(dir, 'vms.csv'),
      [
        'vm migrated',
        'capping',
        'vm',
        'kind',
        'migrating',
        'steps/s before',
        'steps/s during',
        'steps/s after',
      ],
      vmRows,
    ),
  );
  const charts: { name: string; spec: VegaLiteSpec }[] = [];
  for (const kind of ['twolf-like', 'gap-like'] as const) {
    const rs = runs.filter((r) => r.kind === kind && ['none', 'dvfs', 'cap'].includes(r.mode));
    if (rs.length === 0) continue;
    const ends = rs.map((r) => `${r.mode} ends at ${(r.migrationTimeMs / 1000).toFixed(1)} s`).join(', ');
    charts.push({
      name: `power-${kind}`,
      spec: lineChart({
        title: `Source host power, migrating a ${kind} VM (migration starts at 0 s; ${ends})`,
        values: rs.flatMap((r) =>
          r.series.map((s) => ({ t: +s.t.toFixed(3), watts: +s.watts.toFixed(2), capping: r.mode })),
        ),
        x: 't',
        y: 'watts',
        series: 'capping',
        xTitle: 'seconds since migration start',
        yTitle: 'modelled watts (i7-920, from measured CPU time)',
      }),
    });
  }
  const ctl = runs.filter(
    (r) =>
      r.mode === 'cap-fixed-budget' ||
      r.mode === 'cap-adaptive' ||
      (r.kind === 'gap-like' && r.mode === 'none'),
  );
  if (ctl.length === 3) {
    charts.push({
      name: 'power-controller',
      spec: lineChart({
        title: `Budget ${ctl[1]!.budgetWatts} W on the gap-like migration: fixed CAP vs adaptive controller`,
        values: ctl.flatMap((r) =>
          r.series.map((s) => ({ t: +s.t.toFixed(3), watts: +s.watts.toFixed(2), run: r.mode })),
        ),
        x: 't',
        y: 'watts',
        series: 'run',
        xTitle: 'seconds since migration start',
        yTitle: 'modelled watts',
      }),
    });
  }
  charts.push({
    name: 'power-during',
    spec: barChart({
      title: 'Average source power during the migration',
      values: runs.map((r) => ({ vm: r.kind, capping: r.mode, watts: +r.during.watts.toFixed(2) })),
      category: 'vm',
      value: 'watts',
      series: 'capping',
      valueTitle: 'modelled watts',
    }),
  });
  if (o.svgDir) {
    for (const ch of charts) {
      const p = join(o.svgDir, `${ch.name}.svg`);
      await writeResultFile(p, await renderSvg(ch.spec));
      files.push(p);
    }
  }
  const seedTable = seedComparison(runs);
  const html = await renderReport({
    title: 'Power during migration: no capping vs DVFS vs CAP (the seed’s experiment, scaled)',
    intro:
      `Source host model: Intel Core i7-920 (4 cores, 9 DVFS states), driven by the measured CPU time of every vCPU ` +
      `thread and of the migration thread on this ${c.realCores}-core machine (the ${c.realCores} real cores play the ` +
      `${c.modelCores} model cores). Four one-vCPU guests of ${c.ramBytes / MiB} MiB, each held to ${c.baseCap}% of a ` +
      `real core; migration bandwidth ${c.bandwidth / MiB} MiB/s. The seed's CAP ${c.seedCap} (percent of a model ` +
      `core) is CAP ${c.capHere} here; DVFS ${c.dvfsGhz} GHz is the 1.73 GHz state. All watts are modelled; CPU time ` +
      `is measured. The machine is shared: other processes take CPU from the guests, which shows as noise ` +
      `(1-minute load average during the runs: ${loads.map((l) => l.toFixed(1)).join(', ')} on ${c.realCores} cores).`,
    sections: [
      {
        heading: 'Runs',
        table: { columns: SUMMARY_COLUMNS, rows: summaryRows(runs) },
        charts: charts.map((x) => x.spec),
      },
      { heading: 'Side by side with the seed', table: seedTable },
      ...(sweeps.length > 0
        ? [
            {
              heading: 'The seed’s claims, swept (repetitions, 95 % confidence intervals)',
              text:
                'Utilisation: four guests held to CAPs that make the host 40 … 100 % busy, the gap-like VM migrated ' +
                'with no capping, DVFS 1.73 GHz and CAP 15. Contention: uncapped guests, as many as the cores and ' +
                'three times as many, no capping vs CAP 15. Each run’s figure is the power it added during the ' +
                'migration (during − before); the saving is that of no capping minus that of the mode (Welch).',
              table: { columns: SWEEP_COLUMNS, rows: sweepTable(sweeps) },
            },
            {
              heading: 'The seed’s claims as contrasts (95 % CI, paired by repetition)',
              text:
                'A saving is (W added by the migration with no capping) − (with the mode), per repetition. Claim 1: ' +
                'DVFS’s saving at the highest utilisation minus at the lowest; claim 2: CAP’s saving with VMs ≤ ' +
                'cores minus with VMs > cores; the gap / twolf ratio is the geometric mean of per-repetition ratios. ' +
                'An interval that straddles 0 (1 for the ratio) is unresolved, with the repetitions that would ' +
                'resolve the measured effect at the measured spread (95 %, 80 % power).',
              table: { columns: CLAIM_COLUMNS, rows: claimRows(sweeps) },
            },
          ]
        : []),
      {
        heading: 'The open problem: a CAP that bounds power and completion time',
        text:
          'Budget: 1 W under the host’s own power before the migration, held over 1 s windows by the closed-loop ' +
          'controller (src/power/controller.ts), which re-decides the CAP at every meter sample. cap-fixed-budget: ' +
          'the budget alone; cap-adaptive: also, after every pre-copy round, no more than the CAP that lets pre-copy ' +
          'finish by the target (the uncapped migration time), taking the dirty rate as proportional to the VM’s ' +
          'CPU share.',
        table: { columns: CONTROLLER_COLUMNS, rows: controllerRows(runs) },
      },
      {
        heading: 'The transient around the start and the end of each migration (Jeong et al. 2013)',
        text:
          'Mean modelled power in windows around the migration, from the meters’ ~100 ms samples. A rise in the ' +
          'first seconds that the capping does not catch is what defeats a capper that decides once at the start.',
        table: { columns: TRANSIENT_COLUMNS, rows: transientRows(runs) },
      },
      {
        heading: 'Each VM’s progress (steps/s) before, during and after the migration',
        table: {
          columns: ['VM migrated', 'capping', 'vm', 'kind', 'migrating', 'before', 'during', 'after'],
          rows: vmRows.map((r) => r.map((x) => (typeof x === 'number' ? Math.round(x) : x))),
        },
      },
    ],
    footer: `${o.command ?? 'livemig experiment power-capping'} · livemig ${VERSION} · ${new Date().toISOString()}`,
  });
  await put('report.html', writeHtml(join(dir, 'report.html'), html));
  return files;
}

export const TRANSIENT_COLUMNS = [
  'VM migrated',
  'capping',
  'host',
  'W −2…0 s',
  'W 0…1 s',
  'W 1…3 s',
  'W last 1 s',
  'W end…+1 s',
  'W +1…+3 s',
  'peak W in 0…3 s',
];

/**
 * The transient (Jeong et al. 2013: the source's power stays high or overshoots for a few seconds after a
 * migration starts): mean power in windows around the start and the end of each migration, from the ~100 ms series.
 */
export function transientRows(runs: readonly PowerRun[]): (string | number)[][] {
  const rows: (string | number)[][] = [];
  const avg = (xs: readonly { t: number; watts: number }[], a: number, b: number) => {
    const w = xs.filter((x) => x.t > a && x.t <= b).map((x) => x.watts);
    return w.length ? +mean(w).toFixed(1) : '-';
  };
  const peak = (xs: readonly { t: number; watts: number }[], a: number, b: number) => {
    const w = xs.filter((x) => x.t > a && x.t <= b).map((x) => x.watts);
    return w.length ? +Math.max(...w).toFixed(1) : '-';
  };
  for (const r of runs) {
    const end = r.migrationTimeMs / 1000;
    for (const [host, xs] of [
      ['source', r.series],
      ['destination', r.destSeries ?? []],
    ] as const) {
      rows.push([
        r.kind,
        r.mode,
        host,
        avg(xs, -2, 0),
        avg(xs, 0, 1),
        avg(xs, 1, 3),
        avg(xs, end - 1, end),
        avg(xs, end, end + 1),
        avg(xs, end + 1, end + 3),
        peak(xs, 0, 3),
      ]);
    }
  }
  return rows;
}

export const CONTROLLER_COLUMNS = [
  'run',
  'budget W',
  'completion target s',
  'W before',
  'W during',
  'peak W',
  'samples over budget',
  'worst 1 s window W',
  's over budget (windowed)',
  'J over budget',
  'migration s',
  'migrating VM slowdown',
  'CAPs',
];

/** The open problem: the gap-like migration uncapped, with a fixed budget CAP, and with the adaptive controller. */
export function controllerRows(runs: readonly PowerRun[]): (string | number)[][] {
  return runs
    .filter((r) => r.kind === 'gap-like' && ['none', 'cap-fixed-budget', 'cap-adaptive'].includes(r.mode))
    .map((r) => [
      r.mode,
      r.budgetWatts || '-',
      r.completionTargetMs ? +(r.completionTargetMs / 1000).toFixed(1) : '-',
      +r.before.watts.toFixed(1),
      +r.during.watts.toFixed(1),
      +r.peakWattsDuring.toFixed(1),
      r.budgetWatts ? pct(r.overBudget) : '-',
      r.energy?.budget ? +r.energy.budget.worstWindow.watts.toFixed(1) : '-',
      r.energy?.budget ? +(r.energy.budget.overBudgetMs / 1000).toFixed(1) : '-',
      r.energy?.budget ? +r.energy.budget.overBudgetJoules.toFixed(1) : '-',
      +(r.migrationTimeMs / 1000).toFixed(2),
      pct(r.vms.find((v) => v.migrating)!.slowdownDuring),
      r.caps.join(' ') || '-',
    ]);
}

/** The seed's figures next to ours. */
export function seedComparison(runs: readonly PowerRun[]): {
  columns: string[];
  rows: (string | number)[][];
} {
  const get = (kind: VmKind, mode: PowerRunMode) => runs.find((r) => r.kind === kind && r.mode === mode);
  const rows: (string | number)[][] = [];
  const t = get('twolf-like', 'none');
  const g = get('gap-like', 'none');
  if (t)
    rows.push([
      'twolf migration time',
      `~${SEED_FIGURES.twolfMigrationS} s`,
      `${(t.migrationTimeMs / 1000).toFixed(1)} s`,
    ]);
  if (g)
    rows.push([
      'gap migration time',
      `~${SEED_FIGURES.gapMigrationS} s`,
      `${(g.migrationTimeMs / 1000).toFixed(1)} s`,
    ]);
  if (t && g)
    rows.push([
      'migration time ratio gap / twolf',
      `~${(SEED_FIGURES.gapMigrationS / SEED_FIGURES.twolfMigrationS).toFixed(1)}`,
      (g.migrationTimeMs / t.migrationTimeMs).toFixed(2),
    ]);
  for (const kind of ['twolf-like', 'gap-like'] as const) {
    const none = get(kind, 'none');
    if (!none) continue;
    rows.push([
      `${kind}: busy host power during migration`,
      `~${SEED_FIGURES.busyWatts} W`,
      `${none.during.watts.toFixed(1)} W`,
    ]);
    const d = get(kind, 'dvfs');
    if (d) {
      rows.push([
        `${kind}: DVFS 1.7 GHz`,
        `~${SEED_FIGURES.dvfsWatts} W (−${pct(SEED_FIGURES.dvfsReduction)})`,
        `${d.during.watts.toFixed(1)} W (${change(d.during.watts, none.during.watts)})`,
      ]);
    }
    const cp = get(kind, 'cap');
    if (cp) {
      rows.push([
        `${kind}: CAP 15`,
        `~${SEED_FIGURES.capWatts} W (−${pct(SEED_FIGURES.capReduction)})`,
        `${cp.during.watts.toFixed(1)} W (${change(cp.during.watts, none.during.watts)})`,
      ]);
    }
  }
  return { columns: ['figure', 'seed', 'livemig (this run)'], rows };
}
