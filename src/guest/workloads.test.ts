/**
 * Workload contents must look like real memory for the codecs' results to mean anything: compressible but not
 * trivially (text, records, small integers — not zeros, not noise), most rewrites change a few bytes of a page,
 * some rewrite whole pages, and new data is never zero.
 */
import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { WORKLOAD_NAMES, type WorkloadName } from './config.js';
import { Guest } from './guest.js';

const MiB = 1024 * 1024;
const WHOLE_PAGES: readonly WorkloadName[] = ['gap', 'zipf', 'seq'];

describe.each(WORKLOAD_NAMES)('workload %s', (name) => {
  it('writes realistic data: few bytes per rewrite, some whole pages, never zeros', async () => {
    const g = await Guest.create({ ramBytes: 8 * MiB, workload: { name } });
    try {
      const ps = g.ram.pageSize;
      const ws = g.config.workload.params.workingSetBytes / ps;
      const before = Array.from({ length: ws }, (_, p) => Buffer.from(g.ram.page(p)));
      const all = Buffer.concat(before);
      const ratio = all.length / deflateSync(all).length;
      expect(ratio).toBeGreaterThan(1.5); // structured, not noise
      expect(ratio).toBeLessThan(12); // and not mostly zeros
      const steps = 3000;
      await g.runToStep(steps);
      const dirty = [...g.dirtyLog.sync()];
      expect(dirty.length).toBeGreaterThan(0);
      const changed = dirty.map((p) => {
        const now = g.ram.page(p);
        const old = before[p]!;
        let n = 0;
        for (let i = 0; i < ps; i++) if (now[i] !== old[i]) n++;
        return n;
      });
      expect(dirty.every((p) => !g.ram.isZeroPage(p))).toBe(true);
      expect(dirty.every((p) => p < ws)).toBe(true); // writes stay in the working set
      const sorted = [...changed].sort((a, b) => a - b);
      if (name !== 'idle') expect(sorted[sorted.length >> 1]!).toBeLessThanOrEqual(64); // idle: 16 pages, 3000 writes
      if (WHOLE_PAGES.includes(name)) expect(changed.filter((c) => c > ps / 2).length).toBeGreaterThan(0);
      const writes = g.dirtyLog.writeCounts().reduce((a, b) => a + b, 0);
      if (name === 'twolf' || name === 'kv-read')
        expect(writes / steps).toBeLessThan(0.3); // CPU bound or read-mostly: few writes
      else expect(writes).toBe(steps); // writers: one page write per step
    } finally {
      await g.destroy();
    }
  });
});
