/**
 * `livemig run` kept mid-migration, for tests and bench/attack.ts that signal it and check its agents are gone.
 * No vitest import: the bench runs outside vitest.
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { cliCommand } from '../src/agent/spawn.js';

export interface SlowRun {
  run: ChildProcessByStdio<null, null, Readable>;
  /** The source's and destination's pids once run has printed them, else undefined. */
  agentPids(): [number, number] | undefined;
}

/** `livemig run` of a 4 MiB guest at 1 byte/s: the migration is still running whenever a signal comes. */
export function spawnSlowRun(): SlowRun {
  const { file, execArgv } = cliCommand();
  const run = spawn(
    process.execPath,
    [
      ...execArgv,
      file,
      'run',
      '--ram',
      '4MiB',
      '--workload',
      'gap',
      '--warmup',
      '50ms',
      '--max-bandwidth',
      '1',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  run.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return {
    run,
    agentPids() {
      const m = /\(pid (\d+)\), destination .*\(pid (\d+)\)/.exec(stderr);
      return m ? [Number(m[1]), Number(m[2])] : undefined;
    },
  };
}
