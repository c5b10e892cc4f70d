/**
 * Migrations across real links between two hosts on this machine, built by the product's own cluster network
 * (src/cluster/netns.ts, as `livemig cluster --netns` builds it): each host in a network namespace of its own,
 * joined through a bridge by a veth pair shaped with `tc tbf`. Its names carry this process's pid and a sequence
 * number and its subnet is one no interface uses, so parallel runs never collide; it is removed at the end (and on
 * exit). Latency comes from the cluster's link proxies (src/cluster/links.ts: no netem in this kernel), in the root
 * namespace on the bridge. Skipped, with the reason, where namespaces cannot be made (not root, no iproute2).
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentClient } from '../src/agent/index.js';
import type { ChildAgent } from '../src/agent/spawn.js';
import { ClusterLinks, ClusterNetwork, netnsUnavailable, spawnNetnsAgents } from '../src/cluster/index.js';
import { FaultProxy } from '../src/faults/index.js';
import type { GuestConfig } from '../src/guest/index.js';
import { Command } from '../src/migration/protocol/index.js';
import { expectOracle, isAdvancing, MiB, waitFor } from './helpers.js';

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}

const reason = netnsUnavailable()?.message;
if (reason) console.warn(`netns tests skipped: ${reason}`);

describe.skipIf(reason !== undefined)('two hosts joined by shaped veth links', () => {
  let net: ClusterNetwork;
  let agents: ChildAgent[] = [];
  let release = (): void => {};
  let ca: AgentClient;
  let cb: AgentClient;
  /** Host B's agent: where A migrates to. */
  let b = '';
  const config: GuestConfig = {
    ramBytes: 32 * MiB,
    seed: 31,
    workload: { name: 'gap', params: { workingSetBytes: 24 * MiB, writeRate: 2000 } },
  };

  beforeAll(async () => {
    net = ClusterNetwork.create({ hosts: 2, rateBytesPerSec: 200e6 / 8 });
    ({ agents, release } = await spawnNetnsAgents(net, ['--quiet']));
    ca = new AgentClient(agents[0]!.address);
    cb = new AgentClient(agents[1]!.address);
    b = agents[1]!.address;
  });

  afterAll(async () => {
    ca?.close();
    cb?.close();
    await Promise.all(agents.map((a) => a.stop('SIGKILL')));
    release();
    net?.teardown();
    expect(net?.leftovers() ?? []).toEqual([]);
  });

  it('the hosts are namespaces of this run, on addresses of their own', () => {
    expect(net.hosts.map((h) => h.ns)).toEqual([
      expect.stringMatching(new RegExp(`^livemig-c${process.pid}-\\w+-h0$`)),
      expect.stringMatching(new RegExp(`^livemig-c${process.pid}-\\w+-h1$`)),
    ]);
    expect(agents.map((a) => a.address.split(':')[0])).toEqual(net.hosts.map((h) => h.ip));
  });

  it('migrates across the link at the rate tc allows, verified by the oracle', async () => {
    await ca.startGuest(config, 'n1');
    const m = await ca.migrate('n1', b, { maxBandwidth: 0 });
    const r = await ca.follow(m.id, undefined, 100);
    expect(r.status).toBe('completed');
    expect(r.verified).toBe(true);
    // 200 Mbit/s shaping: the link, not the engine, sets the pace (generous bound: shaping, not timing).
    expect(r.perRound[0]!.throughputMbps).toBeLessThan(260);
    await expectOracle(cb, 'n1', config);
    await cb.stopGuest('n1');
  });

  it('through the cluster’s link proxies on the bridge: the delay shows in the round trip and the downtime, the oracle passes', async () => {
    const DELAY = 20;
    const links = await ClusterLinks.start(
      agents.map((a) => a.address),
      net.managerIp,
      { delayMs: DELAY, jitterMs: 0, loss: 0 },
    );
    try {
      // A request to host B across its link: the delay both ways.
      const across = new AgentClient(links.address(1));
      const t0 = performance.now();
      await across.guests();
      expect(performance.now() - t0).toBeGreaterThanOrEqual(2 * DELAY);
      across.close();
      await ca.startGuest(config, 'n3');
      const m = await ca.migrate('n3', links.address(1), { maxBandwidth: 0 });
      const r = await ca.follow(m.id, undefined, 100);
      expect(r.status, JSON.stringify(r.error)).toBe('completed');
      // Lower bounds a loaded machine cannot break: the switch-over's round trip crossed the delayed link.
      expect(r.downtimeMs).toBeGreaterThanOrEqual(2 * DELAY);
      expect(r.totalTimeMs).toBeGreaterThanOrEqual(4 * DELAY);
      expect((await links.stats()).bytesForward).toBeGreaterThan(config.ramBytes / 2);
      await expectOracle(cb, 'n3', config);
      await cb.stopGuest('n3');
    } finally {
      await links.close();
    }
  });

  it('through the fault proxy on the bridge: a spike and a stall across the links slow the migration, the oracle passes', async () => {
    // The proxy listens in the root namespace on the bridge (where the cluster's link proxies listen) and relays to
    // host B over the shaped links.
    const proxy = await FaultProxy.start({ listen: `${net.managerIp}:0`, target: b, faults: { delayMs: 2 } });
    try {
      proxy.at({ atFrame: Command.PAGES, nth: 3 }, { kind: 'spike', ms: 300, forMs: 500 });
      proxy.at({ atFrame: Command.ROUND }, { kind: 'stall', ms: 1000 });
      await ca.startGuest(config, 'n0');
      const m = await ca.migrate('n0', proxy.address, { maxBandwidth: 0 });
      const r = await ca.follow(m.id, undefined, 100);
      expect(r.status).toBe('completed');
      expect(proxy.stats.events.map((e) => e.action)).toEqual(['spike', 'stall']);
      // The stall held everything for 1 s (a lower bound: load only adds).
      expect(r.totalTimeMs).toBeGreaterThanOrEqual(1000);
      await expectOracle(cb, 'n0', config);
      await cb.stopGuest('n0');
    } finally {
      await proxy.close();
    }
  });

  it('a link cut mid-round: the migration times out, the guest runs on the source, a retry after repair succeeds', async () => {
    // Host B's link, on the bridge side: A (and the test, in the root namespace) still reach A.
    const cut = net.hosts[1]!.link;
    await ca.startGuest(config, 'n2');
    const m = await ca.migrate('n2', b, { maxBandwidth: 0, timeoutMs: 4000 });
    await waitFor(async () => (await ca.migration(m.id)).transferredBytes > 2 * MiB, 20_000, 'round 1');
    ip('link', 'set', cut, 'down');
    try {
      const r = await ca.follow(m.id, undefined, 100);
      expect(r.status).toBe('failed');
      expect(r.error?.code).toBe('TIMEOUT');
      expect(await isAdvancing(ca, 'n2')).toBe(true);
    } finally {
      ip('link', 'set', cut, 'up');
    }
    await waitFor(
      async () => (await cb.guests().catch(() => undefined)) !== undefined,
      20_000,
      'the link back',
    );
    const m2 = await ca.migrate('n2', b, { maxBandwidth: 0 });
    const r2 = await ca.follow(m2.id, undefined, 100);
    // B still has the first, half-received copy (the source's FIN is lost with the link): the newer HELLO from
    // the same host supersedes it instead of waiting for B's idle timeout.
    expect(r2.status, JSON.stringify(r2.error)).toBe('completed');
    await expectOracle(cb, 'n2', config);
    await cb.stopGuest('n2');
  });
});
