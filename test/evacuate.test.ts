/**
 * Host evacuation end to end: three in-process agents; the source's guests (a mix of cold and hot workloads) all
 * move, each verified, none left behind or duplicated; the API refuses bad requests and needs the token.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planEvacuation } from '../src/agent/evacuate.js';
import { newApiToken, startAgent } from '../src/agent/index.js';
import { type LocalAgent, localAgent, MiB } from './helpers.js';

describe('planEvacuation (smart order)', () => {
  const cands = [
    { id: 'big-hot', ramBytes: 256 * MiB, workingSetBytes: 256 * MiB, dirtyBytesPerSec: 400 * MiB },
    { id: 'small', ramBytes: 16 * MiB, workingSetBytes: 1 * MiB, dirtyBytesPerSec: 0 },
    { id: 'mid', ramBytes: 64 * MiB, workingSetBytes: 8 * MiB, dirtyBytesPerSec: 1 * MiB },
  ];
  it('runs small cold guests first, gives the hot one post-copy, spreads RAM over destinations', () => {
    const plan = planEvacuation(cands, { to: ['a:1', 'b:2'], maxParallel: 2, order: 'smart', options: {} });
    expect(plan.map((m) => m.guest)).toEqual(['small', 'mid', 'big-hot']);
    expect(plan[2]!.heat).toBe('hot');
    expect(plan[2]!.options.strategy).toBe('postcopy');
    expect(plan[0]!.destination).toBe('a:1');
    expect(plan[1]!.destination).toBe('b:2');
  });
  it('keeps id order and the caller options for the naive orders', () => {
    const plan = planEvacuation(cands, {
      to: ['a:1'],
      maxParallel: 1,
      order: 'id',
      options: { xbzrle: false },
    });
    expect(plan.map((m) => m.guest)).toEqual(['big-hot', 'mid', 'small']);
    for (const m of plan) expect(m.options).toEqual({ xbzrle: false });
  });
});

describe('livemig evacuate (POST /v1/evacuate)', () => {
  let src: LocalAgent;
  let d1: LocalAgent;
  let d2: LocalAgent;
  beforeAll(async () => {
    [src, d1, d2] = await Promise.all([localAgent(), localAgent(), localAgent()]);
  });
  afterAll(async () => {
    await Promise.all([src?.agent.close(), d1?.agent.close(), d2?.agent.close()]);
  });

  it('moves every guest off the host, each verified, none lost or duplicated', async () => {
    const workloads = ['idle', 'twolf', 'zipf', 'kv'] as const;
    const ids: string[] = [];
    for (const [i, w] of workloads.entries()) {
      const g = await src.client.startGuest(
        {
          ramBytes: (8 + 8 * i) * MiB,
          workload: { name: w, params: { writeRate: w === 'idle' ? 10 : 2000 } },
        },
        `g${i}`,
      );
      ids.push(g.id);
    }
    const r = await src.client.evacuate({
      to: [d1.agent.address, d2.agent.address],
      maxParallel: 2,
      order: 'smart',
      options: { maxBandwidth: 256 * MiB },
    });
    expect(r.guests).toBe(4);
    expect(r.completed).toBe(4);
    expect(r.moves.every((m) => m.verified)).toBe(true);
    expect(r.downtimeMaxMs).toBeGreaterThanOrEqual(0);
    expect(r.bytes).toBeGreaterThan(0);
    expect(await src.client.guests()).toEqual([]);
    const held = [...(await d1.client.guests()), ...(await d2.client.guests())].map((g) => g.id).sort();
    expect(held).toEqual([...ids].sort());
    // Both destinations got some (RAM spread greedily).
    expect((await d1.client.guests()).length).toBeGreaterThan(0);
    expect((await d2.client.guests()).length).toBeGreaterThan(0);
  }, 180_000);

  it('needs the API token like every other command', async () => {
    const token = newApiToken();
    const guarded = await startAgent({ host: '127.0.0.1', port: 0, apiToken: token });
    try {
      const res = await fetch(`http://${guarded.address}/v1/evacuate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ to: ['127.0.0.1:1'] }),
      });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('AUTH_FAILED');
    } finally {
      await guarded.close();
    }
  });

  it('refuses a request without destinations, naming the field', async () => {
    await expect(src.client.evacuate({ to: [] })).rejects.toThrow(/to: at least one destination/);
  });
});
