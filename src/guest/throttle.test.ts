/**
 * Throttling is checked by what it does, measured: progress rate (steps/s) and the vCPU thread's CPU time
 * (from the kernel), not by reading back a field. Ranges are generous: the machines are small and shared.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { GuestConfig } from './config.js';
import { Guest } from './guest.js';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Steps/s and CPU share (CPU ms per wall ms) of vCPU 0 over `ms`. */
async function measure(g: Guest, ms = 500): Promise<{ rate: number; cpu: number }> {
  await sleep(40); // let a settings change take effect
  const s0 = g.steps()[0]!;
  const c0 = g.cpuTimeMs()[0]!;
  const t0 = performance.now();
  await sleep(ms);
  const dt = performance.now() - t0;
  return { rate: ((g.steps()[0]! - s0) / dt) * 1000, cpu: (g.cpuTimeMs()[0]! - c0) / dt };
}

describe('throttling', () => {
  const guests: Guest[] = [];
  const start = async (config: GuestConfig) => {
    const g = await Guest.create(config);
    guests.push(g);
    g.resume();
    return g;
  };
  afterEach(async () => {
    await Promise.all(guests.splice(0).map((g) => g.destroy()));
  });

  it('CAP 25 holds a CPU-bound vCPU to about a quarter of the CPU and of its progress', async () => {
    const g = await start({ ramBytes: 4 * MiB, workload: { name: 'zipf' } });
    await sleep(300); // JIT warm-up
    const a = await measure(g);
    g.setCap(25);
    expect(g.cap).toBe(25);
    const capped = await measure(g);
    g.setCap(0);
    const b = await measure(g);
    const uncapped = Math.max(a.rate, b.rate);
    expect(capped.rate / uncapped).toBeLessThan(0.45);
    expect(capped.rate / uncapped).toBeGreaterThan(0.08);
    expect(capped.cpu).toBeLessThan(0.4);
    expect(capped.cpu).toBeGreaterThan(0.05);
    // Uncapped really is CPU bound (relative: other processes may share the two cores).
    expect(Math.max(a.cpu, b.cpu)).toBeGreaterThan(1.5 * capped.cpu);
  });

  it('DVFS at half frequency halves progress; busy stall keeps the CPU busy, sleep stall frees it', async () => {
    // Progress per CPU-ms (efficiency) does not depend on how much CPU other processes leave us.
    const eff = (m: { rate: number; cpu: number }) => m.rate / m.cpu;
    const busy = await start({ ramBytes: 4 * MiB, workload: { name: 'zipf' } });
    await sleep(300); // JIT warm-up
    const full = await measure(busy);
    busy.setFrequency(0.5);
    expect(busy.frequency).toBe(0.5);
    const half = await measure(busy);
    busy.setFrequency(1);
    const full2 = await measure(busy);
    // Busy stall: the core stays busy but does half the work per CPU-ms, like a down-clocked core.
    // (Wide bounds: under host contention the stall, computed from wall time, runs long; a sleep stall
    // would give ~1.)
    const ratio = eff(half) / Math.max(eff(full), eff(full2));
    const seen = JSON.stringify({ full, half, full2 });
    expect(ratio, seen).toBeGreaterThan(0.2);
    expect(ratio, seen).toBeLessThan(0.8);
    await busy.pause();

    const sleepy = await start({ ramBytes: 4 * MiB, workload: { name: 'zipf' }, dvfsStall: 'sleep' });
    await sleep(300);
    const sleepyFull = await measure(sleepy);
    sleepy.setFrequency(0.25);
    const quarter = await measure(sleepy);
    // Sleep stall: CPU share falls with the frequency, work per CPU-ms does not.
    const seen2 = JSON.stringify({ sleepyFull, quarter });
    expect(quarter.cpu, seen2).toBeLessThan(0.45);
    expect(eff(quarter) / eff(sleepyFull), seen2).toBeGreaterThan(0.5);
    expect(quarter.rate / sleepyFull.rate, seen2).toBeLessThan(0.6);
  });

  it('writeRate paces the dirty rate, and CAP and DVFS slow a paced workload too', async () => {
    const g = await start({ ramBytes: 4 * MiB, workload: { name: 'zipf', params: { writeRate: 2000 } } });
    const paced = await measure(g, 600);
    expect(paced.rate).toBeGreaterThan(1000);
    expect(paced.rate).toBeLessThan(2600);
    expect(paced.cpu).toBeLessThan(0.5); // pacing sleeps, it does not spin
    g.setCap(25);
    const capped = await measure(g, 600);
    expect(capped.rate).toBeLessThan(0.45 * 2000);
    g.setCap(0);
    g.setFrequency(0.5);
    const slow = await measure(g, 600);
    expect(slow.rate).toBeLessThan(0.7 * 2000);
    expect(slow.rate).toBeGreaterThan(0.25 * 2000);
    // Dirty pages follow the steps: zipf writes exactly one page per step.
    const counts = g.dirtyLog.writeCounts();
    let writes = 0;
    for (let p = 0; p < counts.length; p++) writes += counts[p]!;
    await g.pause();
    expect(writes).toBeLessThanOrEqual(g.steps()[0]!);
  });
});
