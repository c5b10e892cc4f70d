import Table from 'cli-table3';
import type { Command } from 'commander';
import { AgentClient } from '../agent/index.js';
import { formatBytes } from '../units.js';
import { addGuestFlags, type GuestFlagValues, guestConfigFromFlags } from './flags.js';

export function registerGuest(program: Command): void {
  const guest = program
    .command('guest')
    .description('Start, list, pause, resume and stop guests on an agent.');
  const start = guest
    .command('start')
    .description('Start a guest running a workload on an agent')
    .requiredOption('--agent <host:port>', 'the agent to start it on')
    .option('--id <name>', 'guest name (default: g1, g2, ...)')
    .option('--paused', 'create it paused')
    .option('--json', 'print the guest as JSON');
  addGuestFlags(start);
  start.action(
    async (o: GuestFlagValues & { agent: string; id?: string; paused?: boolean; json?: boolean }) => {
      const { config, cap } = guestConfigFromFlags(o);
      const client = new AgentClient(o.agent);
      let info = await client.startGuest(config, o.id, !o.paused);
      if (cap > 0) info = await client.throttle(info.id, { cap });
      process.stdout.write(o.json ? `${JSON.stringify(info)}\n` : `started guest ${info.id} on ${o.agent}\n`);
    },
  );
  guest
    .command('list')
    .description('List the guests of an agent')
    .requiredOption('--agent <host:port>', 'the agent')
    .option('--json', 'JSON output')
    .action(async (o: { agent: string; json?: boolean }) => {
      const list = await new AgentClient(o.agent).guests();
      if (o.json) {
        process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        return;
      }
      const t = new Table({
        head: ['id', 'status', 'workload', 'RAM', 'vCPUs', 'steps', 'CAP', 'dirty pages'],
      });
      for (const g of list) {
        t.push([
          g.id,
          g.status,
          g.config.workload.name,
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
    guest
      .command(action)
      .description(`${action[0]!.toUpperCase()}${action.slice(1)} a guest`)
      .requiredOption('--agent <host:port>', 'the agent')
      .requiredOption('--guest <id>', 'the guest')
      .action(async (o: { agent: string; guest: string }) => {
        const c = new AgentClient(o.agent);
        if (action === 'pause') await c.pause(o.guest);
        else if (action === 'resume') await c.resume(o.guest);
        else await c.stopGuest(o.guest);
        process.stdout.write(`${action}: ${o.guest}\n`);
      });
  }
}
