/**
 * Cancel, --timeout and SIGTERM end a migration promptly whatever it waits on — here a rate limiter that would let
 * the next frame go in days (--max-bandwidth 1) — with the guest running on the source; and a cancel that comes
 * after GO answers the truth (409 TOO_LATE) instead of a 202 that changes nothing. Bounds are generous (a loaded
 * machine must not fail them): before these fixes the migrations below never ended at all.
 */
import { describe, expect, it } from 'vitest';
import { AgentClient } from '../src/agent/index.js';
import { spawnAgent } from '../src/agent/spawn.js';
import { FaultProxy } from '../src/faults/index.js';
import type { GuestConfig } from '../src/guest/index.js';
import { Command } from '../src/migration/protocol/index.js';
import { agentPairForFile, expectOracle, isAdvancing, MiB, sleep, waitFor } from './helpers.js';

const config: GuestConfig = {
  ramBytes: 8 * MiB,
  seed: 77,
  workload: { name: 'gap', params: { workingSetBytes: 4 * MiB, writeRate: 2000 } },
};

const pair = agentPairForFile();

async function nothingOn(client: AgentClient, id: string): Promise<boolean> {
  return (await client.guests()).every((g) => g.id !== id);
}

describe('prompt stop', () => {
  it('--max-bandwidth 1 with --timeout 2s: TIMEOUT within seconds, the guest running on the source', async () => {
    const { a, b } = pair;
    await a.client.startGuest(config, 'slow1');
    const t0 = Date.now();
    const m = await a.client.migrate('slow1', b.agent.address, { maxBandwidth: 1, timeoutMs: 2000 });
    const r = await a.client.follow(m.id, undefined, 50);
    const ms = Date.now() - t0;
    expect(r.status).toBe('failed');
    expect(r.error?.code).toBe('TIMEOUT');
    // 2 s plus a round trip, with room for a loaded machine; before the fix: never (the next frame was due in days).
    expect(ms).toBeLessThan(15_000);
    expect(await isAdvancing(a.client, 'slow1')).toBe(true);
    await waitFor(async () => nothingOn(b.client, 'slow1'), 10_000, 'the destination to discard');
    await expectOracle(a.client, 'slow1', config);
    await a.client.stopGuest('slow1');
  });

  it('cancel in a rate-limited round: 202, then CANCELLED at once, the guest running on the source', async () => {
    const { a, b } = pair;
    await a.client.startGuest(config, 'slow2');
    const m = await a.client.migrate('slow2', b.agent.address, { maxBandwidth: 1 });
    // In round 1, asleep in the rate limiter: the first frame went with the burst, the next waits.
    await waitFor(async () => (await a.client.migration(m.id)).status === 'active', 20_000, 'round 1');
    await sleep(500);
    const t0 = Date.now();
    const answer = await a.client.cancel(m.id);
    expect(answer.id).toBe(m.id);
    const r = await a.client.follow(m.id, undefined, 50);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(r.status).toBe('cancelled');
    expect(r.error?.code).toBe('CANCELLED');
    expect(await isAdvancing(a.client, 'slow2')).toBe(true);
    await waitFor(async () => nothingOn(b.client, 'slow2'), 10_000, 'the destination to discard');
    await expectOracle(a.client, 'slow2', config);
    await a.client.stopGuest('slow2');
  });

  it('cancel while GO is on its way: 409 TOO_LATE, and the migration completes on the destination', async () => {
    expect.assertions(6);
    const { a, b } = pair;
    await a.client.startGuest(config, 'late1');
    const proxy = await FaultProxy.start({ target: b.agent.address });
    let id = '';
    // The proxy holds GO until the cancel has been answered: the source has handed the guest over by then.
    proxy.at(
      { atFrame: Command.GO },
      {
        kind: 'call',
        fn: async () => {
          await expect(a.client.cancel(id)).rejects.toMatchObject({ code: 'TOO_LATE' });
        },
      },
    );
    try {
      const m = await a.client.migrate('late1', proxy.address, { maxBandwidth: 0 });
      id = m.id;
      const r = await a.client.follow(m.id, undefined, 50);
      expect(r.status).toBe('completed');
      expect(await nothingOn(a.client, 'late1')).toBe(true);
      expect(await isAdvancing(b.client, 'late1')).toBe(true);
      // A finished migration cannot be cancelled either: HTTP 409, and the answer says how it ended.
      const res = await fetch(`http://${a.agent.address}/v1/migrations/${m.id}/cancel`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
      });
      expect([res.status, ((await res.json()) as { error: { message: string } }).error.message]).toEqual([
        409,
        `too late: migration ${m.id} already ended (completed)`,
      ]);
      await expectOracle(b.client, 'late1', config);
      await b.client.stopGuest('late1');
    } finally {
      await proxy.close();
    }
    expect(proxy.stats.events).toHaveLength(1);
  });
});

describe('SIGTERM', () => {
  it('stops an agent mid-migration at once, the migration cancelled and each guest’s fate logged', async () => {
    const src = await spawnAgent('127.0.0.1'); // not --quiet: the log is what is checked
    const dst = await spawnAgent('127.0.0.1', ['--quiet']);
    try {
      const cs = new AgentClient(src.address);
      const cd = new AgentClient(dst.address);
      await cs.startGuest(config, 'term1');
      await cs.startGuest(config, 'stay1');
      const m = await cs.migrate('term1', dst.address, { maxBandwidth: 1 });
      await waitFor(async () => (await cs.migration(m.id)).status === 'active', 20_000, 'round 1');
      await sleep(500);
      const exited = new Promise<number | null>((resolve) =>
        src.process.once('exit', (code) => resolve(code)),
      );
      const t0 = Date.now();
      src.process.kill('SIGTERM');
      const code = await exited;
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(code).toBe(0);
      const log = src.log.join('\n');
      expect(log).toContain('SIGTERM: stopping');
      expect(log).toMatch(/migration [0-9a-f]{32}: cancelled CANCELLED/);
      expect(log).toContain('shutdown: guest term1 was running here');
      expect(log).toContain('shutdown: guest stay1 was running here');
      // The destination dropped what it had received: the guest never ran there.
      await waitFor(async () => nothingOn(cd, 'term1'), 10_000, 'the destination to discard');
    } finally {
      await Promise.all([src.stop('SIGKILL'), dst.stop('SIGKILL')]);
    }
  });
});
