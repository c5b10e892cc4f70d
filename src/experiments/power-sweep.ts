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

export type SweepName = 'utilisation' | 'contention' | 'ratio';
export const SWEEP_NAMES: readonly SweepName[] = ['utilisation', 'contention', 'ratio'];
export type SweepMode = 'none' | 'dvfs' | 'cap';
export type SweepKind = 'twolf-like' | 'gap-like';

export interface SweepPoint {
  /** utilisation, contention, or ratio (the seed's migration time ratio gap / twolf, no capping). */
  sweep: SweepName;
  /** Utilisation sweep: the target host utilisation (0..1); contention sweep: the number of VMs; ratio: 0. */
  level: number;
  label: string;
  mode: SweepMode;
  /** The VM kind migrated (default gap-like; the ratio sweep migrates both). */
  kind?: SweepKind;
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

/**
 * The fewest repetitions n for which an effect `delta` with per-repetition spread `sd` is resolved (the 95 %
 * interval excludes 0) with 80 % power: (t.975(df(n)) + z.8)·sd/√n < |delta|. The t quantile, not 1.96: with few
 * repetitions the interval is wider than the normal one, and (2.8·sd/δ)² alone would promise too few.
 */
export function repetitionsFor(delta: number, sd: number, df: (n: number) => number): number {
  const z80 = 0.8416;
  for (let n = 2; n < 100_000; n++) if ((t95(df(n)) + z80) * (sd / Math.sqrt(n)) < Math.abs(delta)) return n;
  return 100_000;
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
  // n per side so that (t + 0.84)·s·√(2/n) < |diff| at the pooled spread (95 % two-sided, 80 % power).
  const s = Math.sqrt((x.sd ** 2 + y.sd ** 2) / 2);
  const repsNeeded = diff !== 0 && s > 0 ? repetitionsFor(diff, s * Math.SQRT2, (n) => 2 * n - 2) : null;
  return { diff, lo: diff - h, hi: diff + h, resolved, repsNeeded };
}

/** A 95 % interval of a mean effect: estimate, bounds, whether it excludes 0, and the repetitions that would. */
export interface Interval {
  diff: number;
  lo: number;
  hi: number;
  n: number;
  resolved: boolean;
  /** Repetitions (pairs) that would resolve the measured effect at the measured spread (95 %, 80 % power). */
  repsNeeded: number | null;
}

/** Mean of xs with its Student t 95 % interval (one sample: e.g. per-repetition differences). */
export function tInterval(xs: readonly number[]): Interval {
  const m = meanSd(xs);
  const h = t95(m.n - 1) * (m.sd / Math.sqrt(m.n));
  const ok = Number.isFinite(h);
  const resolved = ok && (m.mean - h > 0 || m.mean + h < 0);
  const repsNeeded =
    m.mean !== 0 && Number.isFinite(m.sd) && m.sd > 0 ? repetitionsFor(m.mean, m.sd, (n) => n - 1) : null;
  return {
    diff: m.mean,
    lo: ok ? m.mean - h : Number.NaN,
    hi: ok ? m.mean + h : Number.NaN,
    n: m.n,
    resolved,
    repsNeeded,
  };
}

/**
 * Paired difference a − b: repetition i of a and of b ran back to back (the sweep interleaves them), so their
 * difference cancels the machine's drift between repetitions. Falls back to Welch when the series differ in length.
 */
export function paired(a: readonly number[], b: readonly number[]): Interval {
  if (a.length !== b.length || a.length < 2) {
    const w = welch(a, b);
    return { ...w, n: Math.min(a.length, b.length) };
  }
  return tInterval(a.map((x, i) => x - b[i]!));
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
      const w = paired(none.deltas, p.deltas);
      saving = `${f1(w.diff)} W [${f1(w.lo)}, ${f1(w.hi)}]`;
      resolved = w.resolved
        ? 'yes'
        : `no (≈${w.repsNeeded ?? '?'} paired repetitions would resolve ${f1(w.diff)} W)`;
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
  'saving vs none, W [95% CI, paired]',
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
  mode: SweepMode;
  kind: SweepKind;
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
  /** Which sweeps (default all three). */
  sweeps?: readonly SweepName[];
  /** Utilisation levels, 0..1 (default 0.4, 0.6, 0.8, 1; quick 0.4, 1). */
  levels?: readonly number[];
  /** Each guest's CPU limit in the ratio sweep (the main runs' baseCap, default 40). */
  ratioBaseCap?: number;
  /** Stop before a repetition that would end after this many ms from the start (as long as the last one took). */
  timeBudgetMs?: number;
  log: (l: string) => void;
}

/** Pre-copy rounds of a contention-sweep migration at most (see sweepPlan). */
export const CONTENTION_MAX_ROUNDS = 8;

interface PlanPoint {
  sweep: SweepName;
  level: number;
  label: string;
  vms: number;
  baseCap: number;
  runs: readonly { mode: SweepMode; kind: SweepKind }[];
  extra?: Partial<MigrationOptions>;
}

/** The runs of each sweep point (exported for --dry-run and the tests). */
export function sweepPlan(
  o: Pick<SweepOptions, 'quick' | 'realCores' | 'sweeps' | 'levels' | 'ratioBaseCap'>,
) {
  const want = new Set(o.sweeps ?? SWEEP_NAMES);
  const levels = o.levels ?? (o.quick ? [0.4, 1] : [0.4, 0.6, 0.8, 1]);
  const VMS = 4;
  const plan: PlanPoint[] = [];
  const gap = (mode: SweepMode) => ({ mode, kind: 'gap-like' as const });
  if (want.has('utilisation'))
    for (const u of levels) {
      // 4 guests share the host: each held to u × cores / 4 of a core (100 % = every core busy).
      const baseCap = Math.max(1, Math.min(100, Math.round((u * o.realCores * 100) / VMS)));
      plan.push({
        sweep: 'utilisation',
        level: u,
        label: `${Math.round(u * 100)} % (4 VMs at CAP ${baseCap})`,
        vms: VMS,
        baseCap,
        runs: [gap('none'), gap('dvfs'), gap('cap')],
      });
    }
  if (want.has('contention'))
    for (const vms of [o.realCores, o.realCores * 3]) {
      plan.push({
        sweep: 'contention',
        level: vms,
        label: `${vms} uncapped VMs on ${o.realCores} cores (${vms <= o.realCores ? 'VMs ≤ cores' : 'VMs > cores'})`,
        vms,
        baseCap: 0,
        runs: [gap('none'), gap('cap')],
        // An uncapped gap-like guest does not converge: its pre-copy would run its 30 rounds (≈ 40 s) for a power
        // figure that 8 rounds measure as well (the figure is the mean over the migration).
        extra: { maxRounds: CONTENTION_MAX_ROUNDS },
      });
    }
  if (want.has('ratio'))
    plan.push({
      sweep: 'ratio',
      level: 0,
      label: `twolf-like vs gap-like, no capping (4 VMs at CAP ${o.ratioBaseCap ?? 40})`,
      vms: VMS,
      baseCap: o.ratioBaseCap ?? 40,
      runs: [
        { mode: 'none', kind: 'twolf-like' },
        { mode: 'none', kind: 'gap-like' },
      ],
    });
  return plan;
}

/**
 * Runs the sweeps. Repetitions are interleaved across every point and mode (repetition 1 of everything, then
 * repetition 2, …), so a change in the machine's load hits every mode and point alike and repetition i of one can
 * be paired with repetition i of another.
 */
export async function runSweeps(_pair: Pair, run: SweepRunner, o: SweepOptions): Promise<SweepPoint[]> {
  const plan = sweepPlan(o);
  const points: SweepPoint[] = [];
  const byKey = new Map<string, SweepPoint>();
  const key = (p: PlanPoint, r: { mode: SweepMode; kind: SweepKind }) =>
    `${p.sweep}/${p.level}/${r.mode}/${r.kind}`;
  for (const p of plan)
    for (const r of p.runs) {
      const pt: SweepPoint = {
        sweep: p.sweep,
        level: p.level,
        label: p.label,
        mode: r.mode,
        kind: r.kind,
        deltas: [],
        during: [],
        seconds: [],
        joules: [],
        utilisation: [],
        load: loadavg()[0]!,
      };
      byKey.set(key(p, r), pt);
      points.push(pt);
    }
  const start = Date.now();
  let repMs = 0;
  for (let rep = 0; rep < o.repetitions; rep++) {
    // Whole repetitions only, so every point and mode keeps the same count (the pairing needs it).
    if (rep > 0 && o.timeBudgetMs !== undefined && Date.now() - start + repMs > o.timeBudgetMs) {
      o.log(
        `sweep: stopping after ${rep} repetitions: another (≈${Math.round(repMs / 1000)} s) would pass the time budget`,
      );
      break;
    }
    const repStart = Date.now();
    for (const p of plan) {
      for (const spec of p.runs) {
        const r = await run({
          vms: p.vms,
          baseCap: p.baseCap,
          mode: spec.mode,
          kind: spec.kind,
          extra: p.extra ?? {},
          seed: o.seed + rep,
        });
        const pt = byKey.get(key(p, spec))!;
        if (rep === 0) pt.load = loadavg()[0]!;
        pt.deltas.push(r.duringWatts - r.beforeWatts);
        pt.during.push(r.duringWatts);
        pt.seconds.push(r.seconds);
        pt.joules.push(r.joules);
        pt.utilisation.push(r.beforeUtilisation);
        o.log(
          `sweep ${p.sweep} ${p.label} ${spec.kind} ${spec.mode} rep ${rep + 1}/${o.repetitions}: ` +
            `${r.duringWatts >= r.beforeWatts ? '+' : ''}${(r.duringWatts - r.beforeWatts).toFixed(2)} W ` +
            `(before ${r.beforeWatts.toFixed(1)} W, ${(100 * r.beforeUtilisation).toFixed(0)} % busy) in ${r.seconds.toFixed(1)} s`,
        );
      }
    }
    repMs = Date.now() - repStart;
  }
  return points;
}

export const CLAIM_COLUMNS = [
  'claim',
  'contrast',
  'n',
  'seed',
  'livemig, 95 % CI (paired by repetition)',
  'verdict',
];

const fmt = (x: Interval, unit: string, digits = 1) =>
  Number.isFinite(x.lo)
    ? `${x.diff.toFixed(digits)}${unit} [${x.lo.toFixed(digits)}, ${x.hi.toFixed(digits)}]`
    : `${x.diff.toFixed(digits)}${unit}`;

const verdict = (x: Interval, positive: string, negative: string) =>
  x.resolved
    ? x.diff > 0
      ? positive
      : negative
    : `unresolved: ≈${x.repsNeeded ?? '?'} repetitions would resolve ${x.diff.toFixed(2)} at this spread`;

/**
 * The seed's claims as contrasts with 95 % intervals, paired by repetition (the sweep interleaves every point and
 * mode within a repetition):
 *  - at each utilisation level, the saving of DVFS and of CAP (W, and DVFS − CAP);
 *  - claim 1: DVFS's saving at the highest level minus at the lowest (> 0: DVFS saves more as utilisation rises);
 *  - claim 2: CAP's saving with VMs ≤ cores minus with VMs > cores (> 0: CAP loses its effect under contention);
 *  - the migration time ratio gap / twolf (geometric mean of the per-repetition ratios), beside the seed's 2.5.
 */
export function claimRows(points: readonly SweepPoint[]): (string | number)[][] {
  const get = (sweep: SweepName, level: number, mode: SweepMode, kind: SweepKind = 'gap-like') =>
    points.find(
      (p) => p.sweep === sweep && p.level === level && p.mode === mode && (p.kind ?? 'gap-like') === kind,
    );
  const saving = (sweep: SweepName, level: number, mode: SweepMode): number[] | null => {
    const n = get(sweep, level, 'none');
    const m = get(sweep, level, mode);
    if (!n || !m || n.deltas.length !== m.deltas.length) return null;
    return n.deltas.map((x, i) => x - m.deltas[i]!);
  };
  const rows: (string | number)[][] = [];
  const levels = [...new Set(points.filter((p) => p.sweep === 'utilisation').map((p) => p.level))].sort(
    (a, b) => a - b,
  );
  const seedAt = (u: number) => {
    // The i7-920 model under the seed's conditions (docs/power.md, "What the model says"): 4 busy VMs at u.
    const busy = 134.7 + ((150 - 134.7) * (u - 0.4)) / 0.6;
    const dvfs = 129 + ((135.6 - 129) * (u - 0.4)) / 0.6;
    return busy - dvfs;
  };
  for (const u of levels) {
    const d = saving('utilisation', u, 'dvfs');
    const c = saving('utilisation', u, 'cap');
    const pct = `${Math.round(u * 100)} %`;
    if (d)
      rows.push([
        'DVFS saves power',
        `DVFS 1.73 GHz saving at ${pct} (W)`,
        d.length,
        u === 1 ? '14.4 W (150 → 135.6)' : `model ${seedAt(u).toFixed(1)} W`,
        fmt(tInterval(d), ' W'),
        verdict(tInterval(d), 'saves', 'costs'),
      ]);
    if (c)
      rows.push([
        'CAP saves power',
        `CAP 15 saving at ${pct} (W)`,
        c.length,
        u === 1 ? '1.7 W (150 → 148.3)' : '',
        fmt(tInterval(c), ' W'),
        verdict(tInterval(c), 'saves', 'costs'),
      ]);
    if (d && c)
      rows.push([
        'DVFS saves more than CAP',
        `DVFS − CAP saving at ${pct} (W)`,
        d.length,
        u === 1 ? '12.7 W' : '',
        fmt(paired(d, c), ' W'),
        verdict(paired(d, c), 'DVFS saves more', 'CAP saves more'),
      ]);
  }
  if (levels.length >= 2) {
    const lo = levels[0]!;
    const hi = levels[levels.length - 1]!;
    const a = saving('utilisation', hi, 'dvfs');
    const b = saving('utilisation', lo, 'dvfs');
    if (a && b && a.length === b.length) {
      const x = paired(a, b);
      rows.push([
        '1: DVFS saves more as utilisation rises',
        `DVFS saving at ${Math.round(hi * 100)} % − at ${Math.round(lo * 100)} % (W)`,
        a.length,
        `model ${(seedAt(hi) - seedAt(lo)).toFixed(1)} W`,
        fmt(x, ' W'),
        verdict(x, 'supported', 'contradicted'),
      ]);
    }
  }
  const cores = points.filter((p) => p.sweep === 'contention').map((p) => p.level);
  if (cores.length > 0) {
    const few = Math.min(...cores);
    const many = Math.max(...cores);
    const a = saving('contention', few, 'cap');
    const b = saving('contention', many, 'cap');
    if (a)
      rows.push([
        'CAP saves power',
        `CAP 15 saving, ${few} VMs (W)`,
        a.length,
        '',
        fmt(tInterval(a), ' W'),
        verdict(tInterval(a), 'saves', 'costs'),
      ]);
    if (b)
      rows.push([
        'CAP saves power',
        `CAP 15 saving, ${many} VMs (W)`,
        b.length,
        '',
        fmt(tInterval(b), ' W'),
        verdict(tInterval(b), 'saves', 'costs'),
      ]);
    if (a && b && a.length === b.length && few !== many) {
      const x = paired(a, b);
      rows.push([
        '2: CAP loses its effect when VMs > cores',
        `CAP saving with ${few} VMs − with ${many} VMs (W)`,
        a.length,
        'CAP saves with VMs ≤ cores, ≈ 0 with VMs > cores',
        fmt(x, ' W'),
        verdict(x, 'supported', 'contradicted'),
      ]);
    }
  }
  const t = get('ratio', 0, 'none', 'twolf-like');
  const g = get('ratio', 0, 'none', 'gap-like');
  if (t && g && t.seconds.length === g.seconds.length && t.seconds.length > 0) {
    // Ratios are averaged on the log scale (geometric mean), where a paired t interval is symmetric.
    const logs = g.seconds.map((s, i) => Math.log(s / t.seconds[i]!));
    const x = tInterval(logs);
    const e = { ...x, diff: Math.exp(x.diff), lo: Math.exp(x.lo), hi: Math.exp(x.hi) };
    const m = (xs: readonly number[]) => meanSd(xs).mean.toFixed(1);
    rows.push([
      'migration time ratio gap / twolf',
      `gap-like ÷ twolf-like migration time (twolf ${m(t.seconds)} s, gap ${m(g.seconds)} s)`,
      t.seconds.length,
      '≈ 2.5 (20 s / 8 s)',
      fmt(e, '', 2),
      x.resolved ? (x.diff > 0 ? 'gap takes longer' : 'gap takes less') : 'not different from 1',
    ]);
  }
  return rows;
}
