/**
 * The write-protection protocol, driven by hand on one thread: a vCPU's first access copies a page into a slot,
 * the writer saves from the slot (not from RAM the vCPU has changed since) and frees it for the next copy; pages
 * nobody touched are saved from RAM; a page is saved once.
 */
import { describe, expect, it } from 'vitest';
import { Guest } from './guest.js';
import { GuestRam } from './ram.js';
import { VcpuWriteProtect, WriteProtect } from './write-protect.js';

describe('write protection', () => {
  it('copies on first access, saves copies from their slots and recycles them', () => {
    const ram = new GuestRam({ ramBytes: 8 * 4096, pageSize: 4096, blockBytes: 4 * 4096 });
    for (let p = 0; p < 8; p++) ram.writePage(p, new Uint8Array(4096).fill(p + 1));
    const wp = new WriteProtect(ram, 2);
    expect(wp.slotCount).toBe(2);
    const vcpu = new VcpuWriteProtect(
      wp.shared,
      ram.blocks.map((b) => new Uint8Array(b.buffer)),
    );
    const write = (p: number, v: number) => {
      vcpu.access(p);
      ram.writePage(p, new Uint8Array(4096).fill(v));
    };
    write(1, 0xa1);
    write(6, 0xa6); // second block
    write(1, 0xb1); // already copied: no second copy
    expect(vcpu.copies).toBe(2);
    expect(wp.freeSlots()).toBe(0);
    const out = new Uint8Array(4096);
    expect([...wp.takeCopied()]).toEqual([1, 6]);
    expect(wp.save(1, out)).toBe('copy');
    expect(out.every((b) => b === 2)).toBe(true); // page 1 as it was: (1 + 1), not 0xa1 or 0xb1
    expect(wp.freeSlots()).toBe(1);
    write(3, 0xa3); // takes the freed slot
    expect(wp.freeSlots()).toBe(0);
    expect(wp.save(1, out)).toBe('done');
    const seen: string[] = [];
    for (let p = 0; p < 8; p++) {
      const from = wp.save(p, out);
      seen.push(from);
      if (from !== 'done') expect(out.every((b) => b === p + 1)).toBe(true);
    }
    expect(seen).toEqual(['ram', 'done', 'ram', 'copy', 'ram', 'ram', 'copy', 'ram']);
    expect(wp.freeSlots()).toBe(2);
    // Saved pages are the guest's again: no copy, RAM changes freely.
    write(0, 0xa0);
    expect(vcpu.copies).toBe(3);
    expect(ram.page(0)[0]).toBe(0xa0);
  });

  it('a snapshot given up half way releases a vCPU that waits for a slot', async () => {
    const guest = await Guest.create({
      ramBytes: 1 << 20,
      seed: 2,
      workload: { name: 'gap', params: { writeRate: 0 } },
    });
    try {
      // One slot and no writer: the vCPU copies one page, then waits for a slot that nobody frees.
      const wp = guest.startWriteProtect(new WriteProtect(guest.ram, 1));
      guest.resume();
      while (wp.freeSlots() > 0) await new Promise((r) => setTimeout(r, 5));
      // Held: its step count stops moving (within a few polls; a loaded host only makes this take longer).
      let stuck = -1;
      for (let i = 0; i < 200 && stuck < 0; i++) {
        const s = guest.steps()[0]!;
        await new Promise((r) => setTimeout(r, 50));
        if (guest.steps()[0] === s) stuck = s;
      }
      expect(stuck).toBeGreaterThanOrEqual(0);
      guest.stopWriteProtect();
      await guest.pause(); // would never resolve if the vCPU were still waiting
      expect(guest.steps()[0]).toBeGreaterThan(stuck);
    } finally {
      await guest.destroy();
    }
  }, 60_000);
});
