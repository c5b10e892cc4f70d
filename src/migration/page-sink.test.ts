import { afterEach, describe, expect, it } from 'vitest';
import { Guest } from '../guest/index.js';
import { combineCrcs, PageLedger, pageCrc } from './ledger.js';
import { PageSink, PageSinkPool } from './page-sink.js';
import {
  PAGE_ENTRY_HEADER_BYTES,
  PAGES_COUNT_BYTES,
  PageEncoding,
  writePageEntryHeader,
} from './protocol/index.js';

const pools: PageSinkPool[] = [];
afterEach(async () => {
  for (const p of pools.splice(0)) await p.close();
});

function pool(): PageSinkPool {
  const p = new PageSinkPool();
  pools.push(p);
  return p;
}

/** Waits (without a deadline of its own) until `check` holds; each turn lets worker messages arrive. */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 5));
}

/** A PAGES payload (count, then entries) of raw pages filled with `fill`, and each entry's data CRC. */
function rawPages(pages: number[], pageSize: number, fill: number): { payload: Buffer; crcs: Uint32Array } {
  const entry = PAGE_ENTRY_HEADER_BYTES + pageSize;
  const payload = Buffer.alloc(PAGES_COUNT_BYTES + pages.length * entry);
  payload.writeUInt32BE(pages.length, 0);
  const crcs = new Uint32Array(pages.length);
  pages.forEach((p, i) => {
    const at = PAGES_COUNT_BYTES + i * entry;
    writePageEntryHeader(payload, at, p, PageEncoding.RAW, pageSize);
    const data = payload.subarray(at + PAGE_ENTRY_HEADER_BYTES, at + entry).fill(fill);
    crcs[i] = pageCrc(data);
  });
  return { payload, crcs };
}

describe('PageSinkPool', () => {
  it('keeps one thread started, hands it out, stops it after use; close stops every thread', async () => {
    const p = pool();
    p.warm();
    p.warm(); // one spare is enough
    expect(p.ready).toBe(true);
    expect(p.started).toBe(1);
    const w = p.take();
    expect(p.ready).toBe(false);
    const extra = p.take(); // a second migration at the same time gets a thread started for it
    expect(p.started).toBe(2);
    expect(p.startedOnDemand).toBe(1);
    expect(p.liveThreads).toBe(2);
    await p.give(w);
    await p.give(extra);
    await until(() => p.liveThreads === 0); // a thread serves one migration
    p.warm();
    expect(p.ready).toBe(true);
    await p.close();
    expect(p.liveThreads).toBe(0);
    expect(p.ready).toBe(false);
    expect(() => p.take()).toThrow(/closed/);
    p.warm(); // a closed pool starts nothing
    expect(p.started).toBe(3);
  });

  it('a thread started before its migration applies that guest’s pages once bound', async () => {
    const p = pool();
    const pageSize = 4096;
    for (const fill of [0x11, 0x22]) {
      p.warm();
      await new Promise((r) => setTimeout(r, 50)); // the thread boots before the migration arrives
      const guest = await Guest.createIncoming({ ramBytes: 1 << 20, workload: { name: 'idle' } });
      try {
        const ledger = new PageLedger(guest.ram.pageCount, pageSize, true);
        const recycled: Buffer[] = [];
        const sink = new PageSink(guest, ledger.crcs, [], (b) => recycled.push(b), p);
        const { payload, crcs } = rawPages([3, 7], pageSize, fill);
        await sink.submit(payload, 2, crcs);
        await sink.drain();
        expect(sink.pagesApplied).toBe(2);
        expect(guest.ram.page(3).every((b) => b === fill)).toBe(true);
        expect(guest.ram.page(7).every((b) => b === fill)).toBe(true);
        expect(guest.ram.page(4).every((b) => b === 0)).toBe(true);
        expect(ledger.crcs[3]).toBe(crcs[0]);
        await sink.close();
        expect(p.liveThreads).toBe(0);
      } finally {
        await guest.destroy();
      }
    }
    expect(p.taken).toBe(2);
    expect(p.startedOnDemand).toBe(0);
  });
});

describe('PageSink at switch-over', () => {
  it('drain(syncMs) waits on the progress word: pages, ledger and digest sums are there without the event loop', async () => {
    const pageSize = 4096;
    const guest = await Guest.createIncoming({ ramBytes: 1 << 20, workload: { name: 'idle' } });
    try {
      const ledger = new PageLedger(guest.ram.pageCount, pageSize, true);
      const sink = new PageSink(guest, ledger.crcs, [], () => undefined, undefined, undefined, ledger.sums);
      const { payload, crcs } = rawPages([1, 2, 9], pageSize, 0x5a);
      await sink.submit(payload, 3, crcs);
      const drained = sink.drain(60_000);
      // No await yet: the sink thread's reply has not been delivered, yet everything is applied.
      expect(guest.ram.page(9).every((b) => b === 0x5a)).toBe(true);
      expect(ledger.crcs[2]).toBe(crcs[1]);
      expect(ledger.digest()).toBe(combineCrcs(ledger.crcs));
      await drained;
      await sink.close();
    } finally {
      await guest.destroy();
    }
  });
});
