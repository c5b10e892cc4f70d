/**
 * The seed's power-capping experiment ("Analysis of VM live-migration as a method for power-capping"), scaled to a
 * 2-core machine: a source host MODEL of 4 cores (Intel Core i7-920, 9 DVFS states) running 4 one-vCPU guests,
 * twolf-like and gap-like, an idle destination; a twolf-like and, separately, a gap-like guest migrated by pre-copy
 * with no capping, DVFS at 1.7 GHz and CAP 15. Host power is metered from the real CPU time of every vCPU thread and
 * of the migration thread, through the i7-920 model, before, during and after each migration. Then the seed's open
 * problem: a fixed CAP chosen for a power budget against the adaptive controller that also bounds completion time.
 *
 * Scaling (see docs/power.md): the 2 real cores play the 4 model cores — utilisation is the busy fraction of the
 * real cores — so a CAP in the seed's units (percent of one model core) is `cap × realCores / modelCores` here. Each
 * guest is held to `baseCap` percent of a real core (the SPEC VMs' load, leaving headroom for the migration thread
 * as the seed's host had). RAM and bandwidth are scaled together so that round 1 takes about as long as the
 * seed's twolf migration (~8 s).
 */

import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { AgentClient } from '../agent/index.js';
import type { GuestConfig } from '../guest/index.js';
import type { MigrationOptions, MigrationReport } from '../migration/index.js';
import { fetchPowerSeries, type PowerSample, windowOver } from '../power/index.js';
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
  CLAIM_COLUMNS,
  claimRows,
  runSweeps,
  SWEEP_COLUMNS,
  type SweepName,
  type SweepPoint,
  sweepTable,
} from './power-sweep.js';
import { type Pair, startPair } from './scenario.js';

const MiB = 1024 * 1024;

export type VmKind = 'twolf-like' | 'gap-like';
export type PowerRunMode = 'none' | 'dvfs' | 'cap' | 'cap-fixed-budget' | 'cap-adaptive';

export interface PowerCappingOptions {
  /** Smaller and shorter (about half the time); tiny: a smoke test of one migration. */
  quick?: boolean;
  tiny?: boolean;
  /** Guest RAM (default 128 MiB: 600 MB scaled with the bandwidth). */
  ramBytes?: number;
  /** Migration bandwidth, bytes/s (default 16 MiB/s: round 1 of 128 MiB ≈ 8 s, like the seed's twolf). */
  bandwidth?: number;
  /** Each guest's CPU limit, percent of a real core (default 40). */
  baseCap?: number;
  /** The seed's CAP for the migrating VM, in percent of a MODEL core (default 15). */
  seedCap?: number;
  /** The seed's DVFS frequency (default 1.7 GHz: the 1.73 GHz state). */
  dvfsGhz?: number;
  modelCores?: number;
  beforeMs?: number;
  afterMs?: number;
  /** Also compare a fixed budget CAP with the adaptive controller on the gap-like guest (default true). */
  controller?: boolean;
  /** The seed's claims swept (src/experiments/power-sweep.ts; default: not in tiny mode). */
  sweeps?: boolean;
  /** Repetitions per sweep point (default 2 quick, 5 full). */
  repetitions?: number;
  /** Run only these sweeps (no single runs, no controller runs): to split a long measurement into parts. */
  only?: readonly SweepName[];
  /** Utilisation levels of the utilisation sweep, 0..1 (default 0.4, 0.6, 0.8, 1; quick 0.4, 1). */
  levels?: readonly number[];
  /** The sweeps stop before a repetition that would pass this many ms (whole repetitions only). */
  timeBudgetMs?: number;
  seed?: number;
  /** Results folder: writes <out>/power-capping/. Default "results". */
  out?: string;
  /** Also write the charts as SVG files here (docs figures). */
  svgDir?: string;
  log?: (line: string) => void;
  pair?: Pair;
  command?: string;
}

export interface PhaseFigures {
  watts: number;
  utilisation: number;
}

export interface VmRates {
  id: string;
  kind: VmKind;
  migrating: boolean;
  /** steps/s */
  before: number;
  during: number;
  after: number;
  slowdownDuring: number;
}

export interface PowerRun {
  kind: VmKind;
  mode: PowerRunMode;
  status: string;
  migrationTimeMs: number;
  rounds: number;
  bytes: number;
  budgetWatts: number;
  completionTargetMs: number;
  caps: number[];
  before: PhaseFigures;
  during: PhaseFigures;
  after: PhaseFigures;
  peakWattsDuring: number;
  /** Fraction of the migration's samples above the budget (budget runs). */
  overBudget: number;
  energy: MigrationReport['energy'];
  vms: VmRates[];
  /** Source host power over time, t = seconds since migration start. */
  series: { t: number; watts: number; utilisation: number; migrationCpuMs: number }[];
  /** Destination host power over time, same t. */
  destSeries: { t: number; watts: number; utilisation: number }[];
}

export interface PowerCappingResult {
  config: Required<
    Pick<
      PowerCappingOptions,
      'ramBytes' | 'bandwidth' | 'baseCap' | 'seedCap' | 'dvfsGhz' | 'modelCores' | 'beforeMs' | 'afterMs'
    >
  > & { realCores: number; capHere: number; mode: string };
  runs: PowerRun[];
  /** The seed's claims swept, with repetitions (empty when not run). */
  sweeps: SweepPoint[];
  dir: string;
  files: string[];
  wallMs: number;
  /** 1-minute load average at the start and after each group of runs (other work on the machine). */
  loadAverage: number[];
}

/** The seed's figures (lecture summary of the paper), for the side-by-side table. */
export const SEED_FIGURES = {
  twolfMigrationS: 8,
  gapMigrationS: 20,
  busyWatts: 150,
  dvfsWatts: 135.6,
  capWatts: 148.3,
  dvfsReduction: 0.1,
  capReduction: 0.03,
} as const;

function guestConfig(kind: VmKind, ramBytes: number, seed: number): GuestConfig {
  // Both kinds keep all of RAM resident (non-zero), as a real guest's kernel and page cache are: round 1 then
  // carries the whole guest, as Xen 3.4 did (livemig skips zero pages). twolf-like: CPU bound, few writes.
  // gap-like: the twolf engine (compute, so CPU bound) accepting every move: ~2 page writes per step, write heavy.
  if (kind === 'twolf-like') {
    return {
      ramBytes,
      seed,
      workload: { name: 'twolf', params: { workingSetBytes: ramBytes, writeProbability: 0.005 } },
    };
  }
  return {
    ramBytes,
    seed,
    workload: {
      name: 'twolf',
      params: {
        workingSetBytes: ramBytes,
        writeProbability: 1,
        computePerStep: 768,
        wholePageFraction: 0.1,
      },
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}

let runCounter = 0;

async function runOne(
  pair: Pair,
  c: PowerCappingResult['config'],
  kind: VmKind,
  mode: PowerRunMode,
  extra: Partial<MigrationOptions>,
  /** W below this run's own power before the migration (0 = no budget). */
  budgetBelow: number,
  seed: number,
  log: (l: string) => void,
  /** How many guests (twolf-like and gap-like in turn) and each one's CPU limit (0 = uncapped); default 4 × baseCap. */
  layout: { vms: number; baseCap: number } = { vms: 4, baseCap: c.baseCap },
): Promise<PowerRun> {
  const src = new AgentClient(pair.source.address);
  const dst = new AgentClient(pair.destination.address);
  const n = ++runCounter;
  // Kinds in turn; the first of `kind` migrates.
  const vms: { id: string; kind: VmKind }[] = Array.from({ length: Math.max(2, layout.vms) }, (_, i) => {
    const k: VmKind = i % 2 === 0 ? 'twolf-like' : 'gap-like';
    return { id: `${k.split('-')[0]}-${String.fromCharCode(97 + Math.floor(i / 2))}-${n}`, kind: k };
  });
  const migrating = vms.find((v) => v.kind === kind)!.id;
  await Promise.all(
    vms.map((v, i) => src.startGuest(guestConfig(v.kind, c.ramBytes, seed + i), v.id, false)),
  );
  for (const v of vms) {
    if (layout.baseCap > 0) await src.throttle(v.id, { cap: layout.baseCap });
    await src.resume(v.id);
  }
  let holder = new Map(vms.map((v) => [v.id, src]));
  try {
    await sleep(c.beforeMs);
    let budget = 0;
    if (budgetBelow > 0) {
      // Relative to this run's own host power: on a shared machine the level drifts between runs.
      const pre = await fetchPowerSeries(pair.source.address, Date.now() - c.beforeMs - 1000, undefined);
      const w = windowOver(pre.samples, Date.now() - c.beforeMs, Date.now()).watts;
      budget = Math.round((w - budgetBelow) * 10) / 10;
    }
    const options: Partial<MigrationOptions> = {
      maxBandwidth: c.bandwidth,
      ...(mode === 'dvfs' ? { capping: 'dvfs', dvfsGhz: c.dvfsGhz } : {}),
      ...(mode === 'cap' ? { capping: 'cap', migrationCap: c.capHere } : {}),
      ...extra,
      ...(budget > 0 ? { powerCap: budget } : {}),
    };
    const t0 = Date.now();
    const started = await src.migrate(migrating, pair.destination.address, options);
    const report = await src.waitMigration(started.id);
    const t1 = t0 + report.totalTimeMs;
    if (report.status === 'completed') {
      holder = new Map(holder).set(migrating, dst);
      // The VM keeps the load it had: a real VM's demand does not change with its host.
      if (layout.baseCap > 0) await dst.throttle(migrating, { cap: layout.baseCap });
    }
    await sleep(c.afterMs);
    const t2 = Date.now();
    const since = t0 - c.beforeMs - 1000;
    const [s, d] = await Promise.all([
      fetchPowerSeries(pair.source.address, since),
      fetchPowerSeries(pair.destination.address, since),
    ]);
    const phase = (samples: PowerSample[], a: number, b: number) => windowOver(samples, a, b);
    const pb = phase(s.samples, t0 - c.beforeMs, t0);
    const pd = phase(s.samples, t0, t1);
    const pa = phase(s.samples, t1, t2);
    const da = phase(d.samples, t1, t2);
    const during = s.samples.filter((x) => x.at > t0 && x.at <= t1);
    const rates: VmRates[] = vms.map((v) => {
      const before = pb.guests.get(v.id)?.stepsPerSec ?? 0;
      const dur = pd.guests.get(v.id)?.stepsPerSec ?? 0;
      const after =
        (v.id === migrating && report.status === 'completed' ? da : pa).guests.get(v.id)?.stepsPerSec ?? 0;
      return {
        id: v.id,
        kind: v.kind,
        migrating: v.id === migrating,
        before,
        during: dur,
        after,
        slowdownDuring: before > 0 ? 1 - dur / before : 0,
      };
    });
    const run: PowerRun = {
      kind,
      mode,
      status: report.status,
      migrationTimeMs: report.totalTimeMs,
      rounds: report.rounds,
      bytes: report.transferredBytes,
      budgetWatts: budget,
      completionTargetMs: options.completionTargetMs ?? 0,
      caps: report.energy?.capping.caps ?? [],
      before: { watts: pb.watts, utilisation: pb.utilisation },
      during: { watts: pd.watts, utilisation: pd.utilisation },
      after: { watts: pa.watts, utilisation: pa.utilisation },
      peakWattsDuring: Math.max(0, ...during.map((x) => x.watts)),
      overBudget:
        budget > 0 && during.length ? during.filter((x) => x.watts > budget).length / during.length : 0,
      energy: report.energy,
      vms: rates,
      series: s.samples
        .filter((x) => x.at > t0 - c.beforeMs && x.at <= t2)
        .map((x) => ({
          t: (x.at - t0) / 1000,
          watts: x.watts,
          utilisation: x.utilisation,
          migrationCpuMs: x.mainCpuMs + x.otherCpuMs,
        })),
      destSeries: d.samples
        .filter((x) => x.at > t0 - c.beforeMs && x.at <= t2)
        .map((x) => ({ t: (x.at - t0) / 1000, watts: x.watts, utilisation: x.utilisation })),
    };
    log(
      `${kind} ${mode}: ${report.status} in ${(report.totalTimeMs / 1000).toFixed(1)} s, ${report.rounds} rounds; ` +
        `power before ${pb.watts.toFixed(1)} W, during ${pd.watts.toFixed(1)} W, after ${pa.watts.toFixed(1)} W`,
    );
    return run;
  } finally {
    await Promise.all(
      vms.map((v) =>
        holder
          .get(v.id)!
          .stopGuest(v.id)
          .catch(() => undefined),
      ),
    );
  }
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

/** Signed relative change of `w` against `ref`, e.g. "−5.9%" or "+2.3%". */
function change(w: number, ref: number): string {
  const d = w / ref - 1;
  return `${d <= 0 ? '−' : '+'}${pct(Math.abs(d))}`;
}

export async function runPowerCapping(o: PowerCappingOptions = {}): Promise<PowerCappingResult> {
  const t0 = performance.now();
  const tiny = o.tiny === true;
  const quick = tiny || o.quick === true;
  const realCores = availableParallelism();
  const modelCores = o.modelCores ?? 4;
  const seedCap = o.seedCap ?? 15;
  const c: PowerCappingResult['config'] = {
    ramBytes: o.ramBytes ?? (tiny ? 16 * MiB : quick ? 64 * MiB : 128 * MiB),
    bandwidth: o.bandwidth ?? 16 * MiB,
    baseCap: o.baseCap ?? 40,
    seedCap,
    dvfsGhz: o.dvfsGhz ?? 1.7,
    modelCores,
    beforeMs: o.beforeMs ?? (tiny ? 1000 : quick ? 2500 : 4000),
    afterMs: o.afterMs ?? (tiny ? 1000 : quick ? 2500 : 4000),
    realCores,
    capHere: Math.max(1, Math.round((seedCap * realCores) / modelCores)),
    mode: tiny ? 'tiny' : quick ? 'quick' : 'full',
  };
  const log = o.log ?? (() => undefined);
  const seed = o.seed ?? 1;
  const pair = o.pair ?? (await startPair());
  const runs: PowerRun[] = [];
  let sweeps: SweepPoint[] = [];
  // The machine is shared: the 1-minute load average says how much other work competed with the guests.
  const loads: number[] = [loadavg()[0]!];
  try {
    const kinds: VmKind[] = o.only ? [] : tiny ? ['gap-like'] : ['twolf-like', 'gap-like'];
    const modes: PowerRunMode[] = tiny ? ['none', 'cap'] : ['none', 'dvfs', 'cap'];
    for (const kind of kinds) {
      for (const mode of modes) runs.push(await runOne(pair, c, kind, mode, {}, 0, seed, log));
      loads.push(loadavg()[0]!);
    }
    if (!o.only && (o.controller ?? !tiny)) {
      // The open problem: a budget 1 W under the host's power before the migration, and a completion target equal
      // to the uncapped gap-like migration time. Fixed: the CAP chosen once for the budget, when the transfer starts.
      const ref = runs.find((r) => r.kind === 'gap-like' && r.mode === 'none')!;
      const budget = 1;
      const target = Math.round(ref.migrationTimeMs);
      runs.push(await runOne(pair, c, 'gap-like', 'cap-fixed-budget', { capping: 'cap' }, budget, seed, log));
      runs.push(
        await runOne(
          pair,
          c,
          'gap-like',
          'cap-adaptive',
          { capping: 'cap', capControl: 'adaptive', completionTargetMs: target },
          budget,
          seed,
          log,
        ),
      );
    }
    if (o.only || (o.sweeps ?? !tiny)) {
      // A sweep run reads only the windows before and during the migration: a short "after" (the guests stop).
      const sc = { ...c, afterMs: Math.min(c.afterMs, 500) };
      sweeps = await runSweeps(
        pair,
        async (spec) => {
          const r = await runOne(pair, sc, spec.kind, spec.mode, spec.extra, 0, spec.seed, log, {
            vms: spec.vms,
            baseCap: spec.baseCap,
          });
          return {
            beforeWatts: r.before.watts,
            duringWatts: r.during.watts,
            seconds: r.migrationTimeMs / 1000,
            joules: r.energy?.source.joules ?? Number.NaN,
            beforeUtilisation: r.before.utilisation,
          };
        },
        {
          quick,
          repetitions: o.repetitions ?? (quick ? 2 : 5),
          realCores,
          seed,
          log,
          ...(o.only ? { sweeps: o.only } : {}),
          ...(o.levels ? { levels: o.levels } : {}),
          ratioBaseCap: c.baseCap,
          ...(o.timeBudgetMs !== undefined ? { timeBudgetMs: o.timeBudgetMs } : {}),
        },
      );
      loads.push(loadavg()[0]!);
    }
  } finally {
    if (!o.pair) await pair.close();
  }
  const dir = join(o.out ?? 'results', 'power-capping');
  loads.push(loadavg()[0]!);
  const files = await writePowerReport(dir, c, runs, o, loads, sweeps);
  return { config: c, runs, sweeps, dir, files, wallMs: performance.now() - t0, loadAverage: loads };
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

async function writePowerReport(
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
