/**
 * `livemig experiment NAME`: runs a named, seeded experiment on the real engine (one pair of agent processes on
 * loopback), prints its tables and findings, and writes results/<name>/ (results.json, CSV, report.html).
 */
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import Table from 'cli-table3';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import {
  EXPERIMENT_NAMES,
  EXPERIMENTS,
  type ExperimentName,
  type ExperimentOutput,
  isExperimentName,
  planOf,
  runExperiment,
} from '../experiments/index.js';
import { formatMs } from '../units.js';
import { ENGINES_EXPERIMENT, ENGINES_EXPERIMENT_TITLE, runEnginesCommand } from './experiment-engines.js';
import { type ExperimentFlags, intFlag as int } from './experiment-flags.js';
import {
  MODEL_QEMU_EXPERIMENT,
  MODEL_QEMU_EXPERIMENT_TITLE,
  runModelQemuCommand,
} from './experiment-model-qemu.js';
import { POWER_EXPERIMENT, POWER_EXPERIMENT_TITLE, runPowerCappingCommand } from './experiment-power.js';

/** A progress bar on stderr when it is a terminal, else one line per cell. */
function progress(
  name: string,
  enabled: boolean,
): {
  update: (p: { done: number; total: number; cell?: string }) => void;
  stop: () => void;
} {
  if (!enabled) return { update: () => undefined, stop: () => undefined };
  if (process.stderr.isTTY && process.env.CI !== 'true') {
    const bar = new cliProgress.SingleBar({
      stream: process.stderr,
      format: `${name.padEnd(11)} |{bar}| {value}/{total} cells  eta {eta_formatted}  {cell}`,
      barsize: 24,
      hideCursor: true,
      clearOnComplete: false,
    });
    let started = false;
    return {
      update: (p) => {
        if (!started) {
          bar.start(p.total, p.done, { cell: p.cell ?? '' });
          started = true;
        } else bar.update(p.done, { cell: p.cell ?? '' });
      },
      stop: () => bar.stop(),
    };
  }
  return {
    update: (p) => {
      if (p.cell) process.stderr.write(`[${name} ${p.done + 1}/${p.total}] ${p.cell}\n`);
    },
    stop: () => undefined,
  };
}

export function printExperiment(out: ExperimentOutput): string {
  const lines: string[] = [`\n== ${out.title} (${out.config.mode}, seed ${out.config.seed})`];
  for (const t of out.summary.tables) {
    const table = new Table({ head: [...t.columns], style: { head: [], border: [] } });
    for (const r of t.rows) table.push(r.map(String));
    lines.push(t.title, table.toString());
  }
  if (out.summary.findings.length > 0) lines.push('Findings:', ...out.summary.findings.map((f) => `- ${f}`));
  lines.push(`wrote ${join(out.dir, 'report.html')} (+ results.json, CSV) in ${formatMs(out.wallMs)}`);
  return `${lines.join('\n')}\n`;
}

/** What `all` runs: every experiment but mechanisms, whose cells repeat dirty-limit's and convergence's. */
const IN_ALL = EXPERIMENT_NAMES.filter((n) => n !== 'mechanisms');

export function registerExperiment(program: Command): void {
  const list = [
    ...EXPERIMENT_NAMES.map((n) => `  ${n.padEnd(12)} ${EXPERIMENTS[n].title}`),
    `  ${POWER_EXPERIMENT} ${POWER_EXPERIMENT_TITLE}`,
    `  ${ENGINES_EXPERIMENT.padEnd(12)} ${ENGINES_EXPERIMENT_TITLE}`,
    `  ${MODEL_QEMU_EXPERIMENT.padEnd(12)} ${MODEL_QEMU_EXPERIMENT_TITLE}`,
  ].join('\n');
  program
    .command('experiment')
    .argument(
      '<name>',
      `${EXPERIMENT_NAMES.join(' | ')} | ${POWER_EXPERIMENT} | ${ENGINES_EXPERIMENT} | ${MODEL_QEMU_EXPERIMENT} | all`,
    )
    .description(
      'Run a named, seeded experiment on the real engine (two agent processes over loopback TCP, one pair per ' +
        'experiment) and write results/<name>/results.json, CSV files and a self-contained report.html with SVG ' +
        'charts. Default (full) mode: 256 MiB guests, 3 repetitions per cell and more points — it takes long ' +
        '(tens of minutes per experiment, one to two hours for "all" on 2 cores). --quick: 64 MiB guests, one ' +
        'repetition, fewer points: "all" finishes in under 10 minutes.',
    )
    .option('--quick', 'small guests, one repetition, fewer points (all experiments < 10 min on 2 cores)')
    .option('--tiny', 'smaller still (16 MiB, a few cells): a smoke test, seconds')
    .option('--out <dir>', 'results folder (each experiment writes <dir>/<name>/)', 'results')
    .option('--seed <n>', "seed of every guest's workload", '1')
    .option('--repetitions <n>', 'runs per cell; tables show medians (default: 3 full, 1 quick)')
    .option(
      '--workloads <list>',
      'only these workloads, comma-separated (model: split its grid over several runs)',
    )
    .option('--no-progress', 'no progress output on stderr')
    .option('--json', 'print the results as JSON on stdout instead of tables')
    .option('--dry-run', 'list the cells that would run, run nothing')
    .option(
      '--cells <ids>',
      'run only the cells whose id contains one of these (comma-separated, e.g. "trace:redis/,gap-128MiB/"): ' +
        'splits a long run; the summary covers the cells that ran',
    )
    .option(
      '--sweep <list>',
      `${POWER_EXPERIMENT} only: run only these sweeps (utilisation,contention,ratio)`,
    )
    .option('--levels <percents>', `${POWER_EXPERIMENT} only: the utilisation sweep's levels, e.g. 40,70,100`)
    .option(
      '--time-budget <duration>',
      `${POWER_EXPERIMENT} only: the sweeps stop before a repetition past this`,
    )
    .addHelpText(
      'after',
      `\nExperiments:\n${list}\n  all          ${IN_ALL.join(', ')}, in this order (not mechanisms, ${POWER_EXPERIMENT}, ${ENGINES_EXPERIMENT}, ${MODEL_QEMU_EXPERIMENT})\n`,
    )
    .action(async (name: string, f: ExperimentFlags) => {
      // Several guests per host and power over time: its own runner (src/experiments/power-capping.ts).
      if (name === POWER_EXPERIMENT) return runPowerCappingCommand(f);
      // Real QEMU guests beside the engine: its own runner too (src/experiments/engines.ts).
      if (name === ENGINES_EXPERIMENT) return runEnginesCommand(f);
      if (name === MODEL_QEMU_EXPERIMENT) return runModelQemuCommand(f);
      const names: ExperimentName[] =
        name === 'all'
          ? [...IN_ALL]
          : isExperimentName(name)
            ? [name]
            : (() => {
                throw new UsageError(
                  `unknown experiment "${name}"; choose one of ${EXPERIMENT_NAMES.join(', ')}, all`,
                  'NAME',
                );
              })();
      const opts = {
        quick: f.quick === true,
        tiny: f.tiny === true,
        seed: int(f.seed, '--seed', 0, 2 ** 31 - 1),
        out: f.out,
        ...(f.repetitions !== undefined ? { repetitions: int(f.repetitions, '--repetitions', 1, 1000) } : {}),
        ...(f.cells !== undefined ? { cells: f.cells.split(',').filter(Boolean) } : {}),
        ...(f.workloads ? { workloads: f.workloads.split(',').map((w) => w.trim()) } : {}),
        command: `livemig experiment ${process.argv.slice(3).join(' ')}`.trim(),
      };
      if (f.dryRun) {
        for (const n of names) {
          const cells = planOf(n, opts);
          process.stdout.write(`${n}: ${cells.length} cells\n`);
          for (const c of cells) process.stdout.write(`  ${c.id}\n`);
        }
        return;
      }
      const outputs: ExperimentOutput[] = [];
      const t0 = performance.now();
      for (const n of names) {
        const bar = progress(n, f.progress !== false);
        let out: ExperimentOutput;
        try {
          out = await runExperiment(n, { ...opts, onProgress: bar.update });
        } finally {
          bar.stop();
        }
        outputs.push(out);
        if (!f.json) process.stdout.write(printExperiment(out));
      }
      if (f.json) {
        process.stdout.write(
          `${JSON.stringify(
            outputs.map((o) => ({
              name: o.name,
              config: o.config,
              findings: o.summary.findings,
              tables: o.summary.tables,
              cells: o.results,
              files: o.files,
              wallMs: o.wallMs,
            })),
            null,
            2,
          )}\n`,
        );
      } else if (names.length > 1) {
        process.stdout.write(`\n${names.length} experiments in ${formatMs(performance.now() - t0)}\n`);
      }
    });
}
