import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { apiTokenForAgent, loadTls, startAgent } from '../agent/index.js';
import { UsageError } from '../errors.js';
import { safeLine } from '../log-safe.js';
import { type DashboardListener, listenDashboard, planDashboard } from '../web/index.js';
import { addLimitFlags, type LimitFlagValues, limitsFromFlags } from './agent-limits.js';
import { stopWithParent } from './parent-watch.js';
import { intFlag, LIMITS, listenFlag, sizeFlag } from './values.js';

/** --snapshot-dir: an existing folder, made absolute (the agent names files in it). */
function snapshotDirFlag(dir: string): string {
  const path = resolve(dir);
  if (!existsSync(path) || !statSync(path).isDirectory()) {
    throw new UsageError(`--snapshot-dir ${dir}: no such folder; create it first`, '--snapshot-dir');
  }
  return path;
}

export function registerAgent(program: Command): void {
  const command = program
    .command('agent')
    .description(
      'Run the livemig agent of this host: it hosts guests, accepts incoming migrations and serves the control ' +
        'API (HTTP+JSON, see docs/agent.md) on one port.',
    )
    .option('--listen <host:port>', 'address to listen on (port 0 = any free port)', '127.0.0.1:7070')
    .option('--max-ram <size>', 'largest guest this agent accepts', '16GiB')
    .option('--max-incoming <n>', 'concurrent incoming migrations', '4')
    .option('--ready-json', 'print {"address": ...} on stdout once listening (for scripts)')
    .option('--quiet', 'do not log events on stderr')
    // For agents started by another livemig process (spawn.ts): stop when that process is gone (parent-watch.ts).
    .addOption(
      new Option('--exit-with-parent', 'stop when stdin closes (the parent process is gone)').hideHelp(),
    )
    .option('--tls-cert <file>', "this agent's certificate (PEM); turns on mutual TLS (docs/security.md)")
    .option('--tls-key <file>', 'the private key of --tls-cert (PEM)')
    .option('--tls-ca <file>', 'CA certificate (PEM) that must sign every peer agent and client')
    .option(
      '--insecure',
      'allow plain TCP on a non-loopback --listen address (trusted, isolated networks only)',
    )
    .option(
      '--api-token-file <file>',
      'require the token in FILE (made, mode 0600, if missing) for commands and RAM reads; default ' +
        '$LIVEMIG_API_TOKEN_FILE (docs/security.md)',
    )
    .option(
      '--allow-host <names>',
      'comma-separated host names browsers may use to reach this agent (besides IP addresses and localhost)',
    )
    .option(
      '--snapshot-dir <dir>',
      'allow `guest snapshot` / `guest restore` with files in DIR (and only there; docs/snapshot.md)',
    )
    .option(
      '--dashboard [port]',
      'serve the live dashboard (loopback only): under /dashboard/ on the agent port, or on PORT / HOST:PORT of ' +
        'its own (docs/dashboard.md)',
    )
    .addHelpText(
      'after',
      '\nExample:\n  livemig agent --listen 127.0.0.1:7070 &\n  livemig agent --listen 127.0.0.1:7071 &\n' +
        '  livemig guest start --agent 127.0.0.1:7070 --workload gap --ram 256MiB\n' +
        '  livemig migrate --from 127.0.0.1:7070 --guest g1 --to 127.0.0.1:7071 --xbzrle\n',
    )
    .action(
      async (o: {
        listen: string;
        maxRam: string;
        maxIncoming: string;
        readyJson?: boolean;
        quiet?: boolean;
        dashboard?: string | boolean;
        tlsCert?: string;
        tlsKey?: string;
        tlsCa?: string;
        insecure?: boolean;
        apiTokenFile?: string;
        allowHost?: string;
        exitWithParent?: boolean;
        snapshotDir?: string;
      }) => {
        // Every flag is checked before anything starts: a bad value is one line and exit code 2.
        const { host, port } = listenFlag(o.listen, '--listen');
        const maxRamBytes = sizeFlag(o.maxRam, '--max-ram', 2 ** 20, LIMITS.size);
        const maxIncoming = intFlag(o.maxIncoming, '--max-incoming', 1, 1024);
        const limits = limitsFromFlags(o as typeof o & LimitFlagValues);
        const tls = loadTls({ cert: o.tlsCert, key: o.tlsKey, ca: o.tlsCa });
        const token = apiTokenForAgent(o.apiTokenFile);
        const plan = planDashboard(o.dashboard, host);
        const snapshotDir = o.snapshotDir === undefined ? undefined : snapshotDirFlag(o.snapshotDir);
        const agent = await startAgent({
          host,
          port,
          maxRamBytes,
          maxIncoming,
          limits,
          log: o.quiet
            ? undefined
            : (line) => process.stderr.write(`[agent ${process.pid}] ${safeLine(line)}\n`),
          dashboard: plan.onAgentPort,
          tls,
          insecure: o.insecure,
          apiToken: token?.token,
          snapshotDir,
          allowHosts: o.allowHost
            ?.split(',')
            .map((h) => h.trim())
            .filter(Boolean),
        });
        if (token?.created) process.stderr.write(`made a new API token in ${token.file}\n`);
        let extra: DashboardListener | undefined;
        if (plan.listen) {
          try {
            extra = await listenDashboard(agent.handleDashboardHttp, plan.listen.host, plan.listen.port);
          } catch (err) {
            // The dashboard's port is taken: stop the agent, so the command ends with the one-line error.
            await agent.close();
            throw err;
          }
        }
        // The page on the agent port sends commands: it takes the token from the URL's fragment (never sent to
        // the server, nor in a Referer) and keeps it for the tab. The --dashboard PORT page is read-only.
        const fragment = token ? `#token=${encodeURIComponent(token.token)}` : '';
        const dashboard =
          extra?.url ?? (plan.onAgentPort ? `http://${agent.address}/dashboard/${fragment}` : undefined);
        if (o.readyJson)
          process.stdout.write(
            `${JSON.stringify({ address: agent.address, pid: process.pid, ...(dashboard ? { dashboard } : {}) })}\n`,
          );
        else {
          process.stderr.write(
            `livemig agent listening on ${agent.address} (control API: ${tls ? 'https' : 'http'}://${agent.address}/v1/status${tls ? ', mutual TLS' : ''})\n`,
          );
          if (dashboard) process.stderr.write(`dashboard: ${dashboard}\n`);
        }
        const signal = await new Promise<string>((resolve) => {
          process.once('SIGTERM', () => resolve('SIGTERM'));
          process.once('SIGINT', () => resolve('SIGINT'));
          if (o.exitWithParent) stopWithParent(() => resolve('parent gone'));
        });
        // Stop cleanly and promptly: migrations cancelled (or, after GO, left where they stand), each guest's fate
        // logged by agent.close(). A second signal, or a close that hangs, ends the process at once.
        const say = (line: string) => {
          if (!o.quiet) process.stderr.write(`[agent ${process.pid}] ${line}\n`);
        };
        say(`${signal}: stopping (cancelling migrations, stopping guests)`);
        const again = () => process.exit(1);
        process.once('SIGTERM', again);
        process.once('SIGINT', again);
        const hung = setTimeout(() => {
          say('shutdown did not finish within 10 s: exiting anyway');
          process.exit(1);
        }, 10_000);
        await extra?.close();
        await agent.close();
        clearTimeout(hung);
        say('stopped');
        // Nothing of the agent is left; a stray handle (a peer's half-closed socket) must not keep the process.
        setTimeout(() => process.exit(0), 1000).unref();
      },
    );
  addLimitFlags(command);
}
