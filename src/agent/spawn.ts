/**
 * Starting livemig agents as child processes (for `livemig run`, the demo, the experiments, the fault matrix and
 * the end-to-end tests), whether livemig runs from its TypeScript sources (tsx) or from the built dist/. It lives
 * with the agent, not the CLI, so that experiments and faults can start agents without importing the CLI (which
 * imports them): the agent process is started by running the CLI's bin, a path, not an import.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { MigrationError } from '../errors.js';
import { safeText } from '../log-safe.js';

/** The command line that runs livemig's CLI in a child process. */
export function cliCommand(): { file: string; execArgv: string[] } {
  // LIVEMIG_CLI: run this built CLI (dist/cli/bin.js) instead, e.g. so benchmarks measure what users run.
  const override = process.env.LIVEMIG_CLI;
  if (override) return { file: override, execArgv: [] };
  const fromSource = import.meta.url.endsWith('.ts');
  const file = fileURLToPath(new URL(fromSource ? '../cli/bin.ts' : '../cli/bin.js', import.meta.url));
  return { file, execArgv: fromSource ? ['--import', 'tsx'] : [] };
}

/** Agents this process started that have not exited yet: stopped on every way out (stopSpawnedAgents, 'exit'). */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // Last resort on any exit (an error, process.exit): 'exit' handlers run synchronously, so SIGKILL. The agents'
    // stdin pipe (--exit-with-parent) covers the deaths that run no handler at all (SIGKILL of this process).
    process.on('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
}

/** Stops (SIGTERM, then SIGKILL after `graceMs`) every agent this process started that still runs. */
export async function stopSpawnedAgents(graceMs = 5000): Promise<void> {
  await Promise.all(
    [...live].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
          setTimeout(() => child.kill('SIGKILL'), graceMs).unref();
        }),
    ),
  );
}

/**
 * Starts several agents at once; if one fails to start, the others are stopped before the error is thrown (no agent
 * is left behind by a half-made pair).
 */
export async function spawnAgents(
  specs: { host?: string; args?: string[]; wrap?: string[] }[],
): Promise<ChildAgent[]> {
  const settled = await Promise.allSettled(specs.map((s) => spawnAgent(s.host, s.args, s.wrap)));
  const failed = settled.find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.all(settled.map((r) => (r.status === 'fulfilled' ? r.value.stop() : undefined)));
    throw failed.reason;
  }
  return settled.map((r) => (r as PromiseFulfilledResult<ChildAgent>).value);
}

export interface ChildAgent {
  address: string;
  pid: number;
  process: ChildProcess;
  /** Lines the agent logged (stderr), for diagnostics. */
  log: string[];
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Spawns `livemig agent --listen HOST:0` and resolves once it listens, with the port it got. `wrap` is a command
 * prefix that execs Node in place (e.g. `ip netns exec NS`: the agent keeps the child's pid and pipes).
 */
export async function spawnAgent(
  host = '127.0.0.1',
  extraArgs: string[] = [],
  wrap: string[] = [],
): Promise<ChildAgent> {
  const { file, execArgv } = cliCommand();
  // LIVEMIG_NODE_ARGS: extra Node flags for agents (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"), for profiling.
  const nodeArgs = (process.env.LIVEMIG_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(
    wrap[0] ?? process.execPath,
    [
      ...(wrap.length > 0 ? [...wrap.slice(1), process.execPath] : []),
      ...nodeArgs,
      ...execArgv,
      file,
      'agent',
      '--listen',
      `${host}:0`,
      '--ready-json',
      '--exit-with-parent',
      ...extraArgs,
    ],
    {
      // stdin is the agent's lifeline (--exit-with-parent): it closes when this process dies, however it dies.
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, FORCE_COLOR: '0' },
    },
  );
  track(child);
  const log: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (l) => {
    log.push(l);
    if (log.length > 500) log.shift();
  });
  const address = await new Promise<string>((resolve, reject) => {
    // An agent that does not come up is not left behind.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new MigrationError('TIMEOUT', `agent did not start in 30 s: ${log.join(' | ')}`));
    }, 30_000);
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (line) => {
      clearTimeout(timer);
      try {
        const { address } = z.object({ address: z.string().min(3) }).parse(JSON.parse(line));
        resolve(address);
      } catch {
        child.kill('SIGKILL');
        reject(new MigrationError('INTERNAL', `agent printed "${safeText(line)}" instead of its address`));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(
        new MigrationError('INTERNAL', `agent exited with code ${code} before listening: ${log.join(' | ')}`),
      );
    });
  });
  return {
    address,
    pid: child.pid!,
    process: child,
    log,
    stop: (signal = 'SIGTERM') =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill(signal);
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}
