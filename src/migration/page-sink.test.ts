import { afterEach, describe, expect, it } from 'vitest';
import { Guest } from '../guest/index.js';
import { PageLedger, pageCrc } from './ledger.js';
import { PageSink, PageSinkPool } from './page-sink.js';
import { PAGE_ENTRY_HEADER_BYTES, PageEncoding } from './protocol.js';

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
  const payload = Buffer.alloc(4 + pages.length * entry);
  payload.writeUInt32BE(pages.length, 0);
  const crcs = new Uint32Array(pages.length);
  pages.forEach((p, i) => {
    const at = 4 + i * entry;
    payload.writeUInt32BE(p, at);
    payload[at + 4] = PageEncoding.RAW;
    payload.writeUInt32BE(pageSize, at + 5);
    const data = payload.subarray(at + PAGE_ENTRY_HEADER_BYTES, at + entry).fill(fill);
    crcs[i] = pageCrc(data);
  });
  return { payload, crcs };
}

describe('PageSinkPool', () => {
  it('keeps one started thread, hands it out and takes it back; close stops every thread', async () => {
    const p = pool();
    p.warm();
    expect(p.ready).toBe(true);
    expect(p.started).toBe(1);
    const w = p.take();
    expect(p.ready).toBe(false);
    const extra = p.take(); // a second migration at the same time gets a thread of its own
    expect(p.started).toBe(2);
    p.give(w);
    await until(() => p.ready);
    p.give(extra); // one spare is enough: the other is stopped
    await until(() => p.liveThreads === 1);
    expect(p.take()).toBe(w);
    p.give(w);
    await until(() => p.ready);
    await p.close();
    expect(p.liveThreads).toBe(0);
    expect(() => p.take()).toThrow(/closed/);
  });

  it('a reused thread applies the next guest’s pages, not the previous one’s', async () => {
    const p = pool();
    p.warm();
    const pageSize = 4096;
    for (const fill of [0x11, 0x22]) {
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
        await until(() => p.ready);
      } finally {
        await guest.destroy();
      }
    }
    expect(p.started).toBe(1);
    expect(p.taken).toBe(2);
  });
});
