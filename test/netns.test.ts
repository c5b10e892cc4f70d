/**
 * Migrations across a real link between two hosts on this machine: the root network namespace (host A) and a
 * namespace of our own (host B), joined by a veth pair whose A side is shaped with `tc tbf`. Traffic stays on that
 * pair. Skipped, with the reason, where namespaces cannot be made (not root, no iproute2).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentClient } from '../src/agent/index.js';
import { cliCommand } from '../src/agent/spawn.js';
import { FaultProxy } from '../src/faults/index.js';
import type { GuestConfig } from '../src/guest/index.js';
import { Command } from '../src/migration/protocol/index.js';
import { expectOracle, isAdvancing, MiB, sleep, waitFor } from './helpers.js';

const NS = `lmB${process.pid % 100000}`;
const VA = `lmA${process.pid % 100000}`;
const VB = `lmb${process.pid % 100000}`;
// Addresses live only on our veth pair: host A in the root namespace, host B in NS.
const NET = 200 + (process.pid % 50);
const ADDR_A = `10.${NET}.77.1`;
const ADDR_B = `10.${NET}.77.2`;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}

function whyNot(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: network namespaces need CAP_NET_ADMIN';
  try {
    ip('netns', 'add', NS);
    ip('link', 'add', VA, 'type', 'veth', 'peer', 'name', VB);
    ip('link', 'set', VB, 'netns', NS);
    ip('addr', 'add', `${ADDR_A}/24`, 'dev', VA);
    ip('link', 'set', VA, 'up');
    ip('netns', 'exec', NS, 'ip', 'addr', 'add', `${ADDR_B}/24`, 'dev', VB);
    ip('netns', 'exec', NS, 'ip', 'link', 'set', VB, 'up');
    ip('netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up');
    execFileSync('tc', [
      'qdisc',
      'add',
      'dev',
      VA,
      'root',
      'tbf',
      'rate',
      '200mbit',
      'burst',
      '256kb',
      'latency',
      '50ms',
    ]);
    return undefined;
  } catch (err) {
    cleanup();
    return `cannot build the two-host network (${(err as Error).message.split('\n')[0]})`;
  }
}

function cleanup(): void {
  for (const args of [
    ['link', 'del', VA],
    ['netns', 'del', NS],
  ]) {
    try {
      ip(...args);
    } catch {
      // already gone
    }
  }
}

interface NsAgent {
  address: string;
  process: ChildProcess;
}

/** Starts an agent on `address`, inside `ns` when given. Not loopback, so it needs --insecure (no TLS here). */
async function agentOn(address: string, ns?: string): Promise<NsAgent> {
  const { file, execArgv } = cliCommand();
  const args = [
    ...execArgv,
    file,
    'agent',
    '--listen',
    `${address}:0`,
    '--insecure',
    '--ready-json',
    '--quiet',
  ];
  const child = ns
    ? spawn('ip', ['netns', 'exec', ns, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`agent exited (${code}): ${err}`)));
  });
  return { address: (JSON.parse(line) as { address: string }).address, process: child };
}

const reason = whyNot();
if (reason) console.warn(`netns tests skipped: ${reason}`);

describe.skipIf(reason !== undefined)('two hosts joined by a shaped veth link', () => {
  let a: NsAgent;
  let b: NsAgent;
  let ca: AgentClient;
  let cb: AgentClient;
  const config: GuestConfig = {
    ramBytes: 32 * MiB,
    seed: 31,
    workload: { name: 'gap', params: { workingSetBytes: 24 * MiB, writeRate: 2000 } },
  };

  beforeAll(async () => {
    [a, b] = await Promise.all([agentOn(ADDR_A), agentOn(ADDR_B, NS)]);
    ca = new AgentClient(a.address);
    cb = new AgentClient(b.address);
  });

  afterAll(async () => {
    for (const x of [a, b]) x?.process.kill('SIGKILL');
    await sleep(200);
    cleanup();
  });

  it('migrates across the link at the rate tc allows, verified by the oracle', async () => {
    await ca.startGuest(config, 'n1');
    await sleep(300);
    const m = await ca.migrate('n1', b.address, { maxBandwidth: 0 });
    const r = await ca.follow(m.id, undefined, 100);
    expect(r.status).toBe('completed');
    expect(r.verified).toBe(true);
    // 200 Mbit/s shaping: the link, not the engine, sets the pace (generous bound: shaping, not timing).
    expect(r.perRound[0]!.throughputMbps).toBeLessThan(260);
    await expectOracle(cb, 'n1', config);
    await cb.stopGuest('n1');
  });

  it('through the fault proxy on host A: delay, a spike and a stall across the link slow the migration, the oracle passes', async () => {
    // The proxy listens on host A's veth address and relays to host B over the shaped link.
    const proxy = await FaultProxy.start({
      listen: `${ADDR_A}:0`,
      target: b.address,
      faults: { delayMs: 2 },
    });
    try {
      proxy.at({ atFrame: Command.PAGES, nth: 3 }, { kind: 'spike', ms: 300, forMs: 500 });
      proxy.at({ atFrame: Command.ROUND }, { kind: 'stall', ms: 1000 });
      await ca.startGuest(config, 'n0');
      const m = await ca.migrate('n0', proxy.address, { maxBandwidth: 0 });
      const r = await ca.follow(m.id, undefined, 100);
      expect(r.status).toBe('completed');
      expect(proxy.stats.events.map((e) => e.action)).toEqual(['spike', 'stall']);
      await expectOracle(cb, 'n0', config);
      await cb.stopGuest('n0');
    } finally {
      await proxy.close();
    }
  });

  it('a link cut mid-round: the migration times out, the guest runs on the source, a retry after repair succeeds', async () => {
    await ca.startGuest(config, 'n2');
    const m = await ca.migrate('n2', b.address, { maxBandwidth: 0, timeoutMs: 4000 });
    await waitFor(async () => (await ca.migration(m.id)).transferredBytes > 2 * MiB, 20_000, 'round 1');
    ip('link', 'set', VA, 'down');
    try {
      const r = await ca.follow(m.id, undefined, 100);
      expect(r.status).toBe('failed');
      expect(r.error?.code).toBe('TIMEOUT');
      expect(await isAdvancing(ca, 'n2')).toBe(true);
    } finally {
      ip('link', 'set', VA, 'up');
    }
    await waitFor(
      async () => (await cb.guests().catch(() => undefined)) !== undefined,
      20_000,
      'the link back',
    );
    const m2 = await ca.migrate('n2', b.address, { maxBandwidth: 0 });
    const r2 = await ca.follow(m2.id, undefined, 100);
    // B still has the first, half-received copy (the source's FIN is lost with the link): the newer HELLO from
    // the same host supersedes it instead of waiting for B's idle timeout.
    expect(r2.status, JSON.stringify(r2.error)).toBe('completed');
    await expectOracle(cb, 'n2', config);
    await cb.stopGuest('n2');
  });
});
