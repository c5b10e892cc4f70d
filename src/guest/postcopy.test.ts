import { afterEach, describe, expect, it } from 'vitest';
import type { GuestConfig } from './config.js';
import { Guest } from './guest.js';
import { ramEquals, referenceRam } from './oracle.js';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('post-copy destination', () => {
  const guests: Guest[] = [];
  afterEach(async () => {
    await Promise.all(guests.splice(0).map((g) => g.destroy()));
  });

  it.each(['twolf', 'kv'] as const)(
    '%s: an absent page blocks the vCPU until placed; faulting in + background push ends equal to the reference',
    async (name) => {
      const config: GuestConfig = {
        ramBytes: 2 * MiB,
        vcpus: 2,
        workload: { name, params: { workingSetBytes: MiB } },
      };
      const source = await Guest.create(config);
      guests.push(source);
      await source.runToStep([2000, 2500]);
      const state = source.state();

      const dest = await Guest.createIncoming(config, { postcopy: true });
      guests.push(dest);
      expect(dest.postcopy).toBe(true);
      expect(dest.missingPages()).toBe(dest.ram.pageCount);
      expect(dest.isPresent(0)).toBe(false);
      const faults: number[] = [];
      let serve = false;
      const place = (p: number) => dest.placePage(p, source.ram.isZeroPage(p) ? null : source.ram.page(p));
      dest.onFault((p) => {
        faults.push(p);
        if (serve) place(p);
      });
      dest.loadState(state);
      dest.resume();
      while (faults.length < 2) await sleep(2);
      // Both vCPUs wait on their first absent page: no progress, no write lands anywhere.
      const blocked = dest.steps();
      await sleep(50);
      expect(dest.steps()).toEqual(blocked);
      expect(dest.steps()).toEqual([2000, 2500]);
      expect(dest.dirtyLog.count()).toBe(0);
      expect(faults.length).toBe(2);
      // Serve faults from now on (a page request answered by the source).
      serve = true;
      for (const p of [...faults]) expect(place(p)).toBe(true);
      const targets = [6000, 7000];
      await dest.runToStep(targets);
      expect(new Set(faults).size).toBe(faults.length); // one fault per page
      for (const p of faults) expect(dest.isPresent(p)).toBe(true);
      expect(dest.missingPages()).toBeGreaterThan(0); // the guest did not touch everything
      expect(dest.missingPages()).toBe(dest.ram.pageCount - faults.length);
      // Background push of the rest: untouched pages are exactly as the source left them.
      for (let p = 0; p < dest.ram.pageCount; p++) place(p);
      expect(dest.missingPages()).toBe(0);
      expect(place(0)).toBe(false); // present pages are never overwritten
      const reference = await referenceRam(config, targets);
      expect(ramEquals(dest.ram, reference)).toEqual({ equal: true, firstDifferentPage: -1 });
    },
  );

  it('destroy releases a vCPU blocked on an absent page', async () => {
    const config: GuestConfig = { ramBytes: MiB, workload: { name: 'seq' } };
    const dest = await Guest.createIncoming(config, { postcopy: true });
    let faulted = false;
    dest.onFault(() => {
      faulted = true;
    });
    dest.resume();
    while (!faulted) await sleep(2);
    await dest.destroy();
    expect(dest.running).toBe(false);
  });

  it('markPresent declares a page written in place present, once, without copying', async () => {
    const dest = await Guest.createIncoming(
      { ramBytes: MiB, workload: { name: 'idle' } },
      { postcopy: true },
    );
    guests.push(dest);
    const before = dest.missingPages();
    dest.ram.page(3).fill(0x42);
    expect(dest.isPresent(3)).toBe(false);
    expect(dest.markPresent(3)).toBe(true);
    expect(dest.isPresent(3)).toBe(true);
    expect(dest.missingPages()).toBe(before - 1);
    expect(dest.markPresent(3)).toBe(false);
    expect(dest.missingPages()).toBe(before - 1);
    expect(dest.ram.page(3).every((b) => b === 0x42)).toBe(true);
  });
});
