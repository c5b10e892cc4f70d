/**
 * convergence: the dirty rate swept past the link's bandwidth. Where plain pre-copy stops converging (it ends at the
 * round bound with a long stop-and-copy), and what auto-converge (throttle the guest), hybrid (finish by post-copy),
 * XBZRLE (send deltas), Proxmox's double-downtime and KubeVirt's downtime ramp (accept a longer pause, step by step)
 * each do about it. The pre-copy model's λ = D/B and its verdict stand beside each rate.
 */
import type { MigrationOptions } from '../migration/index.js';
import { lineChart } from '../report/index.js';
import { find, guest, MiB, mib, modelInput, ms, PAGE, sizes, statusOf } from './common.js';
import type { Cell, CellResult, Experiment, ExperimentConfig, Summary } from './types.js';

const VARIANTS = [
  'precopy',
  'auto-converge',
  'hybrid',
  'xbzrle',
  'double-downtime',
  'downtime-ramp',
] as const;
type Variant = (typeof VARIANTS)[number];

function rates(cfg: ExperimentConfig): number[] {
  if (cfg.mode === 'tiny') return [2000, 24000];
  if (cfg.mode === 'quick') return [2000, 8000, 16000, 24000];
  return [1000, 4000, 8000, 16000, 32000];
}

function bandwidth(cfg: ExperimentConfig): number {
  return cfg.mode === 'tiny' ? 64 * MiB : 32 * MiB;
}

const MAX_ROUNDS = 20;

function options(v: Variant, cfg: ExperimentConfig): Partial<MigrationOptions> {
  const base: Partial<MigrationOptions> = { maxBandwidth: bandwidth(cfg), maxRounds: MAX_ROUNDS };
  switch (v) {
    case 'precopy':
      return base;
    case 'auto-converge':
      // QEMU's rule with a 20-point step (QEMU: 10) so it can act within the round bound.
      return { ...base, autoConverge: true, throttleInitial: 20, throttleIncrement: 20 };
    case 'hybrid':
      return { ...base, strategy: 'hybrid', postcopyAfterRounds: 3 };
    case 'xbzrle':
      return { ...base, xbzrle: true, xbzrleCacheBytes: sizes(cfg).ramBytes };
    case 'double-downtime':
      // Proxmox's rule: every round that does not shrink the dirty set doubles the limit (from QEMU's 300 ms).
      return { ...base, onStall: 'double-downtime' };
    case 'downtime-ramp':
      // KubeVirt's proposal (VEP 248/291), the example: from 150 ms by 150 ms up to 1050 ms.
      return { ...base, downtimeRamp: { startMs: 150, stepMs: 150, maxMs: 1050 } };
  }
}

function plan(cfg: ExperimentConfig): Cell[] {
  const { warmupMs } = sizes(cfg);
  const cells: Cell[] = [];
  for (const rate of rates(cfg)) {
    // A quarter of RAM in use, uniformly: short rounds, and a dirty set that saturates at the working set.
    const g = guest(cfg, 'gap', { writeRate: rate, workingSetFraction: 0.25 });
    for (const v of VARIANTS) {
      if (cfg.mode === 'tiny' && v === 'hybrid') continue;
      const o = options(v, cfg);
      cells.push({
        id: `${rate}/${v}`,
        labels: { 'pages/s': rate, variant: v },
        spec: { guest: g, warmupMs, options: o },
        ...(v === 'precopy' ? { model: modelInput(g, o) } : {}),
      });
    }
  }
  return cells;
}

function summarise(results: readonly CellResult[], cfg: ExperimentConfig): Summary {
  const rows: (string | number)[][] = [];
  const chart: Record<string, string | number>[] = [];
  const findings: string[] = [];
  const B = bandwidth(cfg);
  let firstDiverging: number | undefined;
  for (const rate of rates(cfg)) {
    const pre = find(results, { 'pages/s': rate, variant: 'precopy' });
    const p = pre?.predicted;
    for (const v of VARIANTS) {
      const r = find(results, { 'pages/s': rate, variant: v });
      if (!r) continue;
      const m = r.measured;
      rows.push([
        rate,
        Number(((rate * PAGE) / B).toFixed(2)),
        v,
        m.switchoverReason || statusOf(r),
        m.rounds,
        ms(m.downtimeMs),
        ms(m.migrationTimeMs),
        mib(m.bytes),
        m.throttleMax,
        ms(m.downtimeLimitEndMs ?? 0),
        m.postcopyFaults,
        v === 'precopy' && p
          ? `λ ${p.ratio.toFixed(2)}, ${p.converged ? 'converges' : 'does not converge'}`
          : '',
        statusOf(r),
      ]);
      if (m.status === 'completed') {
        chart.push({
          'dirty rate ÷ bandwidth': (rate * PAGE) / B,
          variant: v,
          'downtime ms': ms(m.downtimeMs),
        });
      }
    }
    if (pre && pre.measured.switchoverReason !== 'converged' && firstDiverging === undefined)
      firstDiverging = rate;
  }
  if (firstDiverging !== undefined) {
    findings.push(
      `Plain pre-copy stopped converging at ${firstDiverging} pages/s (${((firstDiverging * PAGE) / MiB).toFixed(1)} ` +
        `MiB/s of dirtying, ${((firstDiverging * PAGE) / B).toFixed(2)}× the ${B / MiB} MiB/s link): it ran to ` +
        `the ${MAX_ROUNDS}-round bound and paid the remaining dirty set as downtime.`,
    );
  } else {
    findings.push('Plain pre-copy converged at every rate swept.');
  }
  for (const rate of rates(cfg)) {
    const get = (v: Variant) => find(results, { 'pages/s': rate, variant: v });
    const pre = get('precopy');
    if (!pre || pre.measured.switchoverReason === 'converged') continue;
    const parts: string[] = [
      `at ${rate} pages/s plain pre-copy: ${pre.measured.rounds} rounds, ${ms(pre.measured.downtimeMs)} ms downtime, ${mib(pre.measured.bytes)} MiB`,
    ];
    const ac = get('auto-converge');
    if (ac) {
      parts.push(
        `auto-converge: ${ac.measured.switchoverReason || statusOf(ac)} after ${ac.measured.rounds} rounds at a ` +
          `${ac.measured.throttleMax}% throttle, ${ms(ac.measured.downtimeMs)} ms downtime, guest slowed ` +
          `${(ac.measured.guestSlowdown * 100).toFixed(0)}%`,
      );
    }
    const hy = get('hybrid');
    if (hy) {
      parts.push(
        `hybrid: ${ms(hy.measured.downtimeMs)} ms downtime, ${hy.measured.postcopyFaults} remote faults ` +
          `(p99 ${ms(hy.measured.faultP99Ms)} ms), ${mib(hy.measured.bytes)} MiB`,
      );
    }
    for (const v of ['double-downtime', 'downtime-ramp'] as const) {
      const d = get(v);
      if (!d) continue;
      parts.push(
        `${v}: ${d.measured.switchoverReason || statusOf(d)} after ${d.measured.rounds} rounds with the limit at ` +
          `${ms(d.measured.downtimeLimitEndMs ?? 0)} ms, ${ms(d.measured.downtimeMs)} ms downtime, ` +
          `${mib(d.measured.bytes)} MiB`,
      );
    }
    const x = get('xbzrle');
    if (x) {
      parts.push(
        `XBZRLE: ${x.measured.switchoverReason || statusOf(x)} in ${x.measured.rounds} rounds, ` +
          `${ms(x.measured.downtimeMs)} ms downtime, ${mib(x.measured.bytes)} MiB (deltas at ` +
          `${(x.measured.xbzrleRatio * 100).toFixed(1)}% of page bytes)`,
      );
    }
    findings.push(`${parts.join('; ')}.`);
  }
  return {
    tables: [
      {
        title: 'Dirty rate against the link, per remedy',
        slug: 'convergence',
        columns: [
          'pages/s',
          '× bandwidth',
          'variant',
          'switch-over',
          'rounds',
          'downtime ms',
          'migration ms',
          'MiB sent',
          'max throttle %',
          'limit ms',
          'faults',
          'model',
          'status',
        ],
        rows,
      },
    ],
    charts: [
      lineChart({
        title: 'Downtime against dirty rate ÷ bandwidth',
        values: chart,
        x: 'dirty rate ÷ bandwidth',
        y: 'downtime ms',
        series: 'variant',
      }),
    ],
    findings,
  };
}

export const convergence: Experiment = {
  name: 'convergence',
  title: 'Convergence: dirty rate past the bandwidth',
  description:
    'A gap guest using a quarter of RAM (uniform writes) is migrated over a 32 MiB/s link at dirty rates from ' +
    'well below to about 3× the link, with at most 20 rounds: plain pre-copy, auto-converge (QEMU rule, 20% ' +
    "steps), hybrid (post-copy after 3 rounds), XBZRLE (cache = RAM), Proxmox's double-downtime and KubeVirt's " +
    'downtime ramp (150 ms by 150 ms up to 1050 ms). Shows where pre-copy stops converging and what each remedy ' +
    'costs: downtime, time, bytes, throttle, the downtime limit accepted, remote faults.',
  plan,
  summarise,
};
