import { afterEach, describe, expect, it } from 'vitest';
import { MigrationError, UsageError } from '../errors.js';
import type { GuestConfig } from './config.js';
import { Guest, type GuestState } from './guest.js';
import { GuestRam } from './ram.js';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function snapshot(ram: GuestRam): GuestRam {
  const copy = new GuestRam({ ramBytes: ram.bytes, pageSize: ram.pageSize, blockBytes: ram.bytes });
  for (let p = 0; p < ram.pageCount; p++) copy.writePage(p, ram.page(p));
  return copy;
}

function sameRam(a: GuestRam, b: GuestRam): boolean {
  for (let p = 0; p < a.pageCount; p++) if (!a.pageEquals(p, b)) return false;
  return true;
}

describe('Guest lifecycle', () => {
  const guests: Guest[] = [];
  const make = async (config: GuestConfig) => {
    const g = await Guest.create(config);
    guests.push(g);
    return g;
  };
  afterEach(async () => {
    await Promise.all(guests.splice(0).map((g) => g.destroy()));
  });

  it('creates paused with the working set initialised and the rest zero', async () => {
    const g = await make({ ramBytes: 4 * MiB, workload: { name: 'zipf', params: { workingSetBytes: MiB } } });
    expect(g.running).toBe(false);
    expect(g.steps()).toEqual([0]);
    const ws = MiB / 4096;
    for (let p = 0; p < ws; p++) expect(g.ram.isZeroPage(p)).toBe(false);
    for (let p = ws; p < g.ram.pageCount; p++) expect(g.ram.isZeroPage(p)).toBe(true);
    await sleep(30);
    expect(g.steps()).toEqual([0]); // a created guest does not run by itself
  });

  it('pause parks every vCPU: RAM, steps and dirty log stay still while paused', async () => {
    const g = await make({ ramBytes: 4 * MiB, vcpus: 2, workload: { name: 'gap' } });
    g.resume();
    expect(g.running).toBe(true);
    while (Math.min(...g.steps()) < 5000) await sleep(2);
    await g.pause();
    expect(g.running).toBe(false);
    const steps = g.steps();
    expect(g.state().vcpus.map((v) => v.step)).toEqual(steps);
    g.dirtyLog.sync();
    const before = snapshot(g.ram);
    await sleep(50);
    expect(g.steps()).toEqual(steps);
    expect(g.dirtyLog.count()).toBe(0);
    expect(sameRam(before, g.ram)).toBe(true);
    // And it runs again after resume.
    g.resume();
    while (g.steps()[0]! === steps[0]!) await sleep(2);
    await g.pause();
    expect(sameRam(before, g.ram)).toBe(false);
  });

  it('pause interrupts throttling waits (CAP sleep, DVFS stall, write-rate pacing) promptly', async () => {
    const paced = await make({ ramBytes: MiB, workload: { name: 'zipf', params: { writeRate: 1 } } });
    paced.setCap(1);
    const slow = await make({ ramBytes: MiB, workload: { name: 'zipf' } });
    // At the lowest frequency (1e-6) every work phase is followed by a stall a million times as long: measured,
    // the first batch of 16 steps is followed by a stall of over 3 s already at 1e-4, so here of minutes.
    slow.setFrequency(0.000001);
    for (const g of [paced, slow]) {
      g.resume();
      await sleep(20);
      const t = performance.now();
      await g.pause();
      // A non-interruptible stall would take minutes; 2 s (was 400 ms) leaves a loaded host time to schedule the
      // vCPU worker and the main thread.
      expect(performance.now() - t).toBeLessThan(2000);
    }
  });

  it('state() is JSON-serialisable and loadState round-trips it', async () => {
    const config: GuestConfig = { ramBytes: 2 * MiB, vcpus: 2, workload: { name: 'kv' } };
    const g = await make(config);
    await g.runToStep([1234, 777]);
    const state = g.state();
    const json = JSON.parse(JSON.stringify(state)) as GuestState;
    expect(json).toEqual(state);
    expect(state.vcpus[1]).toMatchObject({ index: 1, step: 777 });
    expect(state.vcpus[0]!.rng).toHaveLength(4);
    expect(Object.keys(state.vcpus[0]!.registers).sort()).toEqual(['commits', 'cursor']);
    const h = await Guest.createIncoming(config);
    guests.push(h);
    h.loadState(json);
    expect(h.state()).toEqual(state);
    expect(h.steps()).toEqual([1234, 777]);
  });

  it('refuses misuse with typed errors', async () => {
    const config: GuestConfig = { ramBytes: MiB, workload: { name: 'seq' } };
    const g = await make(config);
    await g.runToStep(100);
    await expect(g.runToStep(50)).rejects.toBeInstanceOf(UsageError);
    await expect(g.runToStep([1, 2])).rejects.toBeInstanceOf(UsageError);
    const state = g.state();
    g.resume();
    expect(() => g.state()).toThrow(MigrationError);
    expect(() => g.loadState(state)).toThrow(/paused/);
    await g.pause();
    const other = await make({ ...config, seed: 9 });
    expect(() => other.loadState(state)).toThrow(/different config/);
    const broken = structuredClone(state);
    broken.vcpus[0]!.registers = { nope: 1 };
    expect(() => g.loadState(broken)).toThrow(/registers/);
    expect(() => g.setCap(101)).toThrow(UsageError);
    expect(() => g.setCap(2.5)).toThrow(UsageError);
    expect(() => g.setFrequency(0)).toThrow(UsageError);
    expect(() => g.setFrequency(1.5)).toThrow(UsageError);
    expect(() => g.ram.page(g.ram.pageCount)).toThrow(UsageError);
    expect(() => g.ram.writePage(0, new Uint8Array(10))).toThrow(UsageError);
    expect(() => g.placePage(0, null)).toThrow(/postcopy/);
    await g.destroy();
    expect(() => g.resume()).toThrow(MigrationError);
    expect(g.ram.isZeroPage(0)).toBe(false); // RAM stays readable after destroy
  });

  it('reports a workload crash as a MigrationError instead of hanging', async () => {
    const g = await make({ ramBytes: MiB, workload: { name: 'seq' } });
    const state = g.state();
    state.vcpus[0]!.registers.cursor = 1e9; // out of range: the vCPU rejects it when it applies the state
    g.loadState(state);
    await expect(g.runToStep(10)).rejects.toBeInstanceOf(MigrationError);
  });
});

describe('GuestRam', () => {
  it('splits into blocks, reads and writes pages zero-copy, detects zero pages', () => {
    const ram = new GuestRam({ ramBytes: 10 * 4096, pageSize: 4096, blockBytes: 3 * 4096 });
    expect(ram.blocks.map((b) => [b.firstPage, b.pageCount])).toEqual([
      [0, 3],
      [3, 3],
      [6, 3],
      [9, 1],
    ]);
    const data = new Uint8Array(4096).fill(7);
    ram.writePage(4, data);
    expect(ram.page(4)).toEqual(data);
    expect(new Uint8Array(ram.blocks[1]!.buffer)[4096]).toBe(7); // page 4 = second page of block 1
    ram.page(9)[4095] = 1; // a view, not a copy
    expect(ram.isZeroPage(9)).toBe(false);
    expect(ram.isZeroPage(8)).toBe(true);
    ram.zeroPage(4);
    expect(ram.isZeroPage(4)).toBe(true);
  });
});
