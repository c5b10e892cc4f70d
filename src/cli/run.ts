import { join } from 'node:path';
import type { Command } from 'commander';
import { stopSpawnedAgents } from '../agent/spawn.js';
import { type Pair, runScenario, type ScenarioResult, startPair } from '../experiments/scenario.js';
import { writeJson } from '../report/index.js';
import { holdDashboard, startPairWithDashboard } from './dashboard.js';
import { EXIT, EXIT_CODES_HELP, migrationSucceeded } from './exit.js';
import {
  addGuestFlags,
  addMigrationFlags,
  durationFlag,
  type GuestFlagValues,
  guestConfigFromFlags,
  LIMITS,
  type MigrationFlagValues,
  migrationOptionsFromFlags,
} from './flags.js';
import { MigrationProgress, reportTable } from './format.js';

/**
 * SIGINT/SIGTERM while `run` works: stop every agent it started (SIGTERM, then SIGKILL), then exit 130/143. Returns
 * the function that takes the handlers off again.
 */
function stopAgentsOnSignal(): () => void {
  const handler = (signal: NodeJS.Signals) => {
    off();
    process.stderr.write(`livemig: ${signal}: stopping the agents this run started\n`);
    void stopSpawnedAgents().finally(() => process.exit(signal === 'SIGINT' ? EXIT.sigint : EXIT.sigterm));
  };
  const off = () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return off;
}

export function registerRun(program: Command): void {
  const cmd = program
    .command('run')
    .description(
      'The one-command experience: start a source and a destination agent as two processes on loopback, start a ' +
        'guest with the chosen workload, let it warm up, migrate it, verify, print a report, shut both down.',
    )
    .option('--warmup <duration>', 'how long the guest runs before migration starts', '1s')
    .option('--oracle', 'also replay a guest that never moved and compare RAM byte for byte (slower)')
    .option('--json', 'print the report as JSON')
    .option('--out <dir>', 'also write the report (with the oracle result) to DIR/report.json')
    .option(
      '--dashboard [port]',
      'watch it live: the source agent serves the dashboard (on PORT if given) and stays up after the migration ' +
        'until you quit (docs/dashboard.md)',
    );
  addGuestFlags(cmd);
  addMigrationFlags(cmd);
  cmd.addHelpText(
    'after',
    "\nWithout --workload the guest is the demo's: gap writing 20,000 pages/s over a 64 MiB heap (a busy guest that " +
      'converges in a few rounds at the default 128 MiB/s). --workload gap alone is gap at its own defaults: as fast ' +
      'as it can over 200 MiB, a guest that outruns the link.\n' +
      '\nExamples:\n' +
      '  livemig run --workload gap --ram 256MiB --write-rate 20000 --max-bandwidth 256MiB\n' +
      '  livemig run --workload kv --xbzrle --xbzrle-cache 32MiB --oracle\n' +
      '  livemig run --workload gap --strategy postcopy --json\n' +
      '  livemig run --workload gap --write-rate 0 --auto-converge   # a guest that outruns the link\n' +
      EXIT_CODES_HELP,
  );
  cmd.action(
    async (
      o: GuestFlagValues &
        MigrationFlagValues & {
          warmup: string;
          oracle?: boolean;
          json?: boolean;
          out?: string;
          dashboard?: string | true;
        },
    ) => {
      const { config, cap } = guestConfigFromFlags(o);
      const { options, preset } = migrationOptionsFromFlags(o);
      const warmupMs = durationFlag(o.warmup, '--warmup', 0, LIMITS.duration);
      const json = o.json === true;
      // From before the first agent starts, so no signal can leave one behind.
      const offSignals = stopAgentsOnSignal();
      if (!json) process.stderr.write('starting a source and a destination agent on loopback...\n');
      let dash: Awaited<ReturnType<typeof startPairWithDashboard>> | undefined;
      let pair: Pair;
      try {
        dash = o.dashboard ? await startPairWithDashboard(o.dashboard) : undefined;
        pair = dash?.pair ?? (await startPair());
      } catch (err) {
        offSignals();
        throw err;
      }
      if (dash) process.stderr.write(`dashboard: ${dash.url}\n`);
      let result: ScenarioResult;
      let ran = false;
      const progress = json ? undefined : new MigrationProgress();
      try {
        if (!json) {
          process.stderr.write(
            `source ${pair.source.address} (pid ${pair.source.pid}), destination ${pair.destination.address} ` +
              `(pid ${pair.destination.pid}); warming up ${config.workload.name} for ${warmupMs} ms...\n`,
          );
        }
        result = await runScenario(
          pair,
          { guest: config, cap, warmupMs, options, preset, oracle: o.oracle },
          (r) => progress?.update(r),
        );
        ran = true;
      } finally {
        progress?.stop();
        if (!dash || !ran) {
          await pair.close();
          offSignals();
        }
      }
      const { report, oracle } = result;
      // An unreachable budget is said on the terminal even with --json (stderr).
      if (report.energy?.budget && !report.energy.budget.reachable) {
        process.stderr.write(
          `livemig: the power budget of ${report.energy.budget.budgetWatts} W was NOT reachable at times: even the lowest ` +
            `setting was predicted over it then (see energy.budget.decisions)\n`,
        );
      }
      if (json) process.stdout.write(`${JSON.stringify({ ...report, oracle }, null, 2)}\n`);
      else {
        process.stdout.write(`${reportTable(report)}\n`);
        if (oracle) {
          process.stdout.write(
            oracle.equal
              ? `oracle: the migrated guest's RAM equals, byte for byte, a guest that never moved run to steps ${oracle.steps.join('/')}\n`
              : `oracle: RAM DIFFERS from a guest that never moved, first at page ${oracle.firstDifferentPage}\n`,
          );
        }
      }
      if (!migrationSucceeded(report, oracle)) process.exitCode = EXIT.failed;
      // Written after the report is printed: a full disk fails the command (DISK_FULL) but loses no result.
      if (o.out) {
        const file = join(o.out, 'report.json');
        await writeJson(file, { ...report, oracle });
        if (!json) process.stderr.write(`wrote ${file}\n`);
      }
      if (dash) {
        // Quitting the dashboard with Ctrl-C is its normal end: holdDashboard takes the signals from here.
        offSignals();
        await holdDashboard(dash.url);
        await pair.close();
      }
    },
  );
}
