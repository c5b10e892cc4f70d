/**
 * Round 1 sends the pages the dirty log knows were never written as zero pages without reading them (no page fault
 * on never-touched RAM). A byte planted behind the guest's back — with no dirty bit, which no vCPU write can do —
 * shows whether a page was read: sent means read.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DirtyLog, type Guest, GuestRam } from '../../guest/index.js';
import { emptyReport } from '../stats.js';
import { DestinationHarness, destroyTestGuests, sourceRun, testGuest } from '../testing/index.js';
import { runSource } from './index.js';
import { allPages, withoutNeverWritten } from './send-pages.js';

const harnesses: DestinationHarness[] = [];
afterEach(async () => {
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
  await destroyTestGuests();
});

/** A page of the 4 MiB test guest outside its 1 MiB working set, never written by its vCPU. */
const UNTOUCHED = 900;

function plant(guest: Guest): void {
  const ram = guest.ram;
  const b = Math.floor(UNTOUCHED / ram.pagesPerBlock);
  const block = ram.blocks[b]!;
  new Uint8Array(block.buffer, (UNTOUCHED - block.firstPage) * ram.pageSize, ram.pageSize)[17] = 7;
}

async function migrate(guest: Guest, verify: 'ledger' | 'full') {
  const h = new DestinationHarness();
  harnesses.push(h);
  const { conn, done } = h.connect();
  const report = await runSource(sourceRun(guest, conn, { verify }));
  await done.catch(() => undefined);
  return { report, h };
}

describe('round 1 and the pages never written', () => {
  it('sends them as zero pages without reading them; the ledger digest agrees', async () => {
    const guest = await testGuest();
    expect(guest.dirtyLog.neverWritten(UNTOUCHED & ~31, 32)).toBe(true);
    plant(guest);
    const { report, h } = await migrate(guest, 'ledger');
    expect(report.status).toBe('completed');
    expect(report.verified).toBe(true);
    // Not read: the planted byte did not travel.
    expect(h.resumed[0]!.ram.isZeroPage(UNTOUCHED)).toBe(true);
  });

  it('full verification, which reads every page while paused, still catches a page the record got wrong', async () => {
    const guest = await testGuest();
    plant(guest);
    const { report } = await migrate(guest, 'full');
    expect(report.status).not.toBe('completed');
    expect(report.error?.code).toBe('DIGEST_MISMATCH');
  });
});

describe('withoutNeverWritten (multifd: round 1 filtered on the main thread before the channels read RAM)', () => {
  it('drops exactly the aligned runs never written, counting them as zero pages', () => {
    const ram = new GuestRam({ ramBytes: 256 * 4096, pageSize: 4096, blockBytes: 64 * 4096 });
    const dirtyLog = new DirtyLog(ram);
    const r = emptyReport({
      id: 'm',
      guestId: 'g',
      strategy: 'precopy',
      source: 'a',
      destination: 'b',
      verify: 'ledger',
      ramBytes: ram.bytes,
      pageSize: ram.pageSize,
      downtimeLimitMs: 300,
      xbzrle: false,
      xbzrleCacheBytes: 0,
      cacheWays: 1,
      cacheSizing: 'static',
      pageOrder: 'address',
      compress: 'none',
      maxBandwidth: 0,
    });
    const s = { guest: { dirtyLog } as unknown as Guest, r };
    // No record: nothing is dropped.
    expect(withoutNeverWritten(s, allPages(256), 32).length).toBe(256);
    dirtyLog.trackWritesFromZero();
    const bitmap = new Int32Array(dirtyLog.buffers.bitmaps[1]!);
    Atomics.or(bitmap, 0, 1 << 5); // page 69 written (block 1, local page 5)
    dirtyLog.sync();
    Atomics.or(new Int32Array(dirtyLog.buffers.bitmaps[3]!), 1, 1); // page 224 dirty now
    const kept = Array.from(withoutNeverWritten(s, allPages(256), 32));
    expect(kept).toEqual([
      ...Array.from({ length: 32 }, (_, i) => 64 + i),
      ...Array.from({ length: 32 }, (_, i) => 224 + i),
    ]);
    expect(r.pages.zero).toBe(256 - 64);
    // A list that is not whole runs keeps its pages.
    r.pages.zero = 0;
    expect(Array.from(withoutNeverWritten(s, [0, 1, 2, 40], 32))).toEqual([0, 1, 2, 40]);
    expect(r.pages.zero).toBe(0);
  });
});
