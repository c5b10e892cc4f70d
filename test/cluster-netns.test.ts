/**
 * `livemig cluster --netns`: each host in a network namespace of its own, joined through a bridge by veth links shaped
 * with tc tbf. A tiny cluster runs across it (its agents listen on the namespaces' addresses, not the loopback, and
 * every guest is accounted for), and nothing of it is left behind: not after the run, not after Ctrl-C. Without root
 * (or iproute2) --netns is refused with a typed error saying what to do; that part runs everywhere. The rest is
 * skipped, with the reason, where namespaces cannot be made (CI runs as root: it runs there).
 */
import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AgentClient } from '../src/agent/index.js';
import { cliCommand } from '../src/agent/spawn.js';
import {
  ClusterNetwork,
  NetnsError,
  netnsUnavailable,
  QUICK_CLUSTER,
  runCluster,
  spawnNetnsAgents,
} from '../src/cluster/index.js';
import { MiB, runCli, sleep } from './helpers.js';

const reason = netnsUnavailable()?.message;
if (reason) console.warn(`cluster --netns tests skipped: ${reason}`);

const namespacesOf = (pid: number): string[] =>
  execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(`livemig-c${pid}-`));

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('cluster --netns refused where namespaces cannot be made', () => {
  afterEach(() => vi.restoreAllMocks());

  it('not root: a typed error that says to run as root or drop --netns, before anything starts', async () => {
    vi.spyOn(process, 'getuid').mockReturnValue(1000);
    const why = netnsUnavailable();
    expect(why).toBeInstanceOf(NetnsError);
    expect(why!.reason).toBe('not-root');
    expect(why!.code).toBe('BAD_ARGUMENT');
    expect(why!.message).toMatch(/--netns: .*root.*drop --netns/);
    await expect(
      runCluster({ ...QUICK_CLUSTER, hosts: 2, vms: 2, netns: { rateBytesPerSec: 1e8 } }),
    ).rejects.toThrow(/--netns: network namespaces need root/);
  });

  it('--link-rate without --netns is a usage error', () => {
    const r = runCli(['cluster', '--quick', '--link-rate', '100Mbit']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--link-rate: shapes the --netns links; add --netns/);
  });
});

describe.skipIf(reason !== undefined)('cluster --netns (root)', () => {
  it('builds shaped links in namespaces of this run, migrates across them, and removes every one of them', async () => {
    const net = ClusterNetwork.create({ hosts: 2, rateBytesPerSec: 100e6 / 8 });
    try {
      expect(net.hosts.map((h) => h.ns)).toEqual([
        expect.stringMatching(new RegExp(`^livemig-c${process.pid}-\\w+-h0$`)),
        expect.stringMatching(new RegExp(`^livemig-c${process.pid}-\\w+-h1$`)),
      ]);
      expect(net.leftovers().length).toBeGreaterThanOrEqual(4); // 2 namespaces, a bridge, 2 veth pairs
      // Each host's uplink is shaped inside its namespace.
      const qdisc = execFileSync('ip', ['netns', 'exec', net.hosts[0]!.ns, 'tc', 'qdisc', 'show'], {
        encoding: 'utf8',
      });
      expect(qdisc).toMatch(/tbf .*rate 100Mbit/);
      // A guest migrates from host 0's namespace to host 1's over the shaped links, at the link's pace.
      const { agents, release } = await spawnNetnsAgents(net, ['--quiet']);
      try {
        expect(agents.map((a) => a.address.split(':')[0])).toEqual(net.hosts.map((h) => h.ip));
        const a = new AgentClient(agents[0]!.address);
        const b = new AgentClient(agents[1]!.address);
        // Its RAM full of non-zero pages (zero pages travel as markers and would not load the link).
        await a.startGuest(
          {
            ramBytes: 32 * MiB,
            seed: 31,
            workload: { name: 'gap', params: { workingSetBytes: 24 * MiB, writeRate: 2000 } },
          },
          'g0',
        );
        const m = await a.migrate('g0', agents[1]!.address, { maxBandwidth: 0 });
        const r = await a.waitMigration(m.id);
        expect(r.status, JSON.stringify(r.error)).toBe('completed');
        expect(r.verified).toBe(true);
        // 100 Mbit/s shaping: the link, not the engine, sets the pace (a bound load cannot fool: shaping caps it).
        expect(r.perRound[0]!.throughputMbps).toBeLessThan(130);
        expect((await b.guest('g0')).status).not.toBe('incoming');
        a.close();
        b.close();
      } finally {
        await Promise.all(agents.map((x) => x.stop()));
        release();
      }
    } finally {
      net.teardown();
    }
    expect(net.leftovers()).toEqual([]);
    expect(namespacesOf(process.pid).filter((n) => net.hosts.some((h) => h.ns === n))).toEqual([]);
  });

  it('runs a tiny cluster across the namespaces, with delayed links: agents on their own addresses, every guest accounted for', async () => {
    const r = await runCluster({
      ...QUICK_CLUSTER,
      hosts: 3,
      vms: 4,
      ramMiB: [16, 16],
      durationSec: 20 * 60,
      speed: 300,
      netns: { rateBytesPerSec: 200e6 / 8 },
      // Latency on top of the shaped links: the link proxies listen on the bridge (no netem here).
      link: { delayMs: 5, jitterMs: 1, loss: 0 },
    });
    expect(r.link!.connections).toBeGreaterThanOrEqual(r.migrations.length);
    const subnet = /^(10\.\d+\.\d+)\.\d+:\d+$/.exec(r.hosts[0]!.address)?.[1];
    expect(subnet, r.hosts[0]!.address).toBeDefined();
    for (const [i, h] of r.hosts.entries()) {
      expect(h.netns).toMatch(new RegExp(`^livemig-c${process.pid}-\\w+-h${i}$`));
      expect(h.address.startsWith(`${subnet}.${i + 1}:`)).toBe(true);
    }
    for (const vm of r.vms) {
      // PABFD may leave a VM unplaced when the hosts are full; every placed one runs on a live host.
      if (vm.state === 'unplaced') continue;
      expect(vm.state).toBe('running');
      expect(r.hosts[vm.finalHost]!.alive).toBe(true);
    }
    expect(r.vms.some((vm) => vm.state === 'running')).toBe(true);
    for (const m of r.migrations.filter((x) => x.status === 'completed')) {
      expect(m.verified).toBe(true);
      expect(m.downtimeMs).toBeGreaterThanOrEqual(2 * 4); // the switch-over's round trip across the delayed link
    }
    expect(r.intervals).toHaveLength(4);
    // Torn down with the agents.
    expect(namespacesOf(process.pid).filter((n) => r.hosts.some((h) => h.netns === n))).toEqual([]);
  }, 180_000);

  it('Ctrl-C: the CLI kills its agents, removes its namespaces and exits 130', async () => {
    const { file, execArgv } = cliCommand();
    const child = spawn(
      process.execPath,
      [
        ...execArgv,
        file,
        'cluster',
        '--netns',
        '--hosts',
        '2',
        '--vms',
        '2',
        '--ram',
        '16',
        '--duration',
        '2h',
        '--speed',
        '60',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const lines: string[] = [];
    const rl = createInterface({ input: child.stderr! });
    rl.on('line', (l) => lines.push(l));
    // Wait for the first interval: the agents run in their namespaces.
    for (let i = 0; i < 240 && !lines.some((l) => l.startsWith('interval 1/')); i++) await sleep(500);
    expect(
      lines.some((l) => l.startsWith('interval 1/')),
      lines.join('\n'),
    ).toBe(true);
    const ns = namespacesOf(child.pid!);
    expect(ns).toHaveLength(2);
    const agents = ns.flatMap((n) =>
      execFileSync('ip', ['netns', 'pids', n], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number),
    );
    expect(agents.length).toBeGreaterThanOrEqual(2);
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(namespacesOf(child.pid!)).toEqual([]);
    for (let i = 0; i < 20 && agents.some(isAlive); i++) await sleep(250);
    expect(agents.filter(isAlive)).toEqual([]);
  }, 180_000);
});
