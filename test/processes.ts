/**
 * Child processes for tests and bench/attack.ts: `livemig run` kept mid-migration, and whether a pid still runs.
 * No vitest import: the bench runs outside vitest.
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
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

/** Whether process `pid` still runs (a zombie waiting for its parent to reap it does not). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}
