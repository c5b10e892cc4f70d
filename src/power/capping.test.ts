/**
 * Capping policies on the seed's i7-920 model, the adaptive controller on a fake host (a meter whose CPU figures
 * follow the CAPs it sets), and the CAP really limiting a real guest's CPU time through a migration session.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Guest } from '../guest/index.js';
import {
  capForBudget,
  capForCompletion,
  chooseDvfsState,
  controllerStep,
  type HostLoad,
  predictWatts,
} from './capping.js';
import { HostPower } from './host.js';
import { windowOver } from './meter.js';
import { i7920DvfsModel } from './models.js';
import { MiB, newReport, OPTIONS, sleep } from './session.fixtures.js';
import type { PowerSessionOptions } from './session-view.js';

const i7 = i7920DvfsModel();
const TOP = i7.states.length - 1;

describe('DVFS state for a budget', () => {
  it('keeps the fastest state that fits, down to the seed’s 1.73 GHz for a busy host at 136 W', () => {
    expect(chooseDvfsState(i7, 1, 150.01)).toEqual({ state: TOP, met: true });
    const s = chooseDvfsState(i7, 1, 136);
    expect(s.met).toBe(true);
    expect(i7.states[s.state]!.ghz).toBeCloseTo(1.733, 3);
    expect(i7.powerAt(1, s.state)).toBeLessThanOrEqual(136);
    expect(i7.powerAt(1, s.state + 1)).toBeGreaterThan(136);
    // Below static power no state helps: the slowest, flagged.
    expect(chooseDvfsState(i7, 1, 120)).toEqual({ state: 0, met: false });
  });
});

describe('CAP for a budget', () => {
  // 4 cores; 3 other VMs at 0.9 CPU each, the migrating VM at 0.9, the migration thread at 0.4.
  const load: HostLoad = { cpus: 3 * 0.9 + 0.9 + 0.4, vmCpus: 0.9, vmVcpus: 1, capacity: 4 };

  it('gives the largest CAP whose predicted power is within the budget', () => {
    const budget = 147;
    const { cap, met } = capForBudget(i7, TOP, load, 0, budget);
    expect(met).toBe(true);
    expect(predictWatts(i7, TOP, load, cap / 100)).toBeLessThanOrEqual(budget);
    expect(predictWatts(i7, TOP, load, (cap + 1) / 100)).toBeGreaterThan(budget);
  });

  it('cannot go below what the other VMs draw: CAP 1, not met', () => {
    expect(capForBudget(i7, TOP, load, 0, 140)).toEqual({ cap: 1, met: false });
  });

  it('assumes a VM held at its CAP wants its whole vCPU when the CAP rises', () => {
    const held: HostLoad = { ...load, cpus: load.cpus - 0.9 + 0.15, vmCpus: 0.15 };
    // At CAP 15 it uses 0.15: raising to 60 is predicted at 0.6, not at 0.15.
    const c = capForBudget(i7, TOP, held, 15, predictWatts(i7, TOP, held, 0.6)).cap;
    expect(c).toBe(60);
  });
});

describe('CAP for completion', () => {
  const load: HostLoad = { cpus: 2, vmCpus: 0.5, vmVcpus: 1, capacity: 4 };
  it('scales the CAP so the dirty rate fits what the time left allows', () => {
    // 2000 pages/s dirtied at 50 % CPU; 4000 pages/s sent; 8000 pages owed; 4 s left, aimed at 3.6 s
    // → may dirty 4000 − 8000/3.6 = 1778 pages/s → CAP 50 · 1778/2000.
    const round = {
      dirtyPagesPerSec: 2000,
      sendPagesPerSec: 4000,
      remainingPages: 8000,
      elapsedMs: 6000,
      targetMs: 10_000,
    };
    expect(capForCompletion(round, load, 0)).toBe(44);
    // Only 2 s left: may dirty 0/s → the minimum.
    expect(capForCompletion({ ...round, elapsedMs: 8000 }, load, 0)).toBe(1);
    // No target: dirty at most half of what is sent.
    expect(capForCompletion({ ...round, targetMs: 0 }, load, 0)).toBe(50);
    expect(capForCompletion({ ...round, dirtyPagesPerSec: 0 }, load, 0)).toBe(100);
  });
});

/**
 * A fake host for the controller: 4 cores, three busy VMs, a migration thread, and a migrating VM whose CPU use and
 * dirty rate follow its CAP (a CPU-bound writer). Pre-copy rounds are simulated from the dirty and send rates.
 */
function simulate(opts: { budget: number; targetMs: number; adaptive: boolean; fixedCap?: number }) {
  const others = 3 * 0.95;
  const thread = 0.5;
  const demand = 1; // the VM alone would use a whole CPU
  const pagesPerCpuSec = 6000; // dirty pages per second per CPU the VM gets
  const send = 4000; // pages/s the link carries
  let cap = opts.fixedCap ?? 0;
  let remaining = 30_000;
  let elapsed = 0;
  const watts: number[] = [];
  for (let round = 1; round <= 200 && remaining > 300; round++) {
    const vm = Math.min(demand, cap > 0 ? cap / 100 : demand);
    const load: HostLoad = { cpus: others + thread + vm, vmCpus: vm, vmVcpus: 1, capacity: 4 };
    const w = predictWatts(i7, TOP, load);
    const ms = (remaining / send) * 1000;
    const dirty = vm * pagesPerCpuSec * (ms / 1000);
    elapsed += ms;
    if (round > 1) watts.push(w); // round 1 runs before the controller has measured anything
    remaining = dirty;
    if (opts.adaptive) {
      const d = controllerStep({
        model: i7,
        state: TOP,
        load,
        watts: w,
        budget: opts.budget,
        currentCap: cap,
        round: {
          dirtyPagesPerSec: (dirty * 1000) / ms,
          sendPagesPerSec: send,
          remainingPages: remaining,
          elapsedMs: elapsed,
          targetMs: opts.targetMs,
        },
      });
      cap = d.cap;
    }
  }
  return { watts, elapsed, converged: remaining <= 300, cap };
}

describe('adaptive CAP controller (fake meter)', () => {
  it('keeps modelled power under the budget from the first measured round on, and bounds the completion time', () => {
    const uncapped = simulate({ budget: 0, targetMs: 0, adaptive: false });
    const budget = 146;
    expect(Math.max(...uncapped.watts)).toBeGreaterThan(budget);
    const a = simulate({ budget, targetMs: 30_000, adaptive: true });
    expect(a.converged).toBe(true);
    for (const w of a.watts) expect(w).toBeLessThanOrEqual(budget + 1e-9);
    expect(a.elapsed).toBeLessThanOrEqual(30_000);
  });

  it('meets a deadline a fixed CAP chosen for power alone misses', () => {
    const budget = 149.5;
    const fixed = capForBudget(
      i7,
      TOP,
      { cpus: 3 * 0.95 + 0.5 + 1, vmCpus: 1, vmVcpus: 1, capacity: 4 },
      0,
      budget,
    ).cap;
    const f = simulate({ budget, targetMs: 0, adaptive: false, fixedCap: fixed });
    // Round 1 (7.5 s, uncapped) leaves 45 000 pages, at least 11.25 s more: 26 s is a feasible target.
    const a = simulate({ budget, targetMs: 26_000, adaptive: true });
    expect(a.converged).toBe(true);
    expect(f.elapsed).toBeGreaterThan(26_000);
    expect(a.elapsed).toBeLessThanOrEqual(26_000);
    for (const w of a.watts) expect(w).toBeLessThanOrEqual(budget + 1e-9);
  });
});

describe('capping a real guest through a migration session', () => {
  const guests: Guest[] = [];
  afterEach(async () => {
    for (const g of guests.splice(0)) await g.destroy();
  });

  const begin = async (options: Partial<PowerSessionOptions>) => {
    const vm = await Guest.create({ ramBytes: 4 * MiB, workload: { name: 'twolf' } });
    const other = await Guest.create({ ramBytes: 4 * MiB, workload: { name: 'twolf' } });
    guests.push(vm, other);
    const host = new HostPower({
      guests: () => [
        { id: 'vm', guest: vm },
        { id: 'other', guest: other },
      ],
      raplRoot: null,
    });
    const o: PowerSessionOptions = { ...OPTIONS, ...options };
    // Nobody at the destination: its figure must come back null.
    const report = newReport('127.0.0.1:1');
    vm.resume();
    other.resume();
    const session = host.beginMigration({ guestId: 'vm', guest: vm, options: o, report });
    return { vm, other, host, report, session };
  };

  it('CAP 15 holds the migrating VM to at most ~15 % of a CPU (kernel CPU time), and is undone on failure', async () => {
    const { vm, host, report, session } = await begin({ capping: 'cap', migrationCap: 15 });
    report.status = 'active';
    session.onProgress(report);
    expect(vm.cap).toBe(15);
    expect(report.cap.at(-1)?.cap).toBe(15);
    await sleep(100);
    const from = Date.now();
    host.meter.sample();
    await sleep(1500);
    host.meter.sample();
    const w = windowOver(host.meter.samples(from - 1000), from, Date.now());
    // The CAP counts wall time, so a loaded host only gives the VM less: an upper bound is exact.
    expect(w.guests.get('vm')!.cpus).toBeLessThan(0.2);
    report.status = 'failed';
    await session.finish(report);
    expect(vm.cap).toBe(0);
    expect(report.energy?.source.label).toBe('modelled');
    expect(report.energy?.source.joules).toBeGreaterThan(0);
    expect(report.energy?.destination).toBeNull();
    expect(report.energy?.vms.map((v) => v.guestId).sort()).toEqual(['other', 'vm']);
  });

  it('DVFS slows every guest on the host and is undone when the migration ends', async () => {
    const { vm, other, host, report, session } = await begin({ capping: 'dvfs', dvfsGhz: 1.7 });
    report.status = 'active';
    session.onProgress(report);
    expect(vm.frequency).toBeCloseTo(1.7333 / 2.6667, 3);
    expect(other.frequency).toBeCloseTo(vm.frequency, 9);
    expect(host.meter.dvfsState).toBe(1);
    report.status = 'completed';
    await session.finish(report);
    expect(vm.frequency).toBe(1);
    expect(other.frequency).toBe(1);
    expect(host.meter.dvfsState).toBe(TOP);
    expect(report.energy?.capping.dvfsGhz).toBeCloseTo(1.733, 3);
  });

  it('hybrid: CAP first, then DVFS for what the CAP cannot reach', async () => {
    // 125 W is just above the i7-920's static power: no CAP alone reaches it on a busy host.
    const { vm, other, host, report, session } = await begin({ capping: 'hybrid', powerCap: 125 });
    await sleep(1000); // decisions use the last second of measurements: let the guests run in it
    report.status = 'active';
    session.onProgress(report);
    // The other guest alone keeps the host above 125 W at the top state: the CAP goes to its floor and DVFS drops.
    expect(vm.cap).toBe(1);
    const state = host.meter.dvfsState;
    expect(state).toBeLessThan(TOP);
    expect(other.frequency).toBeCloseTo(i7.states[state]!.ghz / i7.states[TOP]!.ghz, 9);
    report.status = 'completed';
    await session.finish(report);
    expect(other.frequency).toBe(1);
    expect(report.energy?.capping.mode).toBe('hybrid');
  });

  it('refuses DVFS capping on a model without DVFS states, and capping without a budget', async () => {
    await expect(begin({ capping: 'dvfs', dvfsGhz: 1.7, powerModel: 'hpProLiantMl110G5' })).rejects.toThrow(
      /DVFS states/,
    );
    await expect(begin({ capping: 'cap' })).rejects.toThrow(/--power-cap/);
  });
});
