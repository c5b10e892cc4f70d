/**
 * The real source and the real destination in one process, over an in-memory link (testing/link-pair.ts): whole
 * migrations in milliseconds, checked byte for byte by the determinism oracle — the migrated guest, paused at any
 * step, equals its source run on to the same step.
 */
import { describe, expect, it } from 'vitest';
import { ramEquals } from '../guest/oracle.js';
import type { MigrationOptions } from './options.js';
import { runSource } from './source/index.js';
import { DestinationHarness, disposeAfterEach, sourceRun, testGuest } from './testing/index.js';

const track = disposeAfterEach();

describe('real source → real destination over an in-memory link', () => {
  it.each<[string, Partial<MigrationOptions>]>([
    ['pre-copy', {}],
    [
      'pre-copy, XBZRLE, zstd, hot-last, full verify',
      {
        xbzrle: true,
        xbzrleCacheBytes: 1 << 20,
        compress: 'zstd',
        pageOrder: 'hot-last',
        verify: 'full',
      },
    ],
    // The destination warms its page apply on a scratch page as rounds end (paused-apply-warm.ts): the ledger and
    // RAM must come out untouched by it.
    [
      'pre-copy, XBZRLE, hot-last, ledger verify',
      { xbzrle: true, xbzrleCacheBytes: 1 << 20, pageOrder: 'hot-last' },
    ],
    ['pre-copy, lz4', { compress: 'lz4' }],
    ['pre-copy, deflate', { compress: 'deflate' }],
    ['pre-copy, RLE', { compress: 'rle' }],
    ['cold', { strategy: 'cold' }],
    ['post-copy', { strategy: 'postcopy' }],
  ])('%s: completed, verified, the guest resumed once there, byte for byte', async (_name, options) => {
    const guest = await testGuest();
    guest.resume();
    const h = track(new DestinationHarness());
    const { conn, done } = h.connect();
    const report = await runSource(sourceRun(guest, conn, options));
    const m = await done;
    expect(report.error).toBeUndefined();
    expect(report.status).toBe('completed');
    expect(report.verified).toBe(true);
    expect(m?.phase).toBe('done');
    expect(h.resumed).toHaveLength(1);
    expect(guest.running).toBe(false);
    const moved = h.resumed[0]!;
    await moved.pause();
    await guest.runToStep(moved.steps());
    expect(ramEquals(moved.ram, guest.ram)).toEqual({ equal: true, firstDifferentPage: -1 });
    expect(moved.state()).toEqual(guest.state());
  });
});
