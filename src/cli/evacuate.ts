/**
 * `livemig evacuate`: move every guest off one agent (maintenance, a host about to be switched off), K at a time, in
 * the order that finishes soonest with the least downtime (src/agent/evacuate.ts).
 */
import Table from 'cli-table3';
import type { Command } from 'commander';
import { EVACUATION_ORDERS, type EvacuationOrder, type EvacuationReport } from '../agent/index.js';
import { UsageError } from '../errors.js';
import { formatBytes } from '../units.js';
import { EXIT } from './exit.js';
import {
  addMigrationFlags,
  addTlsFlags,
  agentAddress,
  agentClient,
  type MigrationFlagValues,
  migrationOptionsFromFlags,
  type TlsFlagValues,
} from './flags.js';
import { intFlag } from './values.js';

/** The per-migration table and the totals line of an evacuation report. */
export function evacuationTable(r: EvacuationReport): string {
  const t = new Table({
    head: [
      'guest',
      'to',
      'heat',
      'strategy',
      'start s',
      'time ms',
      'downtime ms',
      'bytes',
      'verified',
      'status',
    ],
  });
  for (const m of r.moves) {
    t.push([
      m.guest,
      m.destination,
      m.heat,
      `${m.strategy}${m.xbzrle ? '+xbzrle' : ''}`,
      (m.startMs / 1000).toFixed(2),
      m.totalTimeMs.toFixed(0),
      m.downtimeMs.toFixed(1),
      formatBytes(m.transferredBytes),
      m.verified ? 'yes' : 'no',
      m.error ? `${m.status}: ${m.error}` : m.status,
    ]);
  }
  return (
    `${t.toString()}\n` +
    `order ${r.order}, ${r.maxParallel} at once: ${r.completed}/${r.guests} moved in ${(r.totalTimeMs / 1000).toFixed(2)} s; ` +
    `downtime sum ${r.downtimeSumMs.toFixed(1)} ms, max ${r.downtimeMaxMs.toFixed(1)} ms; ` +
    `${formatBytes(r.bytes)} sent; sum of completion times ${(r.completionSumMs / 1000).toFixed(2)} s`
  );
}

export function registerEvacuate(program: Command): void {
  const cmd = program
    .command('evacuate')
    .description(
      'Move every guest off one agent to the given destinations, K at a time. The smart order measures each ' +
        "guest's dirty rate, prices it with the pre-copy model, runs the cheap guests first and gives the hot " +
        'ones XBZRLE or post-copy; id and all-at-once are the naive orders, for comparison.',
    )
    .requiredOption('--from <host:port>', 'the agent to empty')
    .option(
      '--to <host:port,...>',
      'destination agents, comma-separated (required: an agent does not know the other hosts)',
    )
    .option('--max-parallel <k>', 'migrations at once (all-at-once ignores it)', '2')
    .option('--order <order>', `${EVACUATION_ORDERS.join(' | ')}`, 'smart')
    .option('--json', 'print the evacuation report as JSON');
  addMigrationFlags(cmd);
  addTlsFlags(cmd);
  cmd.addHelpText(
    'after',
    '\nExamples:\n' +
      '  livemig evacuate --from 127.0.0.1:7070 --to 127.0.0.1:7071,127.0.0.1:7072\n' +
      '  livemig evacuate --from 127.0.0.1:7070 --to 127.0.0.1:7071 --max-parallel 3 --order id --json\n' +
      '  livemig evacuate ... --max-bandwidth 64MiB --downtime-limit 100ms   (options apply to every migration)\n' +
      '\nThe command returns when every guest has moved or failed to; exit code 1 if any failed.\n',
  );
  cmd.action(
    async (
      o: MigrationFlagValues &
        TlsFlagValues & { from: string; to?: string; maxParallel: string; order: string; json?: boolean },
    ) => {
      if (o.to === undefined) {
        throw new UsageError(
          '--to <host:port,...> is required: the destination agents the guests may go to',
          '--to',
        );
      }
      if (!(EVACUATION_ORDERS as readonly string[]).includes(o.order)) {
        throw new UsageError(`--order: "${o.order}"; use one of ${EVACUATION_ORDERS.join(', ')}`, '--order');
      }
      const to = o.to
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
        .map((a) => agentAddress(a, '--to'));
      if (to.includes(o.from)) throw new UsageError('--to must not include the --from agent', '--to');
      const { options, preset } = migrationOptionsFromFlags(o);
      const client = agentClient(o.from, '--from', o);
      try {
        if (!o.json) process.stderr.write(`evacuating ${o.from} to ${to.join(', ')} (${o.order})…\n`);
        const r = await client.evacuate({
          to,
          maxParallel: intFlag(o.maxParallel, '--max-parallel', 1, 64),
          order: o.order as EvacuationOrder,
          options,
          ...(preset ? { preset } : {}),
        });
        process.stdout.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : `${evacuationTable(r)}\n`);
        if (r.failed > 0) process.exitCode = EXIT.failed;
      } finally {
        client.close();
      }
    },
  );
}
