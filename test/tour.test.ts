/**
 * README.md's "A tour" runs: every `npx livemig …` line of its first ```sh block, read from the README itself (so the
 * test follows the README), run as the `livemig` CLI at a small size — guests of at most 8 MiB, a 300 ms warm-up,
 * `--tiny` instead of `--quick`, agents on free ports instead of 7070/7071. A `run` line also gets `--json` so its
 * report can be checked: completed, verified, and the oracle's verdict where the line asks for it.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AgentClient } from '../src/agent/index.js';
import { type ChildAgent, cliCommand, spawnAgent } from '../src/agent/spawn.js';
import { parseSize } from '../src/units.js';
import { codeBlocks, ROOT } from './markdown.js';

/** The tour's lines: commands without their trailing comments. */
function tourLines(): string[] {
  const text = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const at = text.indexOf('\n## A tour\n');
  expect(at, 'README.md has a "## A tour" section').toBeGreaterThan(0);
  const heading = text.slice(0, at + 1).split('\n').length;
  const block = codeBlocks('README.md', text).find((b) => b.line > heading && b.lang === 'sh');
  expect(block, 'the tour has a ```sh block').toBeDefined();
  return block!.code
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/**
 * Enough for every line to do what it says and be checked (completed, verified, the oracle). At 32 MiB the
 * auto-converge line alone ran 23-30 rounds, 40-60 s, ramping the throttle to 99 % (at 8 MiB it converges in a round
 * or a few): the throttle's effect is checked in test/migration.test.ts, not here.
 */
const MAX_RAM = 8 * 2 ** 20;
const SMALL = '8MiB';

/** Splits a command line into words (the tour uses no quotes). */
function words(line: string): string[] {
  return line.split(/\s+/).filter(Boolean);
}

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function setFlag(args: string[], name: string, value?: string): void {
  const i = args.indexOf(name);
  if (i < 0) args.push(...(value === undefined ? [name] : [name, value]));
  else if (value !== undefined) args[i + 1] = value;
}

/** The `livemig` CLI as a child process, asynchronously (background agents keep logging meanwhile). */
function livemig(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { file, execArgv } = cliCommand();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...execArgv, file, ...args],
      { encoding: 'utf8', timeout: 240_000, maxBuffer: 64 * 2 ** 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const agents: ChildAgent[] = [];
const out = mkdtempSync(join(tmpdir(), 'livemig-tour-'));
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  rmSync(out, { recursive: true, force: true });
});

/** README address → the address the agent really got. */
const addresses = new Map<string, string>();

/** Runs one tour line at a small size and checks what it did; throws what went wrong. */
async function runLine(line: string): Promise<void> {
  if (!line.startsWith('npx livemig ')) throw new Error('a tour line is an npx livemig command');
  const background = line.endsWith('&');
  let args = words(line.replace(/&$/, ''))
    .slice(2)
    .map((a) => addresses.get(a) ?? a);
  const command = args[0]!;
  const ram = flag(args, '--ram');
  if (ram !== undefined && parseSize(ram) > MAX_RAM) setFlag(args, '--ram', SMALL);

  if (command === 'agent') {
    if (!background) throw new Error('an agent runs in the background (&)');
    const listen = flag(args, '--listen')!;
    const rest = args.slice(1).filter((_, i, all) => all[i] !== '--listen' && all[i - 1] !== '--listen');
    const agent = await spawnAgent('127.0.0.1', ['--quiet', ...rest]);
    agents.push(agent);
    addresses.set(listen, agent.address);
    return;
  }
  if (background) throw new Error('only agents run in the background');
  switch (command) {
    case '--help':
      break;
    case 'run':
      if (ram === undefined) setFlag(args, '--ram', SMALL);
      setFlag(args, '--warmup', '300ms');
      setFlag(args, '--json');
      break;
    case 'experiment':
      args = args.map((a) => (a === '--quick' ? '--tiny' : a));
      setFlag(args, '--out', out);
      setFlag(args, '--no-progress');
      break;
    case 'sim':
      setFlag(args, '--no-progress');
      break;
    case 'guest':
      if (ram === undefined) setFlag(args, '--ram', SMALL);
      break;
    case 'migrate':
      setFlag(args, '--json');
      break;
    default:
      throw new Error(`test/tour.test.ts does not know how to run "${command}" small; teach it`);
  }
  const r = await livemig(args);
  if (r.code !== 0) throw new Error(`exit code ${r.code}: ${r.stderr.trim().slice(-1500)}`);
  if (command === '--help' && !r.stdout.startsWith('Usage: livemig')) throw new Error('no usage');
  if (command === 'sim' && !/LR-MMT/.test(r.stdout))
    throw new Error(`no LR-MMT result: ${r.stdout.slice(0, 500)}`);
  if (command === 'run' || command === 'migrate') {
    const report = JSON.parse(r.stdout) as { status: string; verified: boolean; oracle?: { equal: boolean } };
    if (report.status !== 'completed' || !report.verified) {
      throw new Error(`migration ${report.status}, verified ${report.verified}`);
    }
    if (args.includes('--oracle') && report.oracle?.equal !== true)
      throw new Error('the oracle found a difference');
  }
  if (command === 'migrate') {
    const info = await new AgentClient(flag(args, '--to')!).guest(flag(args, '--guest')!);
    if (info.status !== 'running') throw new Error(`the guest is ${info.status} on the destination`);
  }
}

/**
 * The tour's lines in the order they must keep: the agents and every line that names an agent's address (a guest
 * started on one, migrated to the other), as one chain; every other line stands alone (its own agents on free
 * ports, its own output). The chain and the standalone lines run side by side, two standalone lines at a time: most
 * of a line's time is spent starting processes and waiting on them.
 */
function schedule(lines: string[]): { chain: string[]; alone: string[] } {
  const agentAddresses = lines
    .filter((l) => words(l)[2] === 'agent')
    .map((l) => flag(words(l), '--listen'))
    .filter((a): a is string => a !== undefined);
  const chained = (l: string) => words(l)[2] === 'agent' || agentAddresses.some((a) => words(l).includes(a));
  return { chain: lines.filter(chained), alone: lines.filter((l) => !chained(l)) };
}

describe("README's tour", () => {
  it('every line runs at a small size', { timeout: 900_000 }, async () => {
    const lines = tourLines();
    expect(lines.length).toBeGreaterThanOrEqual(5);
    const { chain, alone } = schedule(lines);
    expect(chain.length + alone.length).toBe(lines.length);
    const failures: string[] = [];
    const runOne = (line: string) =>
      runLine(line).catch((err: unknown) => {
        failures.push(`${line}\n    ${err instanceof Error ? err.message : String(err)}`);
      });
    const inOrder = async (list: string[]) => {
      for (const line of list) await runOne(line);
    };
    const queue = [...alone];
    const worker = async () => {
      for (let line = queue.shift(); line !== undefined; line = queue.shift()) await runOne(line);
    };
    await Promise.all([inOrder(chain), worker(), worker()]);
    expect(failures).toEqual([]);
  });
});
