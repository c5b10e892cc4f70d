/**
 * strategies: cold, pre-copy, post-copy and hybrid on the same guests: downtime, total time, bytes, post-copy's
 * remote faults and their latency, and what the guest lost in progress while it moved.
 */
import type { MigrationOptions, Strategy } from '../migration/index.js';
import { barChart } from '../report/index.js';
import { find, guest, MiB, mib, modelInput, ms, ok, pct, sizes, statusOf, workloadsOf } from './common.js';
import type { Cell, CellResult, Experiment, ExperimentConfig, Summary } from './types.js';

/** Each strategy, and post-copy again with postcopy-preempt (the fault answers on their own connection). */
const VARIANTS: readonly { label: string; strategy: Strategy; preempt?: true }[] = [
  { label: 'cold', strategy: 'cold' },
  { label: 'precopy', strategy: 'precopy' },
  { label: 'postcopy', strategy: 'postcopy' },
  { label: 'postcopy+preempt', strategy: 'postcopy', preempt: true },
  { label: 'hybrid', strategy: 'hybrid' },
];
const STRATS = VARIANTS.map((v) => v.label);

function plan(cfg: ExperimentConfig): Cell[] {
  const { warmupMs } = sizes(cfg);
  const bw = cfg.mode === 'tiny' ? 64 * MiB : 32 * MiB;
  const cells: Cell[] = [];
  const wl = cfg.mode === 'quick' ? (['gap', 'kv'] as const) : workloadsOf(cfg);
  for (const w of wl) {
    const g = guest(cfg, w, { writeRate: 4000 });
    for (const { label: s, strategy, preempt } of VARIANTS) {
      const options: Partial<MigrationOptions> = {
        strategy,
        maxBandwidth: bw,
        postcopyAfterRounds: 1,
        ...(preempt ? { postcopyPreempt: true } : {}),
      };
      cells.push({
        id: `${w}/${s}`,
        labels: { workload: w, strategy: s },
        spec: { guest: g, warmupMs, options },
        ...(s === 'precopy' ? { model: modelInput(g, options) } : {}),
      });
    }
  }
  return cells;
}

function summarise(results: readonly CellResult[], _cfg: ExperimentConfig): Summary {
  const rows: (string | number)[][] = [];
  const chart: Record<string, string | number>[] = [];
  const findings: string[] = [];
  const wl = [...new Set(results.map((r) => String(r.labels.workload)))];
  for (const w of wl) {
    for (const s of STRATS) {
      const r = find(results, { workload: w, strategy: s });
      if (!r) continue;
      const m = r.measured;
      const p = r.predicted;
      rows.push([
        w,
        s,
        ms(m.downtimeMs),
        ms(m.migrationTimeMs),
        mib(m.bytes),
        m.rounds,
        m.postcopyFaults,
        ms(m.faultP50Ms),
        ms(m.faultP99Ms),
        pct(m.guestSlowdownEndToEnd),
        p ? `${ms(p.totalTimeMs)} / ${ms(p.downtimeMs)}` : '',
        statusOf(r),
      ]);
      chart.push({
        workload: w,
        strategy: s,
        'downtime ms': ms(m.downtimeMs),
        'migration ms': ms(m.migrationTimeMs),
      });
    }
    const cold = ok(find(results, { workload: w, strategy: 'cold' }));
    const pre = ok(find(results, { workload: w, strategy: 'precopy' }));
    const post = ok(find(results, { workload: w, strategy: 'postcopy' }));
    const hyb = ok(find(results, { workload: w, strategy: 'hybrid' }));
    const preempt = ok(find(results, { workload: w, strategy: 'postcopy+preempt' }));
    if (cold && pre) {
      findings.push(
        `${w}: cold migration paused the guest for ${ms(cold.measured.downtimeMs)} ms (its whole migration); ` +
          `pre-copy for ${ms(pre.measured.downtimeMs)} ms (${(cold.measured.downtimeMs / Math.max(0.1, pre.measured.downtimeMs)).toFixed(0)}× less), ` +
          `at the price of ${mib(pre.measured.bytes - cold.measured.bytes)} MiB more on the wire and a longer total ` +
          `(${ms(pre.measured.migrationTimeMs)} vs ${ms(cold.measured.migrationTimeMs)} ms).`,
      );
    }
    if (post) {
      findings.push(
        `${w}: post-copy's downtime was ${ms(post.measured.downtimeMs)} ms, but the guest took ` +
          `${post.measured.postcopyFaults} remote faults (p50 ${ms(post.measured.faultP50Ms)} ms, p99 ` +
          `${ms(post.measured.faultP99Ms)} ms) and lost ${pct(post.measured.guestSlowdownEndToEnd)} of its progress ` +
          `over the migration (pre-copy: ${pre ? pct(pre.measured.guestSlowdownEndToEnd) : 'n/a'})` +
          (hyb
            ? `; hybrid (1 pre-copy round, then post-copy): ${ms(hyb.measured.downtimeMs)} ms downtime, ` +
              `${hyb.measured.postcopyFaults} faults.`
            : '.'),
      );
    }
    if (post && preempt) {
      findings.push(
        `${w}: with postcopy-preempt (fault answers on their own connection, not behind the rate-limited push) ` +
          `the fault latency was p50 ${ms(preempt.measured.faultP50Ms)} ms, p99 ${ms(preempt.measured.faultP99Ms)} ms ` +
          `(${preempt.measured.postcopyFaults} faults), against p50 ${ms(post.measured.faultP50Ms)} ms, p99 ` +
          `${ms(post.measured.faultP99Ms)} ms without.`,
      );
    }
    if (pre?.predicted) {
      findings.push(
        `${w}: the pre-copy model predicted ${ms(pre.predicted.totalTimeMs)} ms total and ` +
          `${ms(pre.predicted.downtimeMs)} ms downtime; measured ${ms(pre.measured.migrationTimeMs)} ms (without ` +
          `setup) and ${ms(pre.measured.downtimeMs)} ms.`,
      );
    }
  }
  return {
    tables: [
      {
        title: 'Strategies',
        slug: 'strategies',
        columns: [
          'workload',
          'strategy',
          'downtime ms',
          'migration ms',
          'MiB sent',
          'rounds',
          'faults',
          'fault p50 ms',
          'fault p99 ms',
          'guest slowdown',
          'model total / downtime ms',
          'status',
        ],
        rows,
      },
    ],
    charts: [
      barChart({
        title: 'Downtime per strategy',
        values: chart,
        category: 'workload',
        value: 'downtime ms',
        series: 'strategy',
      }),
      barChart({
        title: 'Migration time (without setup) per strategy',
        values: chart,
        category: 'workload',
        value: 'migration ms',
        series: 'strategy',
      }),
    ],
    findings,
  };
}

export const strategies: Experiment = {
  name: 'strategies',
  title: 'Strategies: cold, pre-copy, post-copy (with and without preempt), hybrid',
  description:
    'Migrates the same guests (half of RAM in use, 4000 pages/s written) over a 32 MiB/s link with each strategy: ' +
    'cold (pause, copy, resume), pre-copy, post-copy (resume at once, fault pages in), post-copy with ' +
    "postcopy-preempt (the faults' answers on a second connection), and hybrid (one pre-copy " +
    'round, then post-copy). Reports downtime, migration time, bytes, post-copy faults with their latency, and ' +
    "the guest's lost progress from migration start to end wherever it ran (steps/s against its rate before). " +
    'The pre-copy row shows the model’s prediction.',
  plan,
  summarise,
};
