/**
 * End to end, hot-last with XBZRLE (`--page-order hot-last --xbzrle`): hot pages sent once early, their resends held
 * for the stop-and-copy with their cached copies pinned. The destination must continue the guest exactly: the
 * switch-over digest and the determinism oracle (its RAM equals, byte for byte, a guest that never moved).
 */
import { describe, expect, it } from 'vitest';
import { shippedTracePath } from '../src/experiments/common.js';
import type { GuestConfig } from '../src/guest/index.js';
import { agentPairForFile, expectOracle, isAdvancing, MiB, sleep } from './helpers.js';

const agents = agentPairForFile();

describe('hot-last + XBZRLE', () => {
  it.each([
    ['a static cache', { cacheSizing: 'static' as const, xbzrleCacheBytes: 32 * MiB }],
    // A small dynamic cache resizes between rounds: pins must survive it or release their pages.
    [
      'a small dynamic cache',
      { cacheSizing: 'dynamic' as const, xbzrleCacheBytes: 2 * MiB, xbzrleCacheMaxBytes: 4 * MiB },
    ],
  ])(
    'holds hot pages and the destination continues the guest byte for byte (%s)',
    { timeout: 120_000 },
    async (_n, cache) => {
      const config: GuestConfig = {
        ramBytes: 32 * MiB,
        seed: 7,
        workload: { name: 'zipf', params: { workingSetBytes: 16 * MiB, writeRate: 20000 } },
      };
      const id = `hl-${cache.cacheSizing}`;
      await agents.a.client.startGuest(config, id);
      await sleep(300);
      // downtimeLimitMs 1: no early switch-over, so every round runs and hot pages are held.
      const started = await agents.a.client.migrate(id, agents.b.agent.address, {
        maxBandwidth: 32 * MiB,
        pageOrder: 'hot-last',
        xbzrle: true,
        ...cache,
        maxRounds: 6,
        downtimeLimitMs: 1,
      });
      const report = await agents.a.client.follow(started.id, undefined, 50);
      expect(report.error).toBeUndefined();
      expect(report.status).toBe('completed');
      expect(report.verified).toBe(true);
      expect(report.pageOrder).toBe('hot-last');
      expect(Math.max(...report.perRound.map((r) => r.heldPages))).toBeGreaterThan(0);
      expect(report.pages.xbzrle).toBeGreaterThan(0);
      // The pages still owed at the switch-over went in live passes before the pause: one last pass (final-pass.ts),
      // or several when the destination's SWITCHOVER_ACK kept the guest running longer (hot-last-passes.ts, which
      // then reports them together; its last pass may find nothing left to send).
      expect(
        report.events.some(
          (e) => e.includes('last pass before the pause') || e.includes('live passes before the pause'),
        ),
      ).toBe(true);
      // Right before the pause, what the guest wrote since the last pass went too, unacknowledged (the flush; its
      // event also says when nothing was owed); the stop-and-copy's event says what was left and what encoding it
      // cost while the guest was paused.
      const paused = report.events.findIndex((e) => e.endsWith(' guest paused'));
      const flush = report.events.findIndex((e) => e.includes('hot-last: flush right before the pause'));
      expect(flush).toBeGreaterThanOrEqual(0);
      expect(flush).toBeLessThan(paused);
      expect(report.events.some((e) => /stop-and-copy: \d+ pages \(\d+ owed/.test(e))).toBe(true);
      expect(await isAdvancing(agents.b.client, id)).toBe(true);
      await expectOracle(agents.b.client, id, config);
      await agents.b.client.stopGuest(id);
    },
  );

  it("a trace guest: the last pass comes after the destination's SWITCHOVER_ACK, not before the wait for it", {
    timeout: 120_000,
  }, async () => {
    // The destination loads the trace before its vCPU threads are up: the ACK comes late, and a pass made before
    // the wait for it left every page the guest wrote meanwhile for the stop-and-copy.
    const config: GuestConfig = {
      ramBytes: 64 * MiB,
      seed: 1,
      vcpus: 1,
      workload: { name: 'trace', params: { traceFile: shippedTracePath('redis') } },
    };
    const id = 'hl-trace';
    await agents.a.client.startGuest(config, id);
    await sleep(300);
    const started = await agents.a.client.migrate(id, agents.b.agent.address, {
      maxBandwidth: 32 * MiB,
      pageOrder: 'hot-last',
      xbzrle: true,
      xbzrleCacheBytes: 64 * MiB,
      maxRounds: 10,
    });
    const report = await agents.a.client.follow(started.id, undefined, 50);
    expect(report.error).toBeUndefined();
    expect(report.status).toBe('completed');
    expect(report.verified).toBe(true);
    const ack = report.events.findIndex((e) => e.includes('ready for switch-over (SWITCHOVER_ACK)'));
    const paused = report.events.findIndex((e) => e === 'guest paused' || e.endsWith(' guest paused'));
    expect(ack).toBeGreaterThanOrEqual(0);
    expect(paused).toBeGreaterThan(ack);
    // Every live pass of deltas came after the ACK or while waiting for it, none before the wait.
    expect(report.events.slice(0, ack).some((e) => e.includes('last pass before the pause'))).toBe(false);
    expect(report.stopCopyBytes).toBeGreaterThan(0);
    expect(await isAdvancing(agents.b.client, id)).toBe(true);
    await agents.b.client.stopGuest(id);
  });
});
