/**
 * `livemig profile` end to end: a guest run in this process and a guest running on an agent (through
 * POST /v1/guests/:id/dirty-log), each profiled briefly; the answers are checked for what cannot depend on timing.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { GuestConfig } from '../src/guest/index.js';
import { type GuestProfile, profileAgentGuest, profileGuest, profileSchema } from '../src/profile/index.js';
import { localAgent, MiB, runCli } from './helpers.js';

const config: GuestConfig = {
  ramBytes: 16 * MiB,
  workload: { name: 'gap', params: { workingSetBytes: 4 * MiB, writeRate: 2000 } },
};
const wsPages = 1024;

function checkShape(p: GuestProfile): void {
  expect(profileSchema.parse(p)).toEqual(p);
  expect(p.ramPages).toBe(4096);
  for (let i = 1; i < p.workingSet.length; i++) {
    expect(p.workingSet[i]!.ms).toBeGreaterThan(p.workingSet[i - 1]!.ms);
    // A longer window holds every page a shorter one does, on average too.
    expect(p.workingSet[i]!.pages).toBeGreaterThanOrEqual(p.workingSet[i - 1]!.pages - 1e-9);
  }
  // gap writes only inside its working set.
  expect(p.pagesWritten).toBeLessThanOrEqual(wsPages);
  expect(p.workingSet.at(-1)!.pages).toBeLessThanOrEqual(wsPages);
}

describe('livemig profile', () => {
  it('profiles a guest run here: W(t), zero pages, XBZRLE deltas', async () => {
    const p = await profileGuest(config, { durationMs: 600, tickMs: 5, warmupMs: 50 });
    checkShape(p);
    // The working set is filled at init and the rest of RAM is never written: 3/4 of RAM is zero.
    expect(p.zeroFraction).toBeCloseTo(0.75, 2);
    expect(p.zeroFractionStart).toBeCloseTo(0.75, 2);
    for (const x of p.xbzrle) expect(x.unchanged + x.overflow).toBeLessThanOrEqual(1);
    // Every region of the working set is in the XBZRLE sample (not just the pages seen twice): the 100 ms lag sees
    // about a tenth of the ~1000 pages dirtied that long, out of the 1024-page sample, each watch cycle.
    expect(p.xbzrle.find((x) => x.lagMs === 100)?.pages).toBeGreaterThan(20);
    // The cache's hit rate on the guest's own pages: a cache with a slot for every non-zero page keeps nearly all.
    const roomy = p.cacheHit!.find((c) => c.ways === 2 && c.sets * 2 >= 2 * wsPages);
    expect(roomy!.hit).toBeGreaterThan(0.95);
    expect(p.carriedBytes).toBeUndefined(); // no trace to carry
  }, 60_000);

  it('profiles a guest running on an agent by syncing its dirty log only', async () => {
    const { agent, client } = await localAgent();
    try {
      await client.startGuest(config, 'g1', true);
      const p = await profileAgentGuest(client, 'g1', { durationMs: 600, tickMs: 5 });
      checkShape(p);
      expect(p.source).toMatchObject({ guest: 'g1' });
      expect(p.zeroFraction).toBeNull();
      expect(p.xbzrle).toEqual([]);
      expect(p.cacheHit).toBeUndefined();
      // The guest kept running: no pause.
      expect((await client.guest('g1')).status).toBe('running');
      await expect(client.dirtyLog('nope')).rejects.toThrow(/no guest named nope/);
    } finally {
      client.close();
      await agent.close();
    }
  }, 60_000);

  it('livemig profile --out FILE, then livemig predict --profile FILE --json', () => {
    const dir = mkdtempSync(join(tmpdir(), 'livemig-profile-'));
    const file = join(dir, 'idle.json');
    const made = runCli([
      'profile',
      '--workload',
      'idle',
      '--ram',
      '16MiB',
      '--duration',
      '300ms',
      '--out',
      file,
    ]);
    expect(made.code).toBe(0);
    expect(made.stdout).toMatch(/W\(t\)/);
    const saved = profileSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
    expect(saved.ramPages).toBe(4096);
    const r = runCli(['predict', '--profile', file, '--max-bandwidth', '32MiB', '--xbzrle', '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      prediction: { rounds: number; bytes: number };
      input: { bandwidth: number };
    };
    expect(out.input.bandwidth).toBe(32 * MiB);
    expect(out.prediction.rounds).toBeGreaterThanOrEqual(1);
    // idle fills 64 KiB: round 1 sends those pages, not the zero ones.
    expect(out.prediction.bytes).toBeLessThan(1 * MiB);
  }, 240_000);

  it('the CLI refuses --agent without --guest, naming the flags', () => {
    const r = runCli(['profile', '--agent', '127.0.0.1:1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--agent and --guest together/);
  }, 120_000);
});
