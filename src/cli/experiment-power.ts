/**
 * `livemig experiment power-capping`: the seed's power-capping experiment (src/experiments/power-capping.ts). It
 * runs several guests per host and plots power over time, so it has its own runner rather than the cell runner;
 * `experiment.ts` hands this name over to it.
 */
import { availableParallelism } from 'node:os';
import Table from 'cli-table3';
import { UsageError } from '../errors.js';
import {
  CONTROLLER_COLUMNS,
  controllerRows,
  type PowerCappingResult,
  runPowerCapping,
  SUMMARY_COLUMNS,
  seedComparison,
  summaryRows,
  TRANSIENT_COLUMNS,
  transientRows,
} from '../experiments/power-capping.js';
import {
  CLAIM_COLUMNS,
  claimRows,
  SWEEP_COLUMNS,
  SWEEP_NAMES,
  type SweepName,
  sweepPlan,
  sweepTable,
} from '../experiments/power-sweep.js';
import { formatMs } from '../units.js';
import { type ExperimentFlags, intFlag } from './experiment-flags.js';
import { durationFlag } from './values.js';

export const POWER_EXPERIMENT = 'power-capping';
export const POWER_EXPERIMENT_TITLE =
  'Power during migration: no capping vs DVFS 1.7 GHz vs CAP 15, and a CAP controller (the seed, scaled)';

function table(columns: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const t = new Table({ head: [...columns], style: { head: [], border: [] } });
  for (const r of rows) t.push(r.map(String));
  return t.toString();
}

export function printPowerCapping(r: PowerCappingResult): string {
  const c = r.config;
  return [
    `\n== ${POWER_EXPERIMENT_TITLE} (${c.mode})`,
    `4-core i7-920 model driven by this ${c.realCores}-core machine's measured CPU time; guests ${c.ramBytes / 1024 / 1024} MiB ` +
      `held to ${c.baseCap}% of a core; ${c.bandwidth / 1024 / 1024} MiB/s; seed CAP ${c.seedCap} = CAP ${c.capHere} here.`,
    ...(r.runs.length > 0
      ? [
          table(SUMMARY_COLUMNS, summaryRows(r.runs)),
          'Side by side with the seed:',
          table(seedComparison(r.runs).columns, seedComparison(r.runs).rows),
          ...(controllerRows(r.runs).length > 1
            ? [
                'Fixed budget CAP vs adaptive controller (gap-like):',
                table(CONTROLLER_COLUMNS, controllerRows(r.runs)),
              ]
            : []),
          'The transient around the start and the end (mean W per window, ~100 ms samples):',
          table(TRANSIENT_COLUMNS, transientRows(r.runs)),
        ]
      : []),
    ...(r.sweeps.length > 0
      ? [
          'The seed’s claims, swept (mean ± 95 % CI):',
          table(SWEEP_COLUMNS, sweepTable(r.sweeps)),
          'The seed’s claims as contrasts (95 % CI, paired by repetition):',
          table(CLAIM_COLUMNS, claimRows(r.sweeps)),
        ]
      : []),
    `1-minute load average (other work on the machine): ${r.loadAverage.map((l) => l.toFixed(1)).join(', ')}`,
    `wrote ${r.files.join(', ')} in ${formatMs(r.wallMs)}`,
    '',
  ].join('\n');
}

/** `--sweep utilisation,ratio` → the sweep names (a UsageError names a wrong one). */
export function parseSweepList(v: string): SweepName[] {
  const names = v.split(',').map((x) => x.trim());
  for (const n of names)
    if (!(SWEEP_NAMES as readonly string[]).includes(n))
      throw new UsageError(`--sweep: unknown sweep "${n}"; choose from ${SWEEP_NAMES.join(', ')}`, '--sweep');
  return [...new Set(names)] as SweepName[];
}

/** `--levels 40,70,100` → [0.4, 0.7, 1] (percent of the host's cores, 1..100). */
export function parseLevels(v: string): number[] {
  return v.split(',').map((x) => intFlag(x.trim(), '--levels', 1, 100) / 100);
}

export async function runPowerCappingCommand(f: ExperimentFlags): Promise<void> {
  const seed = intFlag(f.seed, '--seed', 0, 2 ** 31 - 1);
  const only = f.sweep !== undefined ? parseSweepList(f.sweep) : undefined;
  const levels = f.levels !== undefined ? parseLevels(f.levels) : undefined;
  if (f.dryRun && only) {
    const plan = sweepPlan({
      quick: f.quick === true,
      realCores: availableParallelism(),
      sweeps: only,
      ...(levels ? { levels } : {}),
    });
    for (const p of plan)
      process.stdout.write(
        `${p.sweep}: ${p.label}: ${p.runs.map((r) => `${r.kind} ${r.mode}`).join(', ')}\n`,
      );
    return;
  }
  if (f.dryRun) {
    process.stdout.write(
      `${POWER_EXPERIMENT}: twolf-like and gap-like × none, dvfs, cap${f.tiny ? ' (tiny: gap-like × none, cap)' : ''}; ` +
        'then gap-like with a budget: fixed CAP vs adaptive controller; then the sweeps (not tiny): utilisation ' +
        '40→100 % × none, dvfs, cap, VMs ≤ cores vs VMs > cores × none, cap, and twolf vs gap (the time ratio), --repetitions each, interleaved\n',
    );
    return;
  }
  const r = await runPowerCapping({
    quick: f.quick === true,
    tiny: f.tiny === true,
    ...(f.repetitions !== undefined ? { repetitions: intFlag(f.repetitions, '--repetitions', 1) } : {}),
    ...(only ? { only } : {}),
    ...(levels ? { levels } : {}),
    ...(f.timeBudget !== undefined
      ? { timeBudgetMs: durationFlag(f.timeBudget, '--time-budget', 1000, 24 * 3600_000) }
      : {}),
    out: f.out,
    seed,
    log: f.progress === false ? undefined : (l) => process.stderr.write(`[${POWER_EXPERIMENT}] ${l}\n`),
    command: `livemig experiment ${process.argv.slice(3).join(' ')}`.trim(),
  });
  if (f.json)
    process.stdout.write(
      `${JSON.stringify({ config: r.config, runs: r.runs, sweeps: r.sweeps, claims: claimRows(r.sweeps), files: r.files }, null, 2)}\n`,
    );
  else process.stdout.write(printPowerCapping(r));
}
