/**
 * Starting livemig agents as child processes (for `livemig run`, the demo and the end-to-end tests), whether
 * livemig runs from its TypeScript sources (tsx) or from the built dist/.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { MigrationError } from '../errors.js';

/** The command line that runs livemig's CLI in a child process. */
export function cliCommand(): { file: string; execArgv: string[] } {
  // LIVEMIG_CLI: run this built CLI (dist/cli/bin.js) instead, e.g. so benchmarks measure what users run.
  const override = process.env.LIVEMIG_CLI;
  if (override) return { file: override, execArgv: [] };
  const fromSource = import.meta.url.endsWith('.ts');
  const file = fileURLToPath(new URL(fromSource ? './bin.ts' : './bin.js', import.meta.url));
  return { file, execArgv: fromSource ? ['--import', 'tsx'] : [] };
}

export interface ChildAgent {
  address: string;
  pid: number;
  process: ChildProcess;
  /** Lines the agent logged (stderr), for diagnostics. */
  log: string[];
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Spawns `livemig agent --listen HOST:0` and resolves once it listens, with the port it got. */
export async function spawnAgent(host = '127.0.0.1', extraArgs: string[] = []): Promise<ChildAgent> {
  const { file, execArgv } = cliCommand();
  // LIVEMIG_NODE_ARGS: extra Node flags for agents (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"), for profiling.
  const nodeArgs = (process.env.LIVEMIG_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(
    process.execPath,
    [...nodeArgs, ...execArgv, file, 'agent', '--listen', `${host}:0`, '--ready-json', ...extraArgs],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FORCE_COLOR: '0' },
    },
  );
  const log: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (l) => {
    log.push(l);
    if (log.length > 500) log.shift();
  });
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new MigrationError('TIMEOUT', `agent did not start in 30 s: ${log.join(' | ')}`)),
      30_000,
    );
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve((JSON.parse(line) as { address: string }).address);
      } catch {
        reject(new MigrationError('INTERNAL', `agent printed "${line}" instead of its address`));
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
