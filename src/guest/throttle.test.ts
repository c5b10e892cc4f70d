/**
 * Throttling is checked by what it does, measured: progress rate (steps/s) and the vCPU thread's CPU time,
 * runnable time and voluntary context switches (from the kernel), not by reading back a field.
 *
 * The host is shared (CI runs this beside other test files on 2 cores), so a vCPU may get far less than a whole
 * CPU: measured with four busy loops beside it, an uncapped vCPU got 10-40% of a CPU. Checks are therefore made
 * in terms that contention does not move: progress per CPU-second (efficiency), the CPU share as an upper bound,
 * and the time the thread asks for the CPU (runnable: on it or waiting in the run queue) as a lower bound. A
 * comparison of two wall-clock rates would not hold: under contention a capped or stalled vCPU, which sleeps
 * often, is favoured by the kernel's scheduler over an always-runnable one, so the ratio of their rates rises
 * towards 1 without anything being wrong.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { GuestConfig } from './config.js';
import { Guest } from './guest.js';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Measured {
  /** Guest steps per wall-clock second. */
  rate: number;
  /** CPU ms per wall ms. */
  cpu: number;
  /** Runnable ms (on a CPU or waiting in the run queue) per wall ms: how much CPU the vCPU asked for. */
  demand: number;
  /** Voluntary context switches per second: how often the thread blocked (slept) of its own accord. */
  blocks: number;
}

/** Kernel accounting of vCPU 0's thread: CPU and run-queue time (ms, schedstat), voluntary switches. */
function threadClock(g: Guest): { cpuMs: number; waitMs: number; voluntary: number } {
  const dir = `/proc/self/task/${g.threadIds()[0]!}`;
  const [cpuNs, waitNs] = readFileSync(`${dir}/schedstat`, 'latin1').split(' ').map(Number);
  const voluntary = /^voluntary_ctxt_switches:\s*(\d+)/m.exec(readFileSync(`${dir}/status`, 'latin1'));
  return { cpuMs: cpuNs! / 1e6, waitMs: waitNs! / 1e6, voluntary: Number(voluntary?.[1]) };
}

/**
 * Rate, CPU share, demand and blocking of vCPU 0 over a window: `wallMs` of wall-clock time, or (default) until
 * the vCPU has had `cpuMs` of CPU time. A window of CPU time holds the same amount of the vCPU's work however
 * little of the CPU a loaded host leaves it (at load average 20 a vCPU got 3% of a CPU: a 500 ms window then
 * held 15 ms of work, a few scheduler time slices, and its ratios were noise). It lasts at least 300 ms (ten
 * CAP periods) and at most 8 s.
 */
async function measure(g: Guest, window: { wallMs?: number; cpuMs?: number } = {}): Promise<Measured> {
  await sleep(40); // let a settings change take effect
  const s0 = g.steps()[0]!;
  const k0 = threadClock(g);
  const t0 = performance.now();
  if (window.wallMs !== undefined) await sleep(window.wallMs);
  else {
    const cpuMs = window.cpuMs ?? 150;
    do await sleep(50);
    while (
      performance.now() - t0 < 8000 &&
      (performance.now() - t0 < 300 || threadClock(g).cpuMs - k0.cpuMs < cpuMs)
    );
  }
  const dt = performance.now() - t0;
  const k1 = threadClock(g);
  return {
    rate: ((g.steps()[0]! - s0) / dt) * 1000,
    cpu: (k1.cpuMs - k0.cpuMs) / dt,
    demand: (k1.cpuMs - k0.cpuMs + k1.waitMs - k0.waitMs) / dt,
    blocks: ((k1.voluntary - k0.voluntary) / dt) * 1000,
  };
}

/** Steps per CPU-second: the progress the vCPU would make with a whole CPU, whatever share it got. */
const eff = (m: Measured) => m.rate / m.cpu;

// These checks measure CPU shares of real threads. On a host whose other processes take the cores for a while
// (the suite's heavier files run beside this one), a share measured over a window can fall outside even wide
// bounds once; a second attempt measures again. A vCPU that throttles wrongly fails every attempt.
describe('throttling', { retry: 2 }, () => {
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
    const seen = JSON.stringify({ a, capped, b });
    // Progress as a share of what a whole CPU gives (not of the uncapped wall rate, which contention lowers).
    const wholeCpu = Math.max(eff(a), eff(b));
    expect(capped.rate / wholeCpu, seen).toBeLessThan(0.45);
    expect(capped.cpu, seen).toBeLessThan(0.4);
    // The CAP holds the vCPU back, it does not starve it: it asks for the CPU at least about its quarter of the
    // time (the host may still give it less) ...
    expect(capped.demand, seen).toBeGreaterThan(0.15);
    // ... and the CPU time it gets goes to guest work (measured 0.8-0.9 of uncapped; short periods cost a little).
    expect(eff(capped) / wholeCpu, seen).toBeGreaterThan(0.5);
    // Uncapped really is CPU bound: it never blocks (its CPU share, unlike this, depends on the host's load).
    expect(Math.min(a.blocks, b.blocks), seen).toBeLessThan(30);
  });

  it('DVFS at half frequency halves progress; busy stall keeps the CPU busy, sleep stall frees it', async () => {
    // Progress per CPU-ms (efficiency) does not depend on how much CPU other processes leave us.
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
    // It spins: it does not block.
    expect(half.blocks, seen).toBeLessThan(30);
    await busy.pause();

    const sleepy = await start({ ramBytes: 4 * MiB, workload: { name: 'zipf' }, dvfsStall: 'sleep' });
    await sleep(300);
    const sleepyFull = await measure(sleepy);
    sleepy.setFrequency(0.25);
    const quarter = await measure(sleepy);
    // Sleep stall: the vCPU blocks after every slice (measured 225-490 times a second up to load average 18; a
    // spinning vCPU 0-8 times, for garbage collection), so its CPU share falls with the frequency, and so does
    // its progress, to about a quarter of what a whole CPU gives.
    const seen2 = JSON.stringify({ sleepyFull, quarter });
    expect(quarter.blocks, seen2).toBeGreaterThan(100);
    expect(quarter.cpu, seen2).toBeLessThan(0.45);
    expect(quarter.rate / eff(sleepyFull), seen2).toBeLessThan(0.45);
    // Work per CPU-ms falls far less than with a busy stall (which gives at most 0.25 here), but it does fall:
    // each slice is 0.25 ms of work, and each of the hundreds of wake-ups a second pays the timer, the scheduler
    // and a cold cache out of the vCPU's own CPU time. Measured 0.5-0.75 on a quiet host, down to 0.39 during a
    // full test run at load average 10, hence 0.3.
    expect(eff(quarter) / eff(sleepyFull), seen2).toBeGreaterThan(0.3);
  });

  it('a light vCPU (CAP 1, a low frequency, sleep stall) costs about its share, not a floor of wake-ups', async () => {
    // CAP 1 at frequency 0.05 is 0.05 % of a core. Woken twice per 30-ms period (a stall, then the CAP wait), the
    // thread paid 35-60 µs of CPU per wake-up on this kind of VM and a whole batch of steps per period: about 1 % of
    // a core, twenty times its share (cluster guests at a low trace ran far above it). The wake-ups are the check: a
    // loaded host wakes the thread no more often. Its CPU is bounded loosely: each wake-up after a long sleep costs
    // more on a loaded host (cold caches: 0.41 % of a core at 4 wake-ups a second, load 11-19).
    const g = await start({ ramBytes: 4 * MiB, workload: { name: 'zipf' }, dvfsStall: 'sleep' });
    g.setCap(1);
    g.setFrequency(0.05);
    await sleep(300);
    const light = await measure(g, { wallMs: 1500 });
    const seen = JSON.stringify(light);
    expect(light.rate, seen).toBeGreaterThan(0); // it still runs
    expect(light.blocks, seen).toBeLessThan(20); // measured 4-7 a second; 60-65 before
    // Measured 0.1-0.4 % of a core at load 11-19 but 1.3-2.3 % on an idle host (3-5 % before the fix there; the
    // cause is not traced). So the CPU bound only says the vCPU is no hog; the wake-ups above tell the fix from the
    // old loop on any host.
    expect(light.cpu, seen).toBeLessThan(0.1);
  });

  it('a capped vCPU at a lower frequency with sleep stall wakes once per CAP period, not once per slice', async () => {
    // CAP 10 at frequency 0.5 (the cluster grants c % of a core as CAP × frequency): 3 ms of budget per 30-ms
    // period. Worked in 1-ms slices it slept a 0.5-ms stall after each (3 wake-ups a period, 100 a second), and on
    // a loaded host each such sleep overran by milliseconds that the budget paid for: the guest got less than its
    // grant. Now the budget is one phase and one sleep to the period's end: 33 a second.
    const g = await start({ ramBytes: 4 * MiB, workload: { name: 'zipf' }, dvfsStall: 'sleep' });
    g.setCap(10);
    g.setFrequency(0.5);
    await sleep(300);
    const m = await measure(g, { wallMs: 1500 });
    const seen = JSON.stringify(m);
    expect(m.rate, seen).toBeGreaterThan(0);
    expect(m.blocks, seen).toBeLessThan(60); // a loaded host wakes it no more often
    expect(m.cpu, seen).toBeLessThan(0.1); // 5 % of a core granted: no hog
  });

  it('writeRate paces the dirty rate, and CAP and DVFS slow a paced workload too', async () => {
    const g = await start({ ramBytes: 4 * MiB, workload: { name: 'zipf', params: { writeRate: 2000 } } });
    const paced = await measure(g, { wallMs: 600 });
    expect(paced.rate).toBeGreaterThan(1000);
    expect(paced.rate).toBeLessThan(2600);
    expect(paced.cpu).toBeLessThan(0.5); // pacing sleeps, it does not spin
    g.setCap(25);
    const capped = await measure(g, { wallMs: 600 });
    expect(capped.rate).toBeLessThan(0.45 * 2000);
    g.setCap(0);
    g.setFrequency(0.5);
    const slow = await measure(g, { wallMs: 600 });
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
