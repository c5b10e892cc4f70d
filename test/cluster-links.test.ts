/**
 * `livemig cluster --link-delay/--link-jitter/--link-loss`: latency and loss between hosts, emulated by a fault proxy
 * in front of each host's migration port (this kernel has no netem). The flags are checked with clear errors; two
 * agents joined through the cluster's link setup still migrate and verify, and the delay shows where it must: the
 * round trip across the link and the migration's time and downtime are at least what the delay alone costs (lower
 * bounds only: a loaded machine can only add to them). Runs on the loopback, everywhere (the same proxies across
 * network namespaces: test/netns.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { AgentClient } from '../src/agent/index.js';
import { clusterOptionsFromFlags } from '../src/cli/cluster.js';
import {
  ClusterLinks,
  linkDelayBetween,
  parseClusterLink,
  parseLinkDelaySpec,
} from '../src/cluster/index.js';
import { UsageError } from '../src/errors.js';
import type { GuestConfig } from '../src/guest/index.js';
import { agentPairForFile, expectOracle, MiB, runCli } from './helpers.js';

describe('--link-delay, --link-jitter, --link-loss', () => {
  it('become the run’s link faults, with or without --netns', () => {
    expect(clusterOptionsFromFlags({ quick: true, linkDelay: '5ms', linkJitter: '1ms' }).link).toEqual({
      delayMs: 5,
      jitterMs: 1,
      loss: 0,
    });
    expect(clusterOptionsFromFlags({ quick: true, linkLoss: '0.001' }).link).toEqual({
      delayMs: 0,
      jitterMs: 0,
      loss: 0.001,
    });
    const o = clusterOptionsFromFlags({ quick: true, netns: true, linkDelay: '0.5s' });
    expect(o.link?.delayMs).toBe(500);
    expect(o.netns).toBeDefined();
    expect(clusterOptionsFromFlags({ quick: true }).link).toBeUndefined();
  });

  it.each([
    [{ linkDelay: '-1ms' }, /--link-delay: cannot read "-1ms" as a duration/],
    [{ linkDelay: '11s' }, /--link-delay: "11s" is out of range; use 0 to 10.00 s/],
    [{ linkDelay: '2ms', linkJitter: '3ms' }, /--link-jitter: use at most --link-delay/],
    [{ linkJitter: '1ms' }, /--link-jitter: varies --link-delay; add --link-delay/],
    [{ linkLoss: '0.7' }, /--link-loss: "0.7" is not a number from 0 to 0.5/],
    [{ linkLoss: '1%' }, /--link-loss: "1%" is not a number from 0 to 0.5/],
  ])('refuses %o with a usage error that names the flag', (flags, message) => {
    expect(() => clusterOptionsFromFlags({ quick: true, ...flags })).toThrow(message);
    expect(() => clusterOptionsFromFlags({ quick: true, ...flags })).toThrow(UsageError);
  });

  it('a per-pair spec: a default and pairs with a delay of their own, symmetric', () => {
    const o = clusterOptionsFromFlags({ quick: true, linkDelay: '1ms,0-3=20ms,2-1=8ms', linkJitter: '1ms' });
    expect(o.link).toEqual({
      delayMs: 1,
      jitterMs: 1,
      loss: 0,
      pairs: [
        { a: 0, b: 3, delayMs: 20 },
        { a: 2, b: 1, delayMs: 8 },
      ],
    });
    expect(linkDelayBetween(o.link!, 3, 0)).toBe(20);
    expect(linkDelayBetween(o.link!, 1, 2)).toBe(8);
    expect(linkDelayBetween(o.link!, 0, 1)).toBe(1);
    // Pairs only: every other pair has none.
    expect(parseLinkDelaySpec('0-1=5ms', 4, () => 5)).toEqual({
      delayMs: 0,
      pairs: [{ a: 0, b: 1, delayMs: 5 }],
    });
  });

  it.each([
    [{ linkDelay: '0-9=5ms' }, /--link-delay: "0-9=5ms": no host 9 \(hosts are 0 to 3\)/],
    [{ linkDelay: '0-0=5ms' }, /--link-delay: a pair is two different hosts/],
    [{ linkDelay: '0-1=5ms,1-0=6ms' }, /--link-delay: each pair at most once/],
    [{ linkDelay: '0-1=5ms,2ms' }, /--link-delay: "2ms" is not A-B=DURATION/],
    [{ linkDelay: '0-1=fast' }, /--link-delay: cannot read "fast" as a duration/],
    [
      { linkDelay: '5ms,0-1=1ms', linkJitter: '2ms' },
      /--link-jitter: use at most --link-delay, on every pair/,
    ],
  ])('refuses the per-pair spec %o, naming the flag', (flags, message) => {
    expect(() => clusterOptionsFromFlags({ quick: true, ...flags })).toThrow(message);
    expect(() => clusterOptionsFromFlags({ quick: true, ...flags })).toThrow(UsageError);
  });

  it('library callers get the same checks (the zod schema), naming the flag', () => {
    expect(() => parseClusterLink({ delayMs: 1, jitterMs: 0, loss: -0.1 })).toThrow(
      /--link-loss: use a fraction from 0 to 0.5/,
    );
    expect(() => parseClusterLink({ delayMs: 1, jitterMs: 0, loss: 0, rtoMs: 5 })).toThrow(UsageError);
  });

  it('the CLI refuses a bad value with exit code 2 and one line, no stack trace', () => {
    const r = runCli(['cluster', '--quick', '--link-loss', '2']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--link-loss: "2" is not a number from 0 to 0.5/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('two agents joined through the cluster’s link proxies', () => {
  const pair = agentPairForFile();
  const DELAY = 60;
  const config: GuestConfig = {
    ramBytes: 16 * MiB,
    seed: 21,
    workload: { name: 'gap', params: { workingSetBytes: 12 * MiB, writeRate: 1000 } },
  };

  it('a delayed link: the round trip and the migration take at least what the delay costs; the guest verifies', async () => {
    const { a, b } = pair;
    const links = await ClusterLinks.start(
      [a.agent.address, b.agent.address],
      '127.0.0.1',
      { delayMs: DELAY, jitterMs: 10, loss: 0 },
      7,
    );
    try {
      // A request across host b's link: one way there, one way back.
      const across = new AgentClient(links.address(1));
      const t0 = performance.now();
      await across.status();
      expect(performance.now() - t0).toBeGreaterThanOrEqual(2 * (DELAY - 10));
      across.close();

      await a.client.startGuest(config, 'l0');
      const m = await a.client.migrate('l0', links.address(1), { maxBandwidth: 0 });
      const r = await a.client.waitMigration(m.id);
      expect(r.status, JSON.stringify(r.error)).toBe('completed');
      expect(r.verified).toBe(true);
      await expectOracle(b.client, 'l0', config);
      await b.client.stopGuest('l0');
      // It went through the proxy: the guest's RAM crossed it.
      const s = await links.stats();
      expect(s.connections).toBeGreaterThanOrEqual(2); // the status request and the migration
      expect(s.bytesForward).toBeGreaterThan(config.ramBytes / 2);
      // What the emulation adds on top of the delay is measured (the thread's lateness), and where the process may
      // (root), the proxies' thread runs above the guests and agents, as a link does not queue behind them.
      expect(s.lateMsMean).toBeGreaterThanOrEqual(0);
      expect(s.lateMsMax).toBeGreaterThanOrEqual(s.lateMsMean);
      expect([-10, null]).toContain(s.nice);
      // Sequential round trips that every pre-copy migration makes (HELLO → HELLO_ACK, SWITCHOVER → READY,
      // GO → RESUMED): at least two of them in its time, and the switch-over's in its downtime.
      const rtt = 2 * (DELAY - 10);
      console.info(
        `link ${DELAY} ± 10 ms: migration ${r.totalTimeMs.toFixed(0)} ms, downtime ${r.downtimeMs.toFixed(1)} ms`,
      );
      expect(r.totalTimeMs).toBeGreaterThanOrEqual(2 * rtt);
      expect(r.downtimeMs).toBeGreaterThanOrEqual(rtt);
    } finally {
      await links.close();
    }
  }, 120_000);
});

describe('a per-pair delay', () => {
  const pair = agentPairForFile();

  it('a pair with a delay of its own has its own proxy; other sources reach the host with the default', async () => {
    const { a, b } = pair;
    const links = await ClusterLinks.start(
      [a.agent.address, b.agent.address],
      '127.0.0.1',
      { delayMs: 0, jitterMs: 0, loss: 0, pairs: [{ a: 0, b: 1, delayMs: 60 }] },
      3,
    );
    try {
      expect(links.address(1, 0)).not.toBe(links.address(1));
      expect(links.address(0, 1)).not.toBe(links.address(0));
      // From host 0 to host 1: the pair's 60 ms each way (a lower bound: load only adds).
      const across = new AgentClient(links.address(1, 0));
      const t0 = performance.now();
      await across.status();
      expect(performance.now() - t0).toBeGreaterThanOrEqual(120);
      across.close();
      await expect(() =>
        ClusterLinks.start([a.agent.address], '127.0.0.1', {
          delayMs: 0,
          jitterMs: 0,
          loss: 0,
          pairs: [{ a: 0, b: 1, delayMs: 5 }],
        }),
      ).rejects.toThrow(/--link-delay: pair 0-1: no host 1/);
    } finally {
      await links.close();
    }
  }, 60_000);
});

// A whole cluster run through the proxies (every migration across one, verified, the delay in its downtime) is
// test/cluster-netns.test.ts's tiny cluster with delayed links: one cluster run in the default suite, not two.
