/**
 * `GET /v1/status` lists each kept migration as a summary, so it stays small however many the agent keeps
 * (--history, 100 by default). It used to repeat each whole report but its rounds and events: 2 KB for a migration
 * that failed at once, more the longer one ran (its power series), sent once a second to every dashboard. The
 * report is at GET /v1/migrations/ID.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MigrationReport } from '../migration/stats.js';
import { type Agent, startAgent } from './agent.js';
import { AgentClient } from './client.js';

const KEPT = 100;
let agent: Agent;
let client: AgentClient;
const ended: MigrationReport[] = [];

beforeAll(async () => {
  // Two requests a migration, every one on a connection of its own: past the default 100-connection burst.
  const limits = { connectRate: 10_000, connectBurst: 10_000 };
  agent = await startAgent({ host: '127.0.0.1', port: 0, limits });
  client = new AgentClient(agent.address);
  await client.startGuest({ ramBytes: 1 << 20, workload: { name: 'idle' } }, 'g1');
  // Nothing listens on port 1: each migration fails at once (CONNECTION_REFUSED) and the guest stays here.
  for (let i = 0; i < KEPT; i++) {
    const r = await client.migrate('g1', '127.0.0.1:1');
    ended.push(await client.waitMigration(r.id));
  }
}, 120_000);
afterAll(() => agent?.close());

async function get(path: string): Promise<{ bytes: number; json: unknown }> {
  const text = await (await fetch(`http://${agent.address}${path}`)).text();
  return { bytes: Buffer.byteLength(text), json: JSON.parse(text) };
}

describe('GET /v1/status with many kept migrations', () => {
  it('lists every kept migration as a summary of a few hundred bytes', async () => {
    expect(ended.every((r) => r.status === 'failed' && r.error?.code === 'CONNECTION_REFUSED')).toBe(true);
    const status = await get('/v1/status');
    const outgoing = (status.json as { outgoing: Record<string, unknown>[] }).outgoing;
    expect(outgoing.map((m) => m.id).sort()).toEqual(ended.map((r) => r.id).sort());
    for (const m of outgoing) {
      expect(Buffer.byteLength(JSON.stringify(m))).toBeLessThan(1024);
      expect(m).not.toHaveProperty('energy');
      expect(m).not.toHaveProperty('perRound');
      expect(m).not.toHaveProperty('events');
      expect(m).toMatchObject({ guestId: 'g1', status: 'failed', error: { code: 'CONNECTION_REFUSED' } });
    }
    // What a full report per migration weighed here (without rounds and events, as the status used to list it).
    const before = ended.reduce(
      (n, { perRound: _p, events: _e, ...rest }) => n + JSON.stringify(rest).length,
      0,
    );
    expect(status.bytes).toBeLessThan(KEPT * 1024);
    expect(status.bytes).toBeLessThan(before / 2);
    // The client reads the same list, checked.
    const answer = await client.status();
    expect(answer.outgoing).toHaveLength(KEPT);
    expect(await client.migrations()).toEqual(answer.outgoing);
  });

  it('leaves the full report to GET /v1/migrations/ID', async () => {
    const last = ended.at(-1)!;
    const full = (await get(`/v1/migrations/${last.id}`)).json as MigrationReport;
    expect(full).toMatchObject({ id: last.id, status: 'failed', error: { code: 'CONNECTION_REFUSED' } });
    expect(full.perRound).toEqual(expect.any(Array));
    expect(full.events).toEqual(expect.any(Array));
    expect(full.energy?.series?.length).toBeGreaterThan(0);
    expect(full.xbzrle).toBeDefined();
    expect(await client.migration(last.id)).toEqual(full);
    // Each summary's fields are the report's own.
    const summary = (await client.status()).outgoing.find((m) => m.id === last.id)!;
    expect(full).toMatchObject(summary);
  });
});
