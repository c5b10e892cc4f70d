/**
 * Guest benchmark: `npm run bench:guest` (node --import tsx bench/guest.bench.ts).
 *
 * - Dirty rate per workload, one vCPU, uncapped, 256 MiB guest (gap's 200 MiB working set fits): steps/s, page
 *   writes/s, distinct dirty pages per 100 ms sync (what a pre-copy round would see), vCPU CPU share.
 * - CAP and DVFS: zipf's progress and CPU share at several CAP values and frequencies.
 * - pause() latency of a running guest (the time to park every vCPU).
 * - DirtyLog.sync() time over 1 GiB and 8 GiB of RAM: clean log, 1% dirty, all dirty.
 *
 * Writes results/bench-guest.json. Flags: --quick (shorter windows, for a smoke run).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import Table from 'cli-table3';
import { Guest, WORKLOAD_NAMES, type WorkloadName } from '../src/guest/index.js';

const QUICK = process.argv.includes('--quick');
const WINDOW_MS = QUICK ? 500 : 2000;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const LOAD_AT_START = os.loadavg();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

function totalWrites(g: Guest): number {
  let n = 0;
  for (const c of g.dirtyLog.writeCounts()) n += c;
  return n;
}

interface RateRow {
  workload: WorkloadName;
  createMs: number;
  stepsPerSec: number;
  pageWritesPerSec: number;
  dirtyPagesPer100ms: number;
  cpuShare: number;
}

async function dirtyRate(name: WorkloadName): Promise<RateRow> {
  const t0 = performance.now();
  const g = await Guest.create({ ramBytes: 256 * MiB, workload: { name } });
  const createMs = performance.now() - t0;
  try {
    g.resume();
    await sleep(300); // JIT warm-up
    g.dirtyLog.sync();
    const s0 = g.steps()[0]!;
    const w0 = totalWrites(g);
    const c0 = g.cpuTimeMs()[0]!;
    const start = performance.now();
    const perSync: number[] = [];
    while (performance.now() - start < WINDOW_MS) {
      await sleep(100);
      perSync.push(g.dirtyLog.sync().length);
    }
    const dt = (performance.now() - start) / 1000;
    return {
      workload: name,
      createMs,
      stepsPerSec: (g.steps()[0]! - s0) / dt,
      pageWritesPerSec: (totalWrites(g) - w0) / dt,
      dirtyPagesPer100ms: median(perSync),
      cpuShare: (g.cpuTimeMs()[0]! - c0) / (dt * 1000),
    };
  } finally {
    await g.destroy();
  }
}

interface ThrottleRow {
  setting: string;
  stepsPerSec: number;
  /** Progress relative to an uncapped, full-frequency window measured just before (drift-resistant). */
  relative: number;
  cpuShare: number;
  /** Steps per CPU-ms relative to the uncapped window: ~1 for CAP and sleep stall, ~f for busy DVFS stall. */
  relativeEfficiency: number;
}

async function window(g: Guest, ms: number): Promise<{ rate: number; cpu: number }> {
  await sleep(60); // let the setting take effect
  const s0 = g.steps()[0]!;
  const c0 = g.cpuTimeMs()[0]!;
  const t = performance.now();
  await sleep(ms);
  const dt = (performance.now() - t) / 1000;
  return { rate: (g.steps()[0]! - s0) / dt, cpu: (g.cpuTimeMs()[0]! - c0) / (dt * 1000) };
}

async function throttle(): Promise<ThrottleRow[]> {
  const g = await Guest.create({ ramBytes: 64 * MiB, workload: { name: 'zipf' } });
  const rows: ThrottleRow[] = [];
  try {
    g.resume();
    await sleep(300);
    const settings: [string, number, number][] = [
      ['CAP 50', 50, 1],
      ['CAP 25', 25, 1],
      ['CAP 15', 15, 1],
      ['f=0.75', 0, 0.75],
      ['f=0.5', 0, 0.5],
      ['f=0.25', 0, 0.25],
      ['CAP 50, f=0.5', 50, 0.5],
    ];
    for (const [setting, cap, f] of settings) {
      g.setCap(0);
      g.setFrequency(1);
      const base = await window(g, WINDOW_MS / 2);
      g.setCap(cap);
      g.setFrequency(f);
      const m = await window(g, WINDOW_MS / 2);
      rows.push({
        setting,
        stepsPerSec: m.rate,
        relative: m.rate / base.rate,
        cpuShare: m.cpu,
        relativeEfficiency: m.rate / m.cpu / (base.rate / base.cpu),
      });
    }
  } finally {
    await g.destroy();
  }
  return rows;
}

async function pauseLatency(): Promise<{ vcpus: number; medianMs: number; maxMs: number }[]> {
  const out: { vcpus: number; medianMs: number; maxMs: number }[] = [];
  for (const vcpus of [1, 2]) {
    const g = await Guest.create({ ramBytes: 64 * MiB, vcpus, workload: { name: 'gap' } });
    const times: number[] = [];
    try {
      for (let i = 0; i < (QUICK ? 10 : 40); i++) {
        g.resume();
        await sleep(20);
        const t = performance.now();
        await g.pause();
        times.push(performance.now() - t);
      }
    } finally {
      await g.destroy();
    }
    out.push({ vcpus, medianMs: median(times), maxMs: Math.max(...times) });
  }
  return out;
}

interface SyncRow {
  ram: string;
  pages: number;
  cleanMs: number;
  onePercentMs: number;
  allDirtyMs: number;
}

async function syncCost(): Promise<SyncRow[]> {
  const rows: SyncRow[] = [];
  for (const ramBytes of [GiB, 8 * GiB]) {
    const g = await Guest.create({ ramBytes, workload: { name: 'idle' } });
    try {
      const log = g.dirtyLog;
      const time = (prepare: () => void) => {
        const xs: number[] = [];
        for (let i = 0; i < 7; i++) {
          prepare();
          const t = performance.now();
          log.sync();
          xs.push(performance.now() - t);
        }
        return median(xs);
      };
      const pages = g.ram.pageCount;
      const cleanMs = time(() => {});
      // ~1% dirty: one page in every 96 (one bit in every third bitmap word).
      const words = log.buffers.bitmaps.map((b) => new Int32Array(b));
      const onePercentMs = time(() => {
        for (const w of words) for (let i = 0; i < w.length; i += 3) w[i] = 1;
      });
      const allDirtyMs = time(() => log.markAll());
      rows.push({ ram: `${ramBytes / GiB} GiB`, pages, cleanMs, onePercentMs, allDirtyMs });
    } finally {
      await g.destroy();
    }
  }
  return rows;
}

async function main(): Promise<void> {
  console.log(
    `guest benchmark${QUICK ? ' (quick)' : ''}: ${os.cpus().length} CPUs, load ${LOAD_AT_START.map((l) => l.toFixed(2)).join(' ')}`,
  );
  const rates: RateRow[] = [];
  for (const name of WORKLOAD_NAMES) rates.push(await dirtyRate(name));
  const t1 = new Table({
    head: ['workload', 'create ms', 'steps/s', 'page writes/s', 'dirty pages / 100 ms', 'vCPU CPU'],
  });
  for (const r of rates) {
    t1.push([
      r.workload,
      r.createMs.toFixed(0),
      Math.round(r.stepsPerSec).toLocaleString('en'),
      Math.round(r.pageWritesPerSec).toLocaleString('en'),
      r.dirtyPagesPer100ms.toLocaleString('en'),
      `${(r.cpuShare * 100).toFixed(0)}%`,
    ]);
  }
  console.log('\nDirty rate, 1 vCPU, 256 MiB guest, uncapped');
  console.log(t1.toString());

  const thr = await throttle();
  const t2 = new Table({
    head: ['zipf, 1 vCPU', 'steps/s', 'of uncapped', 'vCPU CPU', 'steps per CPU-ms, of uncapped'],
  });
  for (const r of thr) {
    t2.push([
      r.setting,
      Math.round(r.stepsPerSec).toLocaleString('en'),
      `${(r.relative * 100).toFixed(0)}%`,
      `${(r.cpuShare * 100).toFixed(0)}%`,
      `${(r.relativeEfficiency * 100).toFixed(0)}%`,
    ]);
  }
  console.log('\nCAP and DVFS (busy stall)');
  console.log(t2.toString());

  const pauses = await pauseLatency();
  const t3 = new Table({ head: ['pause() of gap', 'median ms', 'max ms'] });
  for (const p of pauses) t3.push([`${p.vcpus} vCPU`, p.medianMs.toFixed(2), p.maxMs.toFixed(2)]);
  console.log('\npause() latency');
  console.log(t3.toString());

  const syncs = await syncCost();
  const t4 = new Table({ head: ['DirtyLog.sync()', 'pages', 'clean ms', '~1% dirty ms', 'all dirty ms'] });
  for (const s of syncs) {
    t4.push([
      s.ram,
      s.pages.toLocaleString('en'),
      s.cleanMs.toFixed(2),
      s.onePercentMs.toFixed(2),
      s.allDirtyMs.toFixed(2),
    ]);
  }
  console.log('\nsync() cost (median of 7)');
  console.log(t4.toString());

  const result = {
    benchmark: 'guest',
    date: new Date().toISOString(),
    quick: QUICK,
    node: process.version,
    cpus: os.cpus().length,
    loadAverageAtStart: LOAD_AT_START,
    loadAverageAtEnd: os.loadavg(),
    windowMs: WINDOW_MS,
    dirtyRate: rates,
    throttle: thr,
    pauseLatency: pauses,
    sync: syncs,
  };
  mkdirSync('results', { recursive: true });
  writeFileSync('results/bench-guest.json', `${JSON.stringify(result, null, 2)}\n`);
  console.log('wrote results/bench-guest.json');
}

await main();
