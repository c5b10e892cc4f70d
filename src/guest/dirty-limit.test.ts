/**
 * Dirty-rate limit (QEMU's dirty-limit) in the vCPU: checked by what it does, with bounds a loaded host cannot
 * break. A loaded host only makes a vCPU slower, so the limit is checked from above: pages newly dirtied in a window
 * never exceed the quota of every period the window touches plus one step's pages per period. A vCPU that only
 * reads is checked by its wait count, which only a used quota can raise: it must stay 0.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Guest } from './guest.js';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sum = (xs: readonly number[]) => xs.reduce((a, x) => a + x, 0);

let guest: Guest | undefined;
afterEach(async () => {
  await guest?.destroy();
  guest = undefined;
});

describe('dirty-limit', () => {
  it('holds a vCPU that writes faster than its quota to quota per period (plus one step)', async () => {
    // seq writes a new page every step (uniform over 4096 pages), and the migration side syncs the log as a
    // migration would, so pages keep becoming clean and every write can count.
    guest = await Guest.create({
      ramBytes: 32 * MiB,
      workload: { name: 'seq', params: { workingSetBytes: 16 * MiB } },
    });
    const g = guest;
    const periodMs = 20;
    g.setDirtyLimit(1, periodMs); // 1 MiB/s of 4 KiB pages: 5 pages per 20 ms period
    const quota = g.dirtyLimit!.pagesPerPeriod;
    expect(quota).toBe(5);
    g.resume();
    const syncer = setInterval(() => g.dirtyLog.sync(), 5);
    try {
      await sleep(100);
      const n0 = g.dirtyLimitCounters().newDirtyPages[0]!;
      const t0 = performance.now();
      await sleep(1500);
      const n1 = g.dirtyLimitCounters().newDirtyPages[0]!;
      const t1 = performance.now();
      // Periods the window touches (each lasts at least periodMs), plus one for the publication lag at each end.
      const periods = Math.floor((t1 - t0) / periodMs) + 3;
      const burst = 1; // seq dirties one page per step
      expect(n1 - n0).toBeLessThanOrEqual(periods * (quota + burst - 1) + burst);
      expect(n1 - n0).toBeGreaterThan(0); // held, not stopped
      expect(sum(g.dirtyLimitCounters().waits)).toBeGreaterThan(0);
      // Lifting the limit lets it run free: the waits stop.
      g.setDirtyLimit(0);
      expect(g.dirtyLimit).toBeNull();
      await sleep(100);
      const w = g.dirtyLimitCounters().waits[0]!;
      await sleep(300);
      expect(g.dirtyLimitCounters().waits[0]).toBe(w);
    } finally {
      clearInterval(syncer);
    }
  });

  it('never makes a vCPU wait that only reads, while the writing vCPU beside it is held', async () => {
    // kv-read: vCPU 0 takes every PUT (writeProbability 1 here, unpaced), vCPU 1 only serves GETs.
    guest = await Guest.create({
      ramBytes: 16 * MiB,
      vcpus: 2,
      workload: { name: 'kv-read', params: { workingSetBytes: 8 * MiB, writeProbability: 1, writeRate: 0 } },
    });
    const g = guest;
    g.setDirtyLimit(1, 10);
    g.resume();
    const syncer = setInterval(() => g.dirtyLog.sync(), 5);
    try {
      // Until the reader has done real work, however loaded the host (at most 20 s).
      const until = performance.now() + 20_000;
      while (performance.now() < until && (g.reads()[1]! < 10_000 || g.dirtyLimitCounters().waits[0]! < 5))
        await sleep(50);
      const c = g.dirtyLimitCounters();
      expect(g.reads()[1]).toBeGreaterThanOrEqual(10_000);
      expect(c.waits[0]).toBeGreaterThanOrEqual(5); // the writer was held
      expect(c.waits[1]).toBe(0); // the reader never was
      expect(c.waitMs[1]).toBe(0);
      expect(c.newDirtyPages[1]).toBe(0);
    } finally {
      clearInterval(syncer);
    }
  });

  it('rejects a limit or a period out of range with a message naming the option', async () => {
    guest = await Guest.create({ ramBytes: 4 * MiB, workload: { name: 'idle' } });
    expect(() => guest!.setDirtyLimit(-1)).toThrow(/dirty limit: -1/);
    expect(() => guest!.setDirtyLimit(Number.NaN)).toThrow(/dirty limit/);
    expect(() => guest!.setDirtyLimit(1, 0)).toThrow(/period: 0/);
    expect(() => guest!.setDirtyLimit(1, 1001)).toThrow(/1\.\.1000/);
  });
});
