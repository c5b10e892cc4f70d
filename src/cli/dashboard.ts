/**
 * `livemig run --dashboard`: the source agent serves the dashboard, the page opens with the destination filled in,
 * and the agents stay up after the migration so the report can be read, until the user quits.
 */
import { createInterface } from 'node:readline';
import { clientApiToken } from '../agent/index.js';
import { type ChildAgent, spawnAgents } from '../agent/spawn.js';
import { UsageError } from '../errors.js';
import type { Pair } from '../experiments/scenario.js';
import { planDashboard } from '../web/index.js';

/** Starts the source (with the dashboard) and the destination agent; returns the page's address. */
export async function startPairWithDashboard(flag: string | true): Promise<{ pair: Pair; url: string }> {
  const plan = planDashboard(flag, '127.0.0.1');
  if (plan.listen?.port === 0) throw new UsageError('--dashboard: give a port other than 0', '--dashboard');
  const [source, destination] = (await spawnAgents([
    { args: flag === true ? ['--dashboard'] : ['--dashboard', flag] },
    {},
  ])) as [ChildAgent, ChildAgent];
  const base = plan.listen ? `http://${plan.listen.host}:${plan.listen.port}` : `http://${source.address}`;
  // Agents inherit $LIVEMIG_API_TOKEN_FILE: the page on the agent's port then needs its token (docs/dashboard.md).
  const token = plan.listen ? undefined : clientApiToken();
  const fragment = token ? `#token=${encodeURIComponent(token)}` : '';
  return {
    pair: {
      source,
      destination,
      close: async () => {
        await Promise.all([source.stop(), destination.stop()]);
      },
    },
    url: `${base}/dashboard/?destination=${encodeURIComponent(destination.address)}${fragment}`,
  };
}

/** Keeps the dashboard up until Ctrl-C, SIGTERM, or Enter on a terminal. */
export async function holdDashboard(url: string): Promise<void> {
  const tty = process.stdin.isTTY === true;
  process.stderr.write(
    `the dashboard stays up at ${url}\n${tty ? 'press Enter or Ctrl-C' : 'Ctrl-C'} to quit\n`,
  );
  await new Promise<void>((resolve) => {
    const done = () => {
      rl?.close();
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    const rl = tty ? createInterface({ input: process.stdin }) : undefined;
    rl?.once('line', done);
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}
