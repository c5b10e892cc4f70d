/**
 * codecs: what each page encoding buys and costs, per workload. The same seeded guest is migrated with zero-page
 * detection only, RLE, XBZRLE, a generic compressor, and XBZRLE + zstd; bytes on the wire, total time, downtime and
 * the source's CPU time are compared. "none" (every page raw, zero pages too) is derived from the zero-page run:
 * the engine always detects zero pages, so that row adds the zero pages' bytes, and their time at the link's limit.
 */
import type { MigrationOptions } from '../migration/index.js';
import { barChart } from '../report/index.js';
import {
  type ExperimentWorkload,
  find,
  guest,
  MiB,
  mib,
  ms,
  ok,
  PAGE,
  ratio,
  sizes,
  statusOf,
  tracesOf,
  workloadsOf,
} from './common.js';
import type { Cell, CellResult, Experiment, ExperimentConfig, Summary, SummaryTable } from './types.js';

interface Variant {
  name: string;
  options: Partial<MigrationOptions>;
}

function variants(cfg: ExperimentConfig): Variant[] {
  const { ramBytes } = sizes(cfg);
  // The cache holds every page (ramBytes): this experiment is about the codec, cache-size about the cache.
  const x = { xbzrle: true, xbzrleCacheBytes: ramBytes };
  const v: Variant[] = [
    { name: 'zero-page', options: { compress: 'none', xbzrle: false } },
    { name: 'rle', options: { compress: 'rle', xbzrle: false } },
    { name: 'xbzrle', options: { ...x, compress: 'none' } },
    { name: 'zstd', options: { compress: 'zstd', xbzrle: false } },
    { name: 'xbzrle+zstd', options: { ...x, compress: 'zstd' } },
  ];
  if (cfg.mode === 'full') {
    v.splice(3, 0, { name: 'deflate', options: { compress: 'deflate', xbzrle: false } });
    v.push({ name: 'lz4', options: { compress: 'lz4', xbzrle: false } });
  }
  if (cfg.mode === 'tiny') return v.filter((x) => x.name === 'zero-page' || x.name === 'xbzrle');
  return v;
}

/** The synthetic workloads, then (quick and full) the shipped traces of real programs. */
function codecWorkloads(cfg: ExperimentConfig): ExperimentWorkload[] {
  return [...workloadsOf(cfg), ...tracesOf(cfg, ['quick', 'full'])];
}

/** The link: slow enough that bytes matter for time (the machine moves ~100 MiB/s itself). */
function bandwidth(cfg: ExperimentConfig): number {
  return cfg.mode === 'tiny' ? 64 * MiB : 32 * MiB;
}

function plan(cfg: ExperimentConfig): Cell[] {
  const { warmupMs } = sizes(cfg);
  const cells: Cell[] = [];
  for (const w of codecWorkloads(cfg)) {
    // 4000 pages/s ≈ 16 MiB/s of dirtying against a 32 MiB/s link: two or three rounds.
    const g = guest(cfg, w, { writeRate: 4000 });
    for (const v of variants(cfg)) {
      cells.push({
        id: `${w}/${v.name}`,
        labels: { workload: w, codec: v.name },
        spec: { guest: g, warmupMs, options: { maxBandwidth: bandwidth(cfg), ...v.options } },
      });
    }
  }
  return cells;
}

function summarise(results: readonly CellResult[], cfg: ExperimentConfig): Summary {
  const rows: (string | number)[][] = [];
  const chart: Record<string, string | number>[] = [];
  const findings: string[] = [];
  for (const w of codecWorkloads(cfg)) {
    const base = ok(find(results, { workload: w, codec: 'zero-page' }));
    if (base) {
      // "none": the zero pages travel too, at the link's limit (round 1's own rate is no guide when most of it
      // was zero pages that never left).
      const zeroBytes = base.measured.pagesZero * PAGE;
      const extraMs = (zeroBytes / bandwidth(cfg)) * 1000;
      rows.push([
        w,
        'none (derived)',
        mib(base.measured.bytes + zeroBytes),
        Number(ratio(base.measured.bytes + zeroBytes, base.measured.bytes).toFixed(2)),
        ms(base.measured.totalTimeMs + extraMs),
        ms(base.measured.downtimeMs),
        base.measured.rounds,
        '',
        '',
        '',
        'every page raw',
      ]);
      chart.push({ workload: w, codec: 'none (derived)', MiB: mib(base.measured.bytes + zeroBytes) });
    }
    for (const v of variants(cfg)) {
      const r = find(results, { workload: w, codec: v.name });
      if (!r) continue;
      const m = r.measured;
      const p = `zero ${m.pagesZero}, raw ${m.pagesRaw}, xbzrle ${m.pagesXbzrle}, rle ${m.pagesRle}, compressed ${m.pagesCompressed}, unchanged ${m.pagesSkipped}`;
      rows.push([
        w,
        v.name,
        mib(m.bytes),
        base ? Number(ratio(m.bytes, base.measured.bytes).toFixed(2)) : '',
        ms(m.totalTimeMs),
        ms(m.downtimeMs),
        m.rounds,
        Math.round(m.sourceMainCpuMs),
        Math.round(m.sourceCpuMs),
        Math.round(m.destMainCpuMs),
        statusOf(r) === 'ok' ? p : statusOf(r),
      ]);
      chart.push({ workload: w, codec: v.name, MiB: mib(m.bytes), 'source CPU ms': m.sourceMainCpuMs });
    }
    const x = ok(find(results, { workload: w, codec: 'xbzrle' }));
    const rle = ok(find(results, { workload: w, codec: 'rle' }));
    const zstd = ok(find(results, { workload: w, codec: 'zstd' }));
    const xz = ok(find(results, { workload: w, codec: 'xbzrle+zstd' }));
    if (base && x) {
      const resent = x.measured.bytes - x.measured.round1Bytes;
      const resentBase = base.measured.bytes - base.measured.round1Bytes;
      findings.push(
        `${w}: XBZRLE sent ${mib(x.measured.bytes)} MiB against ${mib(base.measured.bytes)} MiB with zero-page ` +
          `detection alone (${pctChange(x.measured.bytes, base.measured.bytes)}); on the resent pages alone ` +
          `${mib(resent)} vs ${mib(resentBase)} MiB (${pctChange(resent, resentBase)}), at ` +
          `${(x.measured.xbzrleRatio * 100).toFixed(1)}% of the page bytes it replaced. It cost ` +
          `${mib(x.measured.cacheBytesPeak)} MiB of cache and ${Math.round(x.measured.sourceMainCpuMs)} ms of ` +
          `source CPU (zero-page: ${Math.round(base.measured.sourceMainCpuMs)} ms).`,
      );
    }
    if (base && rle && zstd) {
      findings.push(
        `${w}: RLE alone sent ${mib(rle.measured.bytes)} MiB (${pctChange(rle.measured.bytes, base.measured.bytes)} ` +
          `vs zero-page), zstd ${mib(zstd.measured.bytes)} MiB (${pctChange(zstd.measured.bytes, base.measured.bytes)})` +
          (xz
            ? `, XBZRLE + zstd ${mib(xz.measured.bytes)} MiB (${pctChange(xz.measured.bytes, base.measured.bytes)})`
            : '') +
          '.',
      );
    }
  }
  const table: SummaryTable = {
    title: 'Bytes, time and CPU per codec',
    slug: 'codecs',
    columns: [
      'workload',
      'codec',
      'MiB sent',
      '× zero-page',
      'total ms',
      'downtime ms',
      'rounds',
      'src main CPU ms',
      'src process CPU ms',
      'dst main CPU ms',
      'pages',
    ],
    rows,
  };
  return {
    tables: [table],
    charts: [
      barChart({
        title: 'Bytes on the wire per codec',
        values: chart,
        category: 'workload',
        value: 'MiB',
        series: 'codec',
        valueTitle: 'MiB sent',
      }),
      barChart({
        title: 'Source migration-thread CPU time per codec',
        values: chart.filter((c) => c['source CPU ms'] !== undefined),
        category: 'workload',
        value: 'source CPU ms',
        series: 'codec',
        valueTitle: 'CPU ms',
      }),
    ],
    findings,
  };
}

export function pctChange(a: number, b: number): string {
  if (!(b > 0)) return 'n/a';
  const d = (a / b - 1) * 100;
  return `${d >= 0 ? '+' : '−'}${Math.abs(d).toFixed(0)}%`;
}

export const codecs: Experiment = {
  name: 'codecs',
  title: 'Page codecs: bytes, time, downtime and CPU',
  description:
    'Migrates the same seeded guest (half of RAM filled by the workload, the rest zero; 4000 pages/s written) over ' +
    'a 32 MiB/s link with each page encoding: zero-page detection only, RLE, XBZRLE (cache = RAM), zstd ' +
    '(full mode: also deflate and lz4), and XBZRLE + zstd. Compares bytes on the wire, total time, downtime, and ' +
    "CPU time: the source agent's main thread (reading, encoding, sending), the whole source process (that " +
    "plus the guest's vCPU thread), and the destination's main thread (decoding).",
  plan,
  summarise,
};
