import { describe, expect, it } from 'vitest';
import { Guest } from './guest.js';

const GiB = 1024 ** 3;

describe('large guest', () => {
  it('creates an 8 GiB idle guest in 1 GiB blocks without committing 8 GiB', async () => {
    const rss0 = process.memoryUsage().rss;
    const g = await Guest.create({ ramBytes: 8 * GiB, workload: { name: 'idle' } });
    try {
      expect(g.ram.blocks).toHaveLength(8);
      expect(g.ram.blocks.every((b) => b.buffer.byteLength === GiB)).toBe(true);
      const last = g.ram.pageCount - 1;
      expect(g.ram.isZeroPage(last)).toBe(true);
      const data = new Uint8Array(4096).fill(0xab);
      g.ram.writePage(last, data);
      expect(g.ram.page(last)).toEqual(data);
      expect(g.ram.isZeroPage(last)).toBe(false);
      expect(g.ram.isZeroPage(last - 1)).toBe(true);
      await g.runToStep(500); // the workload runs (over its small working set)
      expect(g.dirtyLog.count()).toBeGreaterThan(0);
      g.dirtyLog.markAll();
      const all = g.dirtyLog.sync();
      expect(all.length).toBe(2 * 1024 * 1024);
      expect(all[last]).toBe(last);
      expect(g.dirtyLog.count()).toBe(0);
      // Only touched memory is committed (plus bookkeeping): far from 8 GiB.
      expect(process.memoryUsage().rss - rss0).toBeLessThan(GiB);
    } finally {
      await g.destroy();
    }
  });
});
