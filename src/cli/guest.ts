import Table from 'cli-table3';
import type { Command } from 'commander';
import type { AgentClient } from '../agent/index.js';
import { safeText } from '../log-safe.js';
import { formatBytes } from '../units.js';
import {
  addGuestFlags,
  addTlsFlags,
  agentClient,
  type GuestFlagValues,
  guestConfigFromFlags,
  type TlsFlagValues,
} from './flags.js';
import { registerSnapshot } from './snapshot.js';

/** Runs `fn` with a client of `--agent` (TLS from the flags) and closes it, so the command exits promptly. */
async function withAgent<T>(
  o: TlsFlagValues & { agent: string },
  fn: (c: AgentClient) => Promise<T>,
): Promise<T> {
  const c = agentClient(o.agent, '--agent', o);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

export function registerGuest(program: Command): void {
  const guest = program
    .command('guest')
    .description('Start, list, pause, resume, stop, snapshot and restore guests on an agent.');
  registerSnapshot(guest);
  const start = guest
    .command('start')
    .description('Start a guest running a workload on an agent')
    .requiredOption('--agent <host:port>', 'the agent to start it on')
    .option('--id <name>', 'guest name (default: g1, g2, ...)')
    .option('--paused', 'create it paused')
    .option('--json', 'print the guest as JSON');
  addGuestFlags(start);
  addTlsFlags(start);
  start.action(
    async (
      o: GuestFlagValues & TlsFlagValues & { agent: string; id?: string; paused?: boolean; json?: boolean },
    ) => {
      const { config, cap } = guestConfigFromFlags(o);
      const info = await withAgent(o, async (client) => {
        const started = await client.startGuest(config, o.id, !o.paused);
        return cap > 0 ? client.throttle(started.id, { cap }) : started;
      });
      process.stdout.write(o.json ? `${JSON.stringify(info)}\n` : `started guest ${info.id} on ${o.agent}\n`);
    },
  );
  const list = guest
    .command('list')
    .description('List the guests of an agent')
    .requiredOption('--agent <host:port>', 'the agent')
    .option('--json', 'JSON output');
  addTlsFlags(list);
  list.action(async (o: TlsFlagValues & { agent: string; json?: boolean }) => {
    const list = await withAgent(o, (c) => c.guests());
    if (o.json) {
      process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
      return;
    }
    const t = new Table({
      head: ['id', 'status', 'workload', 'RAM', 'vCPUs', 'steps', 'CAP', 'dirty pages'],
    });
    for (const g of list) {
      // A migrated-in guest's id and workload came from the peer's HELLO.
      t.push([
        safeText(g.id, 80),
        g.status,
        safeText(g.config.workload.name, 80),
        formatBytes(g.config.ramBytes),
        g.config.vcpus ?? 1,
        g.steps.join('/'),
        g.cap || '-',
        g.dirtyPages,
      ]);
    }
    process.stdout.write(`${t.toString()}\n`);
  });
  for (const action of ['pause', 'resume', 'stop'] as const) {
    const sub = guest
      .command(action)
      .description(`${action[0]!.toUpperCase()}${action.slice(1)} a guest`)
      .requiredOption('--agent <host:port>', 'the agent')
      .requiredOption('--guest <id>', 'the guest');
    addTlsFlags(sub);
    sub.action(async (o: TlsFlagValues & { agent: string; guest: string }) => {
      await withAgent(o, async (c) => {
        if (action === 'pause') await c.pause(o.guest);
        else if (action === 'resume') await c.resume(o.guest);
        else await c.stopGuest(o.guest);
      });
      process.stdout.write(`${action}: ${o.guest}\n`);
    });
  }
}
