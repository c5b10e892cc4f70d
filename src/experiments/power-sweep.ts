/**
 * The seed's two power-capping claims, swept with repetitions and confidence intervals (docs/power.md):
 *  1. DVFS saves more as host utilisation rises: host utilisation 40 → 100 % (the guests' CPU limits set it), the
 *     gap-like VM migrated with no capping, DVFS at the 1.73 GHz state and CAP 15.
 *  2. CAP loses its effect when more VMs than cores compete: uncapped guests, VMs ≤ cores vs VMs > cores, with no
 *     capping and CAP 15: with spare cores the CPU a CAP takes from the migrating VM goes idle (power falls); with
 *     more VMs than cores the other VMs take it (power stays).
 * The effect is the power saved during the migration against no capping, each run measured as its own "during −
 * before" (what the migration added, which cancels the slow drift of a shared machine); mean ± 95 % confidence
 * interval (Welch), and, where the interval still straddles 0, how many repetitions would resolve the effect at the
 * measured spread.
 */
import { loadavg } from 'node:os';
import type { MigrationOptions } from '../migration/index.js';
import type { Pair } from './scenario.js';

export interface SweepPoint {
  sweep: 'utilisation' | 'contention';
  /** Utilisation sweep: the target host utilisation (0..1); contention sweep: the number of VMs. */
  level: number;
  label: string;
  mode: 'none' | 'dvfs' | 'cap';
  /** Watts during − before of each repetition (what the migration added). */
  deltas: number[];
  /** Watts during, migration seconds, J per migration (source) of each repetition. */
  during: number[];
  seconds: number[];
  joules: number[];
  /** Host utilisation measured before each migration (the target is what the guests' CAPs allow). */
  utilisation: number[];
  /** 1-minute load average when the point started. */
  load: number;
}

/** Two-sided 95 % Student t quantiles by degrees of freedom (1..30; above: 1.96). */
const T95 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131,
  2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];
export function t95(df: number): number {
  if (!(df >= 1)) return Number.NaN;
  return df > 30 ? 1.96 : T95[Math.floor(df) - 1]!;
}

export function meanSd(xs: readonly number[]): { mean: number; sd: number; n: number } {
  const n = xs.length;
  const mean = n ? xs.reduce((a, b) => a + b, 0) / n : Number.NaN;
  const sd = n > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : Number.NaN;
  return { mean, sd, n };
}

/** Mean difference a − b with its Welch 95 % confidence interval, and the repetitions per side that would resolve it. */
export function welch(
  a: readonly number[],
  b: readonly number[],
): { diff: number; lo: number; hi: number; resolved: boolean; repsNeeded: number | null } {
  const x = meanSd(a);
  const y = meanSd(b);
  const diff = x.mean - y.mean;
  const va = x.sd ** 2 / x.n;
  const vb = y.sd ** 2 / y.n;
  const se = Math.sqrt(va + vb);
  if (!Number.isFinite(se))
    return { diff, lo: Number.NaN, hi: Number.NaN, resolved: false, repsNeeded: null };
  const df = (va + vb) ** 2 / ((va * va) / (x.n - 1) + (vb * vb) / (y.n - 1));
  const h = t95(Number.isFinite(df) ? df : x.n + y.n - 2) * se;
  const resolved = diff - h > 0 || diff + h < 0;
  // n per side so that 1.96·s·√(2/n) < |diff| at the pooled spread (80 % power adds 0.84 σ: 2.8·s·√(2/n)).
  const s = Math.sqrt((x.sd ** 2 + y.sd ** 2) / 2);
  const repsNeeded = diff !== 0 && s > 0 ? Math.ceil(2 * ((2.8 * s) / Math.abs(diff)) ** 2) : null;
  return { diff, lo: diff - h, hi: diff + h, resolved, repsNeeded };
}

export interface SweepRow {
  sweep: string;
  point: string;
  mode: string;
  n: number;
  wattsDuring: string;
  addedWatts: string;
  /** Saving against no capping at the same point: (added W of none) − (added W of this mode), 95 % CI. */
  saving: string;
  resolved: string;
  migrationS: string;
  joules: string;
  utilisation: string;
  load: string;
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const pm = (xs: readonly number[]) => {
  const m = meanSd(xs);
  return Number.isFinite(m.sd) ? `${f1(m.mean)} ± ${f1(t95(m.n - 1) * (m.sd / Math.sqrt(m.n)))}` : f1(m.mean);
};

export function sweepRows(points: readonly SweepPoint[]): SweepRow[] {
  return points.map((p) => {
    const none = points.find((q) => q.sweep === p.sweep && q.level === p.level && q.mode === 'none');
    let saving = '';
    let resolved = '';
    if (none && p.mode !== 'none') {
      const w = welch(none.deltas, p.deltas);
      saving = `${f1(w.diff)} W [${f1(w.lo)}, ${f1(w.hi)}]`;
      resolved = w.resolved
        ? 'yes'
        : `no (≈${w.repsNeeded ?? '?'} repetitions per mode would resolve ${f1(w.diff)} W)`;
    }
    return {
      sweep: p.sweep,
      point: p.label,
      mode: p.mode,
      n: p.deltas.length,
      wattsDuring: pm(p.during),
      addedWatts: pm(p.deltas),
      saving,
      resolved,
      migrationS: pm(p.seconds),
      joules: pm(p.joules),
      utilisation: `${f1(100 * meanSd(p.utilisation).mean)} %`,
      load: p.load.toFixed(1),
    };
  });
}

export const SWEEP_COLUMNS = [
  'sweep',
  'point',
  'measured utilisation before',
  'capping',
  'n',
  'W during (95% CI)',
  'W added by the migration',
  'saving vs none, W [95% CI]',
  'resolved',
  'migration s',
  'source J per migration',
  'load avg',
];

export function sweepTable(points: readonly SweepPoint[]): (string | number)[][] {
  return sweepRows(points).map((r) => [
    r.sweep,
    r.point,
    r.utilisation,
    r.mode,
    r.n,
    r.wattsDuring,
    r.addedWatts,
    r.saving,
    r.resolved,
    r.migrationS,
    r.joules,
    r.load,
  ]);
}

/** One migration of the sweep, as power-capping's runOne does it (injected: it owns the guests and the series). */
export type SweepRunner = (spec: {
  vms: number;
  /** Each guest's CPU limit, percent of a real core (0 = uncapped). */
  baseCap: number;
  mode: 'none' | 'dvfs' | 'cap';
  extra: Partial<MigrationOptions>;
  seed: number;
}) => Promise<{
  beforeWatts: number;
  duringWatts: number;
  seconds: number;
  joules: number;
  beforeUtilisation: number;
}>;

export interface SweepOptions {
  quick: boolean;
  repetitions: number;
  realCores: number;
  seed: number;
  log: (l: string) => void;
}

/**
 * Runs both sweeps. Repetitions are interleaved (rep 1 of every mode, then rep 2, …) so that a change in the
 * machine's load hits every mode alike.
 */
export async function runSweeps(_pair: Pair, run: SweepRunner, o: SweepOptions): Promise<SweepPoint[]> {
  const points: SweepPoint[] = [];
  const levels = o.quick ? [0.4, 1] : [0.4, 0.6, 0.8, 1];
  const modes = ['none', 'dvfs', 'cap'] as const;
  const VMS = 4;
  const plan: {
    sweep: SweepPoint['sweep'];
    level: number;
    label: string;
    vms: number;
    baseCap: number;
    modes: readonly ('none' | 'dvfs' | 'cap')[];
  }[] = [];
  for (const u of levels) {
    // 4 guests share the host: each held to u × cores / 4 of a core (100 % = every core busy).
    const baseCap = Math.max(1, Math.min(100, Math.round((u * o.realCores * 100) / VMS)));
    plan.push({
      sweep: 'utilisation',
      level: u,
      label: `${Math.round(u * 100)} % (4 VMs at CAP ${baseCap})`,
      vms: VMS,
      baseCap,
      modes,
    });
  }
  for (const vms of [o.realCores, o.realCores * 3]) {
    plan.push({
      sweep: 'contention',
      level: vms,
      label: `${vms} uncapped VMs on ${o.realCores} cores (${vms <= o.realCores ? 'VMs ≤ cores' : 'VMs > cores'})`,
      vms,
      baseCap: 0,
      modes: ['none', 'cap'],
    });
  }
  for (const p of plan) {
    const byMode = new Map<string, SweepPoint>();
    for (const m of p.modes) {
      const pt: SweepPoint = {
        sweep: p.sweep,
        level: p.level,
        label: p.label,
        mode: m,
        deltas: [],
        during: [],
        seconds: [],
        joules: [],
        utilisation: [],
        load: loadavg()[0]!,
      };
      byMode.set(m, pt);
      points.push(pt);
    }
    for (let rep = 0; rep < o.repetitions; rep++) {
      for (const m of p.modes) {
        const r = await run({ vms: p.vms, baseCap: p.baseCap, mode: m, extra: {}, seed: o.seed + rep });
        const pt = byMode.get(m)!;
        pt.deltas.push(r.duringWatts - r.beforeWatts);
        pt.during.push(r.duringWatts);
        pt.seconds.push(r.seconds);
        pt.joules.push(r.joules);
        pt.utilisation.push(r.beforeUtilisation);
        o.log(
          `sweep ${p.sweep} ${p.label} ${m} rep ${rep + 1}/${o.repetitions}: ${r.duringWatts >= r.beforeWatts ? '+' : ''}${(r.duringWatts - r.beforeWatts).toFixed(2)} W in ${r.seconds.toFixed(1)} s`,
        );
      }
    }
  }
  return points;
}
