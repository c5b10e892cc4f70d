/**
 * The destination agent's warm page-sink thread (docs/migration.md, "Setup time"): each migration into an agent finds
 * a thread already started (at agent start, then after the previous migration), a cancelled migration leaves the
 * next one a thread too, threads that served a migration stop, and a stopped agent leaves no thread behind.
 */
import { describe, expect, it } from 'vitest';
import type { GuestConfig } from '../src/guest/index.js';
import { agentPairForFile, expectOracle, isAdvancing, localAgent, MiB, waitFor } from './helpers.js';

const agents = agentPairForFile();

const zipf = (seed: number): GuestConfig => ({
  ramBytes: 16 * MiB,
  seed,
  workload: { name: 'zipf', params: { workingSetBytes: 12 * MiB, writeRate: 3000 } },
});

/** The destination has a spare sink thread again (started just after the previous migration ended). */
const sinkReady = () =>
  waitFor(async () => agents.b.agent.pageSinks.ready, 10_000, 'a spare page-sink thread');

describe('warm page-sink thread', () => {
  it('two migrations in a row into one agent both verify, each on a thread started before it', async () => {
    expect(agents.b.agent.pageSinks.started).toBe(1);
    expect(agents.b.agent.pageSinks.ready).toBe(true);
    const taken = agents.b.agent.pageSinks.taken;
    for (const [i, options] of [{ xbzrle: true }, { compress: 'zstd' as const }].entries()) {
      const id = `warm${i}`;
      const config = zipf(20 + i);
      await agents.a.client.startGuest(config, id);
      const started = await agents.a.client.migrate(id, agents.b.agent.address, {
        maxBandwidth: 0,
        ...options,
      });
      const report = await agents.a.client.follow(started.id, undefined, 50);
      expect(report.error).toBeUndefined();
      expect(report.status).toBe('completed');
      expect(report.verified).toBe(true);
      expect(await isAdvancing(agents.b.client, id)).toBe(true);
      await expectOracle(agents.b.client, id, config);
      await agents.b.client.stopGuest(id);
      await sinkReady();
    }
    expect(agents.b.agent.pageSinks.taken).toBe(taken + 2);
    expect(agents.b.agent.pageSinks.startedOnDemand).toBe(0);
    expect(agents.b.agent.pageSinks.started).toBe(3); // one at start, one after each migration
    // Only the spare is left: the threads that served a migration stopped with it.
    await waitFor(
      async () => agents.b.agent.pageSinks.liveThreads === 1,
      10_000,
      'used sink threads to stop',
    );
  });

  it('a cancelled migration discards what it received and the next one still finds a started thread', async () => {
    const taken = agents.b.agent.pageSinks.taken;
    const config = zipf(30);
    await agents.a.client.startGuest(config, 'cut');
    // Slow enough to be cancelled in round 1, while pages stream into the sink.
    const started = await agents.a.client.migrate('cut', agents.b.agent.address, { maxBandwidth: 4 * MiB });
    await waitFor(
      async () => (await agents.a.client.migration(started.id)).transferredBytes > 2 * MiB,
      20_000,
      'pages to flow',
    );
    await agents.a.client.cancel(started.id);
    const cut = await agents.a.client.follow(started.id, undefined, 50);
    expect(cut.status).toBe('cancelled');
    await expect(agents.b.client.guest('cut')).rejects.toThrow(/no guest/);
    expect(await isAdvancing(agents.a.client, 'cut')).toBe(true);
    await sinkReady();
    const again = await agents.a.client.migrate('cut', agents.b.agent.address, { maxBandwidth: 0 });
    const report = await agents.a.client.follow(again.id, undefined, 50);
    expect(report.status).toBe('completed');
    expect(report.verified).toBe(true);
    await expectOracle(agents.b.client, 'cut', config);
    await agents.b.client.stopGuest('cut');
    await sinkReady();
    expect(agents.b.agent.pageSinks.taken).toBe(taken + 2);
    expect(agents.b.agent.pageSinks.startedOnDemand).toBe(0);
  });

  it('a stopped agent leaves no page-sink thread', async () => {
    const c = await localAgent();
    expect(c.agent.pageSinks.liveThreads).toBe(1);
    await c.agent.close();
    expect(c.agent.pageSinks.liveThreads).toBe(0);
    expect(c.agent.pageSinks.ready).toBe(false);
  });
});
