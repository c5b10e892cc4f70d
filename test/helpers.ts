/**
 * Helpers for end-to-end tests: agents (in this process or as child processes), the determinism oracle over
 * the control API, and waiting for conditions without timing assertions.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, vi } from 'vitest';
import { type Agent, AgentClient, type CertFiles, startAgent } from '../src/agent/index.js';
import { type ChildAgent, cliCommand, spawnAgent } from '../src/agent/spawn.js';
import { main } from '../src/cli/main.js';
import { checkOracle } from '../src/experiments/scenario.js';
import type { GuestConfig } from '../src/guest/index.js';
import { encodeHello, StrategyCode } from '../src/migration/protocol/index.js';

export const MiB = 1024 * 1024;

/** The `--tls-cert/--tls-key/--tls-ca` flags for agent `name` of a set made by `makeCerts`. */
export function tlsFlags(files: CertFiles, name: string): string[] {
  const agent = files.agents[name]!;
  return ['--tls-cert', agent.cert, '--tls-key', agent.key, '--tls-ca', files.ca];
}

/** A HELLO for a hand-driven source: protocol 1, pre-copy, one block of 4 KiB pages covering the guest's RAM. */
export function rawHello(guest: { id: string; config: GuestConfig; trace?: unknown }, vcpus = 1): Buffer {
  return encodeHello({
    versionMin: 1,
    versionMax: 1,
    migrationId: '00'.repeat(16),
    strategy: StrategyCode.PRECOPY,
    pageSize: 4096,
    capabilities: 0,
    blocks: [guest.config.ramBytes / 4096],
    vcpus,
    guest,
  });
}

/** Runs the `livemig` CLI in a child process (from source or dist, as the tests run) and returns what it printed. */
export function runCli(
  args: string[],
  timeout = 120_000,
): { code: number | null; stdout: string; stderr: string } {
  const { file, execArgv } = cliCommand();
  const r = spawnSync(process.execPath, [...execArgv, file, ...args], { encoding: 'utf8', timeout });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The CLI in this process (`main`), its stdout and stderr captured: for commands quick enough not to need a child. */
export async function runMain(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  const errSpy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    err += String(chunk);
    return true;
  });
  try {
    const code = await main(['node', 'livemig', ...args]);
    return { code, out, err };
  } finally {
    spy.mockRestore();
    errSpy.mockRestore();
  }
}

export async function localAgent(
  opts: { maxRamBytes?: number } = {},
): Promise<{ agent: Agent; client: AgentClient }> {
  const agent = await startAgent({ host: '127.0.0.1', port: 0, ...opts });
  return { agent, client: new AgentClient(agent.address) };
}

export type LocalAgent = Awaited<ReturnType<typeof localAgent>>;

/**
 * Two in-process agents shared by a test file's tests: started before the first, closed after the last. The result's
 * `a` and `b` are set once the file's beforeAll hook has run.
 */
export function agentPairForFile(): { a: LocalAgent; b: LocalAgent } {
  const pair = {} as { a: LocalAgent; b: LocalAgent };
  beforeAll(async () => {
    [pair.a, pair.b] = await Promise.all([localAgent(), localAgent()]);
  });
  afterAll(async () => {
    await Promise.all([pair.a?.agent.close(), pair.b?.agent.close()]);
  });
  return pair;
}

export async function childAgent(args: string[] = []): Promise<{ child: ChildAgent; client: AgentClient }> {
  const child = await spawnAgent('127.0.0.1', ['--quiet', ...args]);
  return { child, client: new AgentClient(child.address) };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls until `fn` returns a truthy value (or throws after `timeoutMs`). */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Sum of a guest's vCPU steps, read twice apart: proves it is running (advancing). */
export async function isAdvancing(client: AgentClient, id: string): Promise<boolean> {
  const a = (await client.guest(id)).steps.reduce((x, y) => x + y, 0);
  return waitFor(
    async () => (await client.guest(id)).steps.reduce((x, y) => x + y, 0) > a,
    10_000,
    `guest ${id} to advance`,
  ).then(() => true);
}

/** Pauses the guest on `client`'s agent and checks its RAM against a guest that never moved. */
export async function expectOracle(client: AgentClient, id: string, config: GuestConfig): Promise<void> {
  const r = await checkOracle(client, id, config);
  if (!r.equal)
    throw new Error(
      `oracle: RAM differs from a guest that never moved, first at page ${r.firstDifferentPage}`,
    );
}
