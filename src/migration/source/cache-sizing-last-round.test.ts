/**
 * Dynamic XBZRLE cache sizing resizes between rounds, never after the round that ends in the switch-over: the
 * stop-and-copy's last pages are encoded against the cached copies, and a shrink there dropped them, so they went
 * whole with the guest paused (engines experiment, dynamic cache, 30 ms limit: 156 pages, 496 KiB instead of ~50).
 */
import { describe, expect, it, vi } from 'vitest';
import { DestinationHarness, disposeAfterEach, sourceRun, testGuest } from '../testing/index.js';
import { XbzrleCacheSizing } from './cache-sizing.js';
import { runSource } from './index.js';

const track = disposeAfterEach(() => vi.restoreAllMocks());

const MiB = 1024 * 1024;

describe('dynamic cache sizing and the switch-over', () => {
  it('sizes after every live round but the last one', async () => {
    const afterRound = vi.spyOn(XbzrleCacheSizing.prototype, 'afterRound');
    const guest = await testGuest();
    guest.resume();
    const h = track(new DestinationHarness());
    const { conn, done } = h.connect();
    const r = await runSource(
      sourceRun(guest, conn, {
        xbzrle: true,
        cacheSizing: 'dynamic',
        xbzrleCacheMaxBytes: 4 * MiB,
        maxRounds: 3,
        downtimeLimitMs: 1,
      }),
    );
    await done;
    expect(r.status).toBe('completed');
    // One sizing decision per round that another round followed (before the fix, one per round). Usually 2-3
    // rounds; on a loaded host the guest may dirty nothing in round 1 and switch over after it: then no decision.
    expect(r.rounds).toBeGreaterThanOrEqual(1);
    expect(afterRound).toHaveBeenCalledTimes(r.rounds - 1);
  });
});
