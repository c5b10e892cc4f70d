import type { Command } from 'commander';
import type { AgentClient } from '../agent/index.js';
import { UsageError } from '../errors.js';
import type { MigrationReport } from '../migration/index.js';
import { EXIT, EXIT_CODES_HELP, migrationSucceeded } from './exit.js';
import {
  addMigrationFlags,
  addTlsFlags,
  agentAddress,
  agentClient,
  type MigrationFlagValues,
  migrationOptionsFromFlags,
  type TlsFlagValues,
} from './flags.js';
import { MigrationProgress, reportTable } from './format.js';

/** Follows a migration on its source agent with a progress bar (or silently for --json) and returns its report. */
export async function followMigration(
  client: AgentClient,
  id: string,
  json: boolean,
): Promise<MigrationReport> {
  const progress = json ? undefined : new MigrationProgress();
  try {
    return await client.follow(id, (r) => progress?.update(r));
  } finally {
    progress?.stop();
  }
}

export function printReport(r: MigrationReport, json: boolean): void {
  if (json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  else process.stdout.write(`${reportTable(r)}\n`);
}

export function registerMigrate(program: Command): void {
  const cmd = program
    .command('migrate')
    .description(
      'Ask a source agent to migrate one of its guests to a destination agent, and follow it to the end ' +
        '(round, dirty pages left, throughput, expected downtime).',
    )
    .requiredOption('--from <host:port>', 'the source agent (where the guest runs now)')
    .option('--guest <id>', 'the guest to migrate (livemig guest list --agent ... shows them)')
    .option('--to <host:port>', 'the destination agent (with --resume: a new address to reconnect to)')
    .option(
      '--resume <migration-id>',
      'post-copy recovery: reconnect a migration whose link broke during post-copy (status postcopy-paused) ' +
        'now, optionally to a new --to address, and follow it to the end',
    )
    .option(
      '--reconcile <migration-id>',
      'a migration that ended OWNER_UNKNOWN (guest paused on the source, destination unknown): ask the destination ' +
        'again and put the guest where it belongs (docs/protocol.md)',
    )
    .option('--json', 'print the final report as JSON (no progress bar)');
  addMigrationFlags(cmd);
  addTlsFlags(cmd);
  cmd.addHelpText(
    'after',
    '\nExamples:\n  livemig migrate --from 127.0.0.1:7070 --guest g1 --to 127.0.0.1:7071\n' +
      '  livemig migrate --from 127.0.0.1:7070 --guest g1 --to 127.0.0.1:7071 --xbzrle --xbzrle-cache 32MiB\n' +
      '  livemig migrate ... --strategy hybrid --postcopy-after-rounds 3 --max-bandwidth 1Gbit --json\n' +
      '  livemig migrate ... --tls-cert certs/admin.pem --tls-key certs/admin-key.pem --tls-ca certs/ca.pem\n' +
      '  livemig migrate --from 127.0.0.1:7070 --resume 3f2a…  (after the link broke during post-copy)\n' +
      EXIT_CODES_HELP,
  );
  cmd.action(
    async (
      o: MigrationFlagValues &
        TlsFlagValues & {
          from: string;
          guest?: string;
          to?: string;
          resume?: string;
          reconcile?: string;
          json?: boolean;
        },
    ) => {
      if (o.reconcile !== undefined) {
        if (!/^[0-9a-f]{32}$/.test(o.reconcile)) {
          throw new UsageError(`--reconcile: expected a migration id (32 hex digits), got "${o.reconcile}"`);
        }
        const client = agentClient(o.from, '--from', o);
        try {
          const r = await client.reconcile(o.reconcile);
          printReport(r, o.json === true);
          if (!migrationSucceeded(r)) process.exitCode = EXIT.failed;
        } finally {
          client.close();
        }
        return;
      }
      if (o.resume !== undefined) {
        if (!/^[0-9a-f]{32}$/.test(o.resume)) {
          throw new UsageError(`--resume: expected a migration id (32 hex digits), got "${o.resume}"`);
        }
        const to = o.to === undefined ? undefined : agentAddress(o.to, '--to');
        const client = agentClient(o.from, '--from', o);
        try {
          await client.resumeMigration(o.resume, to);
          const r = await followMigration(client, o.resume, o.json === true);
          printReport(r, o.json === true);
          if (!migrationSucceeded(r)) process.exitCode = EXIT.failed;
        } finally {
          client.close();
        }
        return;
      }
      if (o.guest === undefined)
        throw new UsageError('--guest <id> is required (or --resume <migration-id>)');
      if (o.to === undefined) throw new UsageError('--to <host:port> is required (the destination agent)');
      const { options, preset } = migrationOptionsFromFlags(o);
      const to = agentAddress(o.to, '--to');
      const client = agentClient(o.from, '--from', o);
      try {
        const started = await client.migrate(o.guest, to, options, preset);
        const r = await followMigration(client, started.id, o.json === true);
        printReport(r, o.json === true);
        if (!migrationSucceeded(r)) process.exitCode = EXIT.failed;
      } finally {
        client.close();
      }
    },
  );
}
