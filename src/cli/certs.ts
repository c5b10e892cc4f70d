import { join } from 'node:path';
import type { Command } from 'commander';
import { MAX_CERT_DAYS, makeCerts, writeNewToken } from '../agent/index.js';
import { UsageError } from '../errors.js';
import { intFlag } from './values.js';

export function registerCerts(program: Command): void {
  program
    .command('certs')
    .description(
      'Create a small CA and one certificate per agent for a test cluster (mutual TLS, docs/security.md). ' +
        'Uses the openssl command.',
    )
    .option('--out <dir>', 'directory for ca.pem, ca-key.pem, NAME.pem, NAME-key.pem and api-token', 'certs')
    .option('--names <list>', 'comma-separated agent names, one certificate each', 'agent-a,agent-b')
    .option(
      '--hosts <list>',
      'comma-separated IP addresses and DNS names the agents are reached at (certificate SANs)',
      '127.0.0.1,::1,localhost',
    )
    .option('--days <n>', 'validity in days (1 to 36500)', '365')
    .option('--reuse-ca', 'sign with the CA already in --out instead of making a new one')
    .addHelpText(
      'after',
      '\nExample:\n  livemig certs --out certs --names a,b --hosts 127.0.0.1,10.0.0.1,10.0.0.2\n' +
        '  livemig agent --listen 10.0.0.1:7070 --tls-cert certs/a.pem --tls-key certs/a-key.pem --tls-ca certs/ca.pem \\\n' +
        '    --api-token-file certs/api-token\n',
    )
    .action((o: { out: string; names: string; hosts: string; days: string; reuseCa?: boolean }) => {
      const days = intFlag(o.days, '--days', 1, MAX_CERT_DAYS);
      const split = (v: string) =>
        v
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean);
      const names = split(o.names);
      if (names.length === 0)
        throw new UsageError('--names needs at least one name (e.g. agent-a,agent-b)', '--names');
      const files = makeCerts({ dir: o.out, names, hosts: split(o.hosts), days, reuseCa: o.reuseCa });
      process.stdout.write(`CA: ${files.ca}\n`);
      for (const [n, f] of Object.entries(files.agents)) process.stdout.write(`${n}: ${f.cert} ${f.key}\n`);
      // The control API's bearer token (docs/security.md), kept if one is there already (agents may use it).
      const token = join(o.out, 'api-token');
      process.stdout.write(`API token: ${token}${writeNewToken(token) ? '' : ' (kept)'}\n`);
    });
}
