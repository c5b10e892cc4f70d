/**
 * The meter against the kernel's own counts (a real guest's vCPU threads), its labels, its energy arithmetic,
 * and RAPL on a fake powercap tree.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Guest } from '../guest/index.js';
import { energyOver, PowerMeter, type PowerSample, SERIES_LABELS, windowOver } from './meter.js';
import { i7920DvfsModel, linearPowerModel } from './models.js';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function sample(at: number, intervalMs: number, watts: number, raplWatts: number | null): PowerSample {
  return {
    at,
    intervalMs,
    vcpuCpuMs: 0,
    mainCpuMs: 0,
    otherCpuMs: 0,
    utilisation: 0,
    dvfsState: 0,
    ghz: null,
    watts,
    raplWatts,
    guests: [],
  };
}

describe('energyOver', () => {
  const s = [sample(1000, 1000, 100, 50), sample(2000, 1000, 200, 60), sample(3000, 1000, 150, 70)];

  it('integrates watts over the window, cutting samples that straddle its edges', () => {
    // 1.5–2.5 s: half of the 200 W sample, half of the 150 W one.
    const e = energyOver(s, 1500, 2500)!;
    expect(e.joules).toBeCloseTo(100 + 75, 9);
    expect(e.durationMs).toBe(1000);
    expect(e.averageWatts).toBeCloseTo(175, 9);
    expect(e.peakWatts).toBe(200);
    expect(e.label).toBe('modelled');
  });

  it('labels RAPL figures measured, and has none when a sample has no RAPL reading', () => {
    const m = energyOver(s, 0, 3000, 'measured')!;
    expect(m.label).toBe('measured');
    expect(m.joules).toBeCloseTo(50 + 60 + 70, 9);
    expect(energyOver([sample(1000, 1000, 100, null)], 0, 1000, 'measured')).toBeNull();
    expect(energyOver(s, 5000, 6000)).toBeNull();
  });
});

describe('PowerMeter on real threads', () => {
  it("counts a guest's vCPU CPU time as the kernel does and models watts from it, labelled", async () => {
    const g = await Guest.create({ ramBytes: 4 * MiB, workload: { name: 'twolf' } });
    cleanups.push(() => g.destroy());
    const meter = new PowerMeter({
      host: {
        pid: process.pid,
        guests: () => [
          { id: 'g', tids: g.threadIds(), steps: g.steps()[0]!, cap: g.cap, frequency: g.frequency },
        ],
      },
      model: i7920DvfsModel(),
      raplRoot: null,
    });
    const c0 = g.cpuTimeMs()[0]!;
    meter.sample();
    g.resume();
    // Stop on CPU time, not wall time: the machine may be busy.
    while (g.cpuTimeMs()[0]! - c0 < 200) await sleep(20);
    await g.pause();
    const last = meter.sample();
    const c1 = g.cpuTimeMs()[0]!;
    const samples = meter.samples();
    const metered = samples.reduce((a, s) => a + (s.guests[0]?.cpuMs ?? 0), 0);
    // Same kernel counter (schedstat), read a few microseconds apart.
    expect(metered).toBeGreaterThan(190);
    expect(Math.abs(metered - (c1 - c0))).toBeLessThan(5);
    const busy = last.vcpuCpuMs + last.mainCpuMs + last.otherCpuMs;
    expect(last.utilisation).toBeCloseTo(Math.min(1, busy / (last.intervalMs * meter.capacityCores)), 9);
    expect(last.watts).toBeCloseTo(i7920DvfsModel().powerAt(last.utilisation, 8), 9);
    expect(last.raplWatts).toBeNull();
    expect(meter.series().labels).toEqual(SERIES_LABELS);
    expect(SERIES_LABELS).toMatchObject({
      watts: 'modelled',
      utilisation: 'measured',
      raplWatts: 'measured',
    });
    // Progress: the window sees the guest's steps.
    const w = windowOver(samples, samples[0]!.at - samples[0]!.intervalMs, last.at);
    expect(w.guests.get('g')!.stepsPerSec).toBeGreaterThan(0);
  });

  it('reads RAPL package counters where they exist and reports their watts as measured', async () => {
    const root = mkdtempSync(join(tmpdir(), 'livemig-meter-rapl-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const zone = (id: string, name: string, uj: number) => {
      mkdirSync(join(root, id), { recursive: true });
      writeFileSync(join(root, id, 'name'), `${name}\n`);
      writeFileSync(join(root, id, 'energy_uj'), `${uj}\n`);
      writeFileSync(join(root, id, 'max_energy_range_uj'), '262143328850\n');
    };
    zone('intel-rapl:0', 'package-0', 1_000_000);
    zone('intel-rapl:0:0', 'core', 500_000);
    const meter = new PowerMeter({
      host: { pid: process.pid, guests: () => [] },
      model: linearPowerModel(50, 100),
      raplRoot: root,
    });
    expect(meter.rapl).toBe(true);
    await sleep(200);
    // 20 J more on the package (the core sub-zone is inside it and must not be added again).
    zone('intel-rapl:0', 'package-0', 21_000_000);
    zone('intel-rapl:0:0', 'core', 10_500_000);
    const s = meter.sample();
    expect(s.raplWatts).toBeCloseTo(20_000 / s.intervalMs, 6);
    const measured = energyOver(meter.samples(), 0, Date.now(), 'measured')!;
    expect(measured.label).toBe('measured');
    expect(measured.joules).toBeCloseTo(20, 6);
    expect(meter.series().rapl).toBe(true);
  });
});

describe('PowerMeter sampling period', () => {
  it('samples every 250 ms while nothing listens and every 100 ms while a controller takes each sample', () => {
    vi.useFakeTimers();
    cleanups.push(() => {
      vi.useRealTimers();
    });
    const meter = new PowerMeter({
      host: { pid: process.pid, guests: () => [] },
      model: linearPowerModel(50, 100),
      raplRoot: null,
    });
    cleanups.push(() => meter.stop());
    expect(meter.periodMs).toBe(250);
    meter.start();
    vi.advanceTimersByTime(1000);
    expect(meter.samples().length).toBe(4);
    const taken: PowerSample[] = [];
    const off = meter.onSample((s) => taken.push(s));
    expect(meter.periodMs).toBe(100);
    vi.advanceTimersByTime(1000);
    expect(taken.length).toBe(10);
    off();
    expect(meter.periodMs).toBe(250);
    vi.advanceTimersByTime(1000);
    expect(taken.length).toBe(10);
    expect(meter.samples().length).toBe(4 + 10 + 4);
  });
});
