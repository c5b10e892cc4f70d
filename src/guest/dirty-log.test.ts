import { afterEach, describe, expect, it } from 'vitest';
import { DirtyLog } from './dirty-log.js';
import { Guest } from './guest.js';
import { VcpuMemory } from './memory.js';
import { GuestRam } from './ram.js';

const KiB = 1024;

function layout(pages: number, pagesPerBlock: number) {
  const ram = new GuestRam({
    ramBytes: pages * 4 * KiB,
    pageSize: 4 * KiB,
    blockBytes: pagesPerBlock * 4 * KiB,
  });
  const log = new DirtyLog(ram);
  const mem = new VcpuMemory({
    pageSize: ram.pageSize,
    pageCount: ram.pageCount,
    pagesPerBlock: ram.pagesPerBlock,
    blocks: ram.blocks.map((b) => b.buffer),
    bitmaps: log.buffers.bitmaps,
    counters: log.buffers.counters,
    presence: null,
    requested: null,
  });
  const write = (page: number, value = 1) => {
    const off = mem.open(page);
    mem.buf[off + 5] = value;
    mem.dirty(page);
  };
  return { ram, log, write };
}

describe('DirtyLog', () => {
  it('sync returns the written pages ascending, across blocks, and clears them', () => {
    const { ram, log, write } = layout(100, 33); // 4 blocks: 33+33+33+1 pages, words that straddle nothing
    expect(ram.blocks.map((b) => b.pageCount)).toEqual([33, 33, 33, 1]);
    for (const p of [99, 0, 31, 32, 33, 64, 65, 98, 31]) write(p);
    expect(log.count()).toBe(8);
    expect([...log.sync()]).toEqual([0, 31, 32, 33, 64, 65, 98, 99]);
    expect(log.count()).toBe(0);
    expect(log.sync().length).toBe(0);
    expect(log.writeCount(31)).toBe(2);
    expect(log.writeCount(1)).toBe(0);
    expect(log.writeCounts()[99]).toBe(1);
    expect(ram.page(99)[5]).toBe(1);
  });

  it('markAll marks exactly every page, including a partial last word', () => {
    const { log } = layout(70, 40);
    log.markAll();
    expect(log.count()).toBe(70);
    expect([...log.sync()]).toEqual(Array.from({ length: 70 }, (_, i) => i));
  });

  it('write counters saturate instead of wrapping', () => {
    const { log, write } = layout(4, 4);
    log.writeCounts()[2] = 0xfffffffe;
    write(2);
    write(2);
    expect(log.writeCount(2)).toBe(0xffffffff);
  });
});

describe('dirty log under a running guest', () => {
  let guest: Guest | undefined;
  afterEach(async () => {
    await guest?.destroy();
  });

  it('loses no write that races with sync: "sync, then copy" rebuilds the RAM exactly', async () => {
    guest = await Guest.create({
      ramBytes: 2 * 1024 * KiB,
      vcpus: 2,
      blockBytes: 512 * KiB, // several blocks
      workload: { name: 'gap', params: { wholePageFraction: 0.3 } },
    });
    const { ram, dirtyLog } = guest;
    expect(dirtyLog.count()).toBe(0); // init writes are not logged
    // The migration side's view: a full copy, then repeated "sync, then read the dirty pages".
    const copy = new GuestRam({ ramBytes: ram.bytes, pageSize: ram.pageSize, blockBytes: ram.bytes });
    for (let p = 0; p < ram.pageCount; p++) copy.writePage(p, ram.page(p));
    const before = new GuestRam({ ramBytes: ram.bytes, pageSize: ram.pageSize, blockBytes: ram.bytes });
    for (let p = 0; p < ram.pageCount; p++) before.writePage(p, ram.page(p));
    const union = new Set<number>();
    guest.resume();
    let syncs = 0;
    const started = guest.steps().reduce((a, b) => a + b, 0);
    while (syncs < 200 || guest.steps().reduce((a, b) => a + b, 0) - started < 20_000) {
      const dirty = dirtyLog.sync();
      for (let i = 1; i < dirty.length; i++) expect(dirty[i]!).toBeGreaterThan(dirty[i - 1]!);
      for (const p of dirty) {
        union.add(p);
        copy.writePage(p, ram.page(p));
      }
      syncs++;
      await new Promise((r) => setImmediate(r));
    }
    await guest.pause();
    for (const p of dirtyLog.sync()) {
      union.add(p);
      copy.writePage(p, ram.page(p));
    }
    // Every page whose bytes changed was reported, and the copy equals the RAM byte for byte.
    let changed = 0;
    for (let p = 0; p < ram.pageCount; p++) {
      if (!before.pageEquals(p, ram)) {
        changed++;
        expect(union.has(p)).toBe(true);
      }
      expect(copy.pageEquals(p, ram)).toBe(true);
    }
    expect(changed).toBeGreaterThan(ram.pageCount / 2);
    // Write counters agree with the log: counted pages are exactly the reported ones.
    for (let p = 0; p < ram.pageCount; p++) expect(dirtyLog.writeCount(p) > 0).toBe(union.has(p));
  });
  it('isDirty agrees with sync for every page, blocks of one size or not', () => {
    const { ram, log, write } = layout(100, 33);
    const written = [0, 31, 32, 33, 64, 65, 98, 99];
    for (const p of written) write(p);
    for (let p = 0; p < ram.pageCount; p++) expect(log.isDirty(p)).toBe(written.includes(p));
    expect([...log.sync()]).toEqual(written);
    for (let p = 0; p < ram.pageCount; p++) expect(log.isDirty(p)).toBe(false);

    // Blocks of different sizes (10, 40, 5 pages): the block is not page / (first block's size).
    const sizes = [10, 40, 5];
    let first = 0;
    const blocks = sizes.map((pageCount) => {
      const b = { buffer: new SharedArrayBuffer(pageCount * 4 * KiB), firstPage: first, pageCount };
      first += pageCount;
      return b;
    });
    const uneven = new GuestRam(
      { ramBytes: first * 4 * KiB, pageSize: 4 * KiB, blockBytes: 10 * 4 * KiB },
      blocks,
    );
    const log2 = new DirtyLog(uneven);
    const pages = [3, 9, 10, 25, 41, 49, 50, 54];
    for (const p of pages) {
      const b = blocks.findIndex((x) => p >= x.firstPage && p < x.firstPage + x.pageCount);
      const i = p - blocks[b]!.firstPage;
      Atomics.or(new Int32Array(log2.buffers.bitmaps[b]!), i >>> 5, 1 << (i & 31));
    }
    for (let p = 0; p < first; p++) expect(log2.isDirty(p)).toBe(pages.includes(p));
    expect([...log2.sync()]).toEqual(pages);
  });
});

describe('the record of pages never written (round 1 sends them unread)', () => {
  it('knows a page never written from its dirty bit and what sync cleared, across words and blocks', () => {
    const { ram, log, write } = layout(100, 40); // blocks of 40, 40 and 20 pages
    expect(log.neverWritten(0, 32)).toBe(false); // no record kept yet: every page may hold data
    log.trackWritesFromZero();
    expect(log.neverWritten(0, 32)).toBe(true);
    write(35);
    expect(log.neverWritten(32, 8)).toBe(false); // dirty, not yet synced
    expect(log.neverWritten(0, 32)).toBe(true);
    log.sync();
    expect(log.neverWritten(32, 8)).toBe(false); // synced: the record keeps it
    expect(log.neverWritten(35, 1)).toBe(false);
    expect(log.neverWritten(36, 4)).toBe(true);
    expect(log.neverWritten(30, 5)).toBe(true); // a run across a word boundary
    expect(log.neverWritten(30, 6)).toBe(false);
    expect(log.neverWritten(38, 4)).toBe(false); // a run across two blocks is not answered
    write(99);
    expect(log.neverWritten(96, 4)).toBe(false);
    expect(log.neverWritten(80, 16)).toBe(true);
    // RAM written by the migration side (a destination's pages) ends the record.
    ram.writePage(50, new Uint8Array(ram.pageSize).fill(1));
    expect(log.neverWritten(80, 16)).toBe(false);
  });

  it.each(['idle', 'gap', 'zipf', 'seq', 'twolf', 'kv', 'kv-read'] as const)(
    '%s: every page the record calls never written holds zeros, after init and after running',
    async (name) => {
      const guest = await Guest.create({
        ramBytes: 1024 * KiB,
        blockBytes: 256 * KiB,
        vcpus: 2,
        workload: { name, params: { workingSetBytes: 512 * KiB } },
      });
      try {
        const check = () => {
          let never = 0;
          for (let p = 0; p < guest.ram.pageCount; p++) {
            if (!guest.dirtyLog.neverWritten(p, 1)) continue;
            never++;
            expect(guest.ram.isZeroPage(p)).toBe(true);
          }
          return never;
        };
        // Right after init: the working set is written, the rest is zero and known to be.
        expect(check()).toBeGreaterThan(0);
        await guest.runToStep(3000);
        check();
        guest.dirtyLog.sync();
        check();
      } finally {
        await guest.destroy();
      }
    },
  );
});
