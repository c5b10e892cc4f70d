/**
 * cache-size: how big the XBZRLE cache must be, whether dynamic sizing finds that size on its own, and what
 * associativity buys. A static sweep (a few sizes up to RAM) against `--cache-sizing dynamic` (budget = RAM), and
 * 1-, 2- and 4-way caches at one size that is too small to hold every resent page.
 */
import { lineChart } from '../report/index.js';
import {
  type ExperimentWorkload,
  find,
  guest,
  MiB,
  mib,
  ms,
  ok,
  PAGE,
  sizes,
  statusOf,
  tracesOf,
} from './common.js';
import type { Cell, CellResult, Experiment, ExperimentConfig, Summary } from './types.js';

function workloads(cfg: ExperimentConfig): ExperimentWorkload[] {
  if (cfg.mode === 'tiny') return ['zipf'];
  if (cfg.mode === 'quick') return ['zipf', 'gap'];
  return ['zipf', 'kv', 'gap', ...tracesOf(cfg, ['full'])];
}

function staticSizes(cfg: ExperimentConfig): number[] {
  const ram = sizes(cfg).ramBytes;
  if (cfg.mode === 'tiny') return [1 * MiB, ram];
  if (cfg.mode === 'quick') return [1 * MiB, 4 * MiB, 16 * MiB, ram];
  return [1 * MiB, 4 * MiB, 16 * MiB, 64 * MiB, ram];
}

/** The size at which associativity is compared: a quarter of RAM (too small for every resent page). */
function waysSize(cfg: ExperimentConfig): number {
  return Math.max(1 * MiB, sizes(cfg).ramBytes / 4);
}

function waysOf(cfg: ExperimentConfig): number[] {
  return cfg.mode === 'tiny' ? [] : [1, 2, 4];
}

function plan(cfg: ExperimentConfig): Cell[] {
  const { warmupMs, ramBytes } = sizes(cfg);
  const cells: Cell[] = [];
  const bw = cfg.mode === 'tiny' ? 64 * MiB : 32 * MiB;
  for (const w of workloads(cfg)) {
    // Whole RAM in use, 6000 pages/s written: several rounds, each resending pages the cache may still hold.
    const g = guest(cfg, w, { writeRate: 6000, workingSetFraction: 1 });
    const base = { maxBandwidth: bw, xbzrle: true, compress: 'none' as const };
    for (const size of staticSizes(cfg)) {
      cells.push({
        id: `${w}/static/${size}`,
        labels: { workload: w, sizing: 'static', 'cache MiB': size / MiB, ways: 2 },
        spec: {
          guest: g,
          warmupMs,
          options: { ...base, cacheSizing: 'static', xbzrleCacheBytes: size, cacheWays: 2 },
        },
      });
    }
    cells.push({
      id: `${w}/dynamic`,
      labels: { workload: w, sizing: 'dynamic', 'cache MiB': ramBytes / MiB, ways: 2 },
      spec: {
        guest: g,
        warmupMs,
        options: { ...base, cacheSizing: 'dynamic', xbzrleCacheMaxBytes: ramBytes, cacheWays: 2 },
      },
    });
    for (const ways of waysOf(cfg)) {
      if (ways === 2 && staticSizes(cfg).includes(waysSize(cfg))) continue; // already in the sweep
      cells.push({
        id: `${w}/ways/${ways}`,
        labels: { workload: w, sizing: 'static', 'cache MiB': waysSize(cfg) / MiB, ways },
        spec: {
          guest: g,
          warmupMs,
          options: { ...base, cacheSizing: 'static', xbzrleCacheBytes: waysSize(cfg), cacheWays: ways },
        },
      });
    }
  }
  return cells;
}

/**
 * Hit rate on resent pages: round 1's lookups are first sends and always miss, so they are left out (round 1's
 * non-zero pages ≈ its wire bytes ÷ page size).
 */
function hitRate(r: CellResult): number {
  const m = r.measured;
  const firstSends = Math.round(m.round1Bytes / PAGE);
  const n = m.cacheHits + Math.max(0, m.cacheMisses - firstSends);
  return n > 0 ? m.cacheHits / n : 0;
}

function row(w: string, label: string, r: CellResult): (string | number)[] {
  const m = r.measured;
  return [
    w,
    label,
    mib(m.cacheBytesPeak),
    mib(m.bytes),
    `${(hitRate(r) * 100).toFixed(1)}%`,
    m.cacheMisses,
    m.rounds,
    ms(m.migrationTimeMs),
    ms(m.downtimeMs),
    statusOf(r),
  ];
}

function summarise(results: readonly CellResult[], cfg: ExperimentConfig): Summary {
  const sweep: (string | number)[][] = [];
  const waysRows: (string | number)[][] = [];
  const chart: Record<string, string | number>[] = [];
  const findings: string[] = [];
  for (const w of workloads(cfg)) {
    const statics: CellResult[] = [];
    for (const size of staticSizes(cfg)) {
      const r = find(results, { workload: w, sizing: 'static', 'cache MiB': size / MiB, ways: 2 });
      if (!r) continue;
      sweep.push(row(w, `static ${size / MiB} MiB`, r));
      if (ok(r)) {
        statics.push(r);
        chart.push({ workload: w, 'cache MiB': size / MiB, 'MiB sent': mib(r.measured.bytes) });
      }
    }
    const dyn = find(results, { workload: w, sizing: 'dynamic' });
    if (dyn) {
      const resizes = dyn.measured.cacheResizes;
      const last = dyn.measured.cacheBytes;
      sweep.push(
        row(w, `dynamic (${resizes} resize${resizes === 1 ? '' : 's'}, ends at ${mib(last)} MiB)`, dyn),
      );
    }
    const best = statics.reduce<CellResult | undefined>(
      (a, r) => (!a || r.measured.bytes < a.measured.bytes ? r : a),
      undefined,
    );
    if (best && ok(dyn)) {
      const d = dyn!.measured;
      const within = d.bytes <= best.measured.bytes * 1.1;
      const leaner = d.cacheBytesPeak <= best.measured.cacheBytesPeak;
      findings.push(
        `${w}: the best static size was ${mib(best.measured.cacheBytesPeak)} MiB (${mib(best.measured.bytes)} MiB ` +
          `sent). Dynamic sizing sent ${mib(d.bytes)} MiB (${((d.bytes / best.measured.bytes - 1) * 100).toFixed(1)}% ` +
          `vs best) with a peak cache of ${mib(d.cacheBytesPeak)} MiB after ${d.cacheResizes} resizes: ` +
          `${within ? 'within' : 'NOT within'} 10% of the best static size's bytes, ` +
          `${leaner ? 'using no more memory than it' : 'but using MORE memory than it'}.`,
      );
    }
    for (const ways of waysOf(cfg)) {
      const r = find(results, { workload: w, 'cache MiB': waysSize(cfg) / MiB, ways, sizing: 'static' });
      if (r) waysRows.push(row(w, `${ways}-way ${waysSize(cfg) / MiB} MiB`, r));
    }
    const ways = waysOf(cfg)
      .map((k) =>
        ok(find(results, { workload: w, 'cache MiB': waysSize(cfg) / MiB, ways: k, sizing: 'static' })),
      )
      .filter((r): r is CellResult => r !== undefined);
    if (ways.length > 1) {
      findings.push(
        `${w}: at ${waysSize(cfg) / MiB} MiB, resend hit rates ${ways
          .map((r) => `${r.labels.ways}-way ${(hitRate(r) * 100).toFixed(1)}%`)
          .join(', ')}; bytes ${ways.map((r) => `${mib(r.measured.bytes)} MiB`).join(', ')}.`,
      );
    }
  }
  const columns = [
    'workload',
    'cache',
    'cache peak MiB',
    'MiB sent',
    'resend hit rate',
    'misses',
    'rounds',
    'migration ms',
    'downtime ms',
    'status',
  ];
  return {
    tables: [
      { title: 'Static sweep and dynamic sizing (2-way)', slug: 'cache-size', columns, rows: sweep },
      ...(waysRows.length > 0
        ? [{ title: 'Associativity at one size', slug: 'cache-ways', columns, rows: waysRows }]
        : []),
    ],
    charts: [
      lineChart({
        title: 'Bytes sent against static XBZRLE cache size',
        values: chart,
        x: 'cache MiB',
        y: 'MiB sent',
        series: 'workload',
      }),
    ],
    findings,
  };
}

export const cacheSize: Experiment = {
  name: 'cache-size',
  title: 'XBZRLE cache: static sizes, dynamic sizing, associativity',
  description:
    'Migrates guests that use all of their RAM and write 6000 pages/s over a 32 MiB/s link, with XBZRLE and a ' +
    'static 2-way cache of several sizes up to RAM, then with --cache-sizing dynamic (budget = RAM), then with ' +
    '1-, 2- and 4-way caches of a quarter of RAM. Reports bytes, hit rate, rounds and time, and whether dynamic ' +
    "sizing comes within 10% of the best static size's bytes while committing no more memory (cacheBytesPeak).",
  plan,
  summarise,
};
