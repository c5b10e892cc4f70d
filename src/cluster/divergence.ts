/**
 * Where the cluster and the simulator decide apart: each scheduling round, the cluster's plan (on what it measured)
 * against the plain simulator's (on the trace's interval means), and — to tell a measurement from a state that had
 * already drifted — the cluster's own state planned again on the trace (the counterfactual: the same placement and
 * migrations in flight, each VM at its trace's interval mean, its history the trace's means). Per round:
 *
 * - `placement`: the two sides hold different placements (an earlier round decided apart, or a migration completed
 *   on one side and not yet on the other);
 * - `in-flight`: the same placement, but not the same migrations in flight (a migration that took longer than the
 *   simulator's model price is still running and its VM cannot be selected; its target counts it);
 * - `measurement`: the same state, and the cluster's state planned on the trace gives the simulator's plan: what the
 *   cluster measured, not its state, decided apart — the hosts whose requested utilisation differs between measured
 *   and traced, and the VMs that moved it most, are listed;
 * - `other`: the same state and the counterfactual still differs from the simulator (e.g. a random selection's
 *   draws, or a VM's history held during its migration).
 */
import {
  HISTORY_LENGTH,
  medianOf,
  PlanningSession,
  type SimDecision,
  type SimOptions,
  type Workload,
} from '../sim/index.js';
import type { ClusterDecision as RecordedDecision } from './run.js';

/**
 * A recorded round; runs saved before arrivals were recorded have none (newcomers then go by VM index), nor the raw
 * CPU and the held VMs.
 */
export type ClusterDecision = Omit<RecordedDecision, 'arrivals' | 'vmCpu' | 'held' | 'tail'> &
  Partial<Pick<RecordedDecision, 'arrivals' | 'vmCpu' | 'held' | 'tail'>>;

export type DivergenceCause = 'placement' | 'in-flight' | 'measurement' | 'other';

/** A host's requested utilisation (demand ÷ MIPS) in one round: measured by the cluster, and on the trace. */
export interface HostGap {
  host: number;
  measured: number;
  traced: number;
  /** Overloaded in the cluster's round, and in the counterfactual on the trace. */
  overloadedMeasured: boolean;
  overloadedTraced: boolean;
  /** The VM whose measured − traced utilisation moved the host most (MIPS-weighted), with both values. */
  vm: { vm: number; measured: number; traced: number } | null;
}

export interface RoundDivergence {
  /** The interval that ends at this round (1-based; the round plans at its end). */
  interval: number;
  cause: DivergenceCause;
  cluster: [number, number][];
  sim: [number, number][];
  /** The cluster's state planned on the trace's interval means. */
  traced: [number, number][];
  overloaded: { cluster: number[]; sim: number[]; traced: number[] };
  /** The hosts that a plan differs on (sources or targets in one plan but not the other), measured against traced. */
  gaps: HostGap[];
}

/** Measured ÷ traced utilisation of the VMs, per band of traced utilisation (the VM-intervals not in flight). */
export interface FidelityBand {
  band: string;
  n: number;
  traced: number;
  measured: number;
  /** Standard deviation of measured − traced: the noise, where `measured − traced` is the bias. */
  sd: number;
}

export interface Divergence {
  /** Rounds compared (both sides planned). */
  rounds: number;
  /** Rounds whose plans differ (as sets of (VM, target)). */
  differing: number;
  firstDiffering: number | null;
  byCause: Record<DivergenceCause, number>;
  /**
   * Rounds in which the cluster's own state, planned on the trace instead of on what it measured, gives another plan:
   * how often the measurement alone turns a decision, whatever the simulator did.
   */
  measurementFlips: number;
  /** |measured − traced| of the hosts' requested utilisation over all rounds and hosts with VMs: median, max. */
  hostGap: { median: number; max: number };
  /** Measured ÷ traced of the VMs measured this interval (not in flight, not held), by traced band. */
  fidelity: FidelityBand[];
  /** VM-rounds planned on a held value (in flight, or a meter that did not answer), and on a VM measured on arrival. */
  held: number;
  tail: number;
  /** The differing rounds, in order. */
  intervals: RoundDivergence[];
}

const key = (p: readonly [number, number]): string => `${p[0]}>${p[1]}`;

function samePlan(a: readonly [number, number][], b: readonly [number, number][]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(a.map(key));
  return b.every((p) => s.has(key(p)));
}

function sameArray(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

const median = (xs: readonly number[]): number => (xs.length === 0 ? 0 : medianOf(xs));

/** The trace's interval mean of VM v at step k (step 0: the sample), as the simulator's livemig mode sees it. */
function traceMean(w: Workload, v: number, k: number): number {
  const K = w.samplesPerVm;
  const at = (i: number): number => w.samples[v * K + Math.min(i, K - 1)]! / 100;
  return k <= 0 ? at(0) : (at(k - 1) + at(k)) / 2;
}

const BANDS: readonly [number, number, string][] = [
  [0, 0.05, 'below 5 %'],
  [0.05, 0.1, '5–10 %'],
  [0.1, 0.2, '10–20 %'],
  [0.2, 0.4, '20–40 %'],
  [0.4, 0.7, '40–70 %'],
  [0.7, Infinity, '70 % and above'],
];

/**
 * Compares the cluster's planning rounds (`intervals[k − 1].decision`, the round at the end of interval k) with the
 * simulator's (`SimResult.decisions`, same order) on the same trace window and options.
 */
export function decisionDivergence(
  trace: Workload,
  options: SimOptions,
  cluster: readonly (ClusterDecision | undefined)[],
  sim: readonly SimDecision[],
): Divergence {
  const session = new PlanningSession(trace, options);
  // The same session state as the cluster's planner (its capacity checks are set by the initial placement).
  session.initialPlacement();
  const H = session.hosts;
  const N = trace.vms;
  const mips = Array.from({ length: N }, (_, v) => session.vmSpec(v).mips);
  const hostMips = Array.from({ length: H }, (_, h) => session.hostSpec(h).mips);
  const byCause: Record<DivergenceCause, number> = { placement: 0, 'in-flight': 0, measurement: 0, other: 0 };
  const intervals: RoundDivergence[] = [];
  const gapsAll: number[] = [];
  const bands = BANDS.map(([, , band]) => ({ band, n: 0, traced: 0, measured: 0, diff2: 0 }));
  let rounds = 0;
  let flips = 0;
  let held = 0;
  let tail = 0;
  const n = Math.min(cluster.length, sim.length);
  for (let i = 0; i < n; i++) {
    const c = cluster[i];
    const s = sim[i]!;
    if (!c) continue;
    const k = i + 1;
    rounds++;
    // The counterfactual: the cluster's state, each VM at the trace.
    const demand = new Float64Array(N);
    const history: number[][] = [];
    const requested = new Float64Array(H);
    // In flight at the round, or held at its last value: not a measurement of this interval.
    const flying = new Set([...c.inFlight.map(([vm]) => vm), ...(c.held ?? [])]);
    held += c.held?.length ?? 0;
    tail += c.tail?.length ?? 0;
    for (let v = 0; v < N; v++) {
      const u = traceMean(trace, v, k);
      demand[v] = u * mips[v]!;
      const hist: number[] = [];
      for (let j = k; j >= 1 && hist.length < HISTORY_LENGTH; j--) hist.push(traceMean(trace, v, j));
      history.push(hist);
      const h = c.vmHost[v] ?? -1;
      if (h >= 0) requested[h] = requested[h]! + demand[v]!;
      const m = c.vmUtilisation[v];
      if (h >= 0 && m !== undefined && !flying.has(v)) {
        const b = BANDS.findIndex(([lo, hi]) => u >= lo && u < hi);
        const band = bands[b]!;
        band.n++;
        band.traced += u;
        band.measured += m;
        band.diff2 += (m - u) ** 2;
      }
    }
    const round = session.plan({
      vmHost: c.vmHost,
      demand,
      history,
      hostUtilisation: Array.from(requested, (r, h) => r / hostMips[h]!),
      inFlight: c.inFlight.map(([vm, target]) => ({ vm, target })),
      arrivals: c.arrivals ?? [],
    });
    const traced = round.migrations.map((p): [number, number] => [p.vm, p.target]);
    for (let h = 0; h < H; h++) {
      if (!c.vmHost.includes(h)) continue;
      gapsAll.push(Math.abs((c.requested[h] ?? 0) - round.requested[h]!));
    }
    if (!samePlan(c.migrations, traced)) flips++;
    if (samePlan(c.migrations, s.migrations)) continue;
    const samePlacement = sameArray(c.vmHost, s.vmHost);
    const sameFlight = samePlan(c.inFlight, s.inFlight);
    const cause: DivergenceCause = !samePlacement
      ? 'placement'
      : !sameFlight
        ? 'in-flight'
        : samePlan(traced, s.migrations)
          ? 'measurement'
          : 'other';
    byCause[cause]++;
    // The hosts a plan differs on: sources and targets of the pairs in one plan and not the other.
    const cs = new Set(c.migrations.map(key));
    const ss = new Set(s.migrations.map(key));
    const hosts = new Set<number>();
    for (const p of [
      ...c.migrations.filter((p) => !ss.has(key(p))),
      ...s.migrations.filter((p) => !cs.has(key(p))),
    ]) {
      const from = c.vmHost[p[0]] ?? -1;
      if (from >= 0) hosts.add(from);
      hosts.add(p[1]);
    }
    const overTraced = new Set(round.overloadedHosts);
    const overMeasured = new Set(c.overloaded);
    const gaps = [...hosts]
      .sort((a, b) => a - b)
      .map((h): HostGap => {
        let vm: HostGap['vm'] = null;
        let worst = -1;
        for (let v = 0; v < N; v++) {
          if (c.vmHost[v] !== h) continue;
          const m = c.vmUtilisation[v] ?? 0;
          const t = demand[v]! / mips[v]!;
          const w = Math.abs(m - t) * mips[v]!;
          if (w > worst) {
            worst = w;
            vm = { vm: v, measured: m, traced: t };
          }
        }
        return {
          host: h,
          measured: c.requested[h] ?? 0,
          traced: round.requested[h]!,
          overloadedMeasured: overMeasured.has(h),
          overloadedTraced: overTraced.has(h),
          vm,
        };
      });
    intervals.push({
      interval: k,
      cause,
      cluster: c.migrations,
      sim: s.migrations,
      traced,
      overloaded: { cluster: c.overloaded, sim: s.overloaded, traced: round.overloadedHosts },
      gaps,
    });
  }
  return {
    rounds,
    differing: intervals.length,
    firstDiffering: intervals[0]?.interval ?? null,
    byCause,
    measurementFlips: flips,
    hostGap: { median: median(gapsAll), max: gapsAll.reduce((a, x) => Math.max(a, x), 0) },
    held,
    tail,
    fidelity: bands
      .filter((b) => b.n > 0)
      .map((b) => {
        const bias = (b.measured - b.traced) / b.n;
        return {
          band: b.band,
          n: b.n,
          traced: b.traced / b.n,
          measured: b.measured / b.n,
          sd: Math.sqrt(Math.max(0, b.diff2 / b.n - bias * bias)),
        };
      }),
    intervals,
  };
}

const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;
const plan = (ps: readonly [number, number][]): string =>
  ps.length === 0 ? '—' : ps.map(([v, h]) => `vm${v}→${h}`).join(' ');

/** The Markdown section: the summary, then the first `first` rounds whose plans differ and the gap behind each. */
export function divergenceMarkdown(d: Divergence, first = 5): string {
  const lines = [
    `**Decision divergence.** ${d.differing} of ${d.rounds} planning rounds planned differently from the plain ` +
      `simulator (first: interval ${d.firstDiffering ?? '—'}); by cause: measurement ${d.byCause.measurement}, ` +
      `placement ${d.byCause.placement} (an earlier round decided apart), in flight ${d.byCause['in-flight']}, ` +
      `other ${d.byCause.other}. On its own state, planning on the trace instead of on what it measured changes ` +
      `the cluster's plan in ${d.measurementFlips} of ${d.rounds} rounds; hosts' requested utilisation, measured − ` +
      `traced: median |gap| ${pct(d.hostGap.median)}, max ${pct(d.hostGap.max)}. VM-rounds planned on a held ` +
      `value (in flight): ${d.held}; on a VM measured on its target after arriving: ${d.tail}.`,
  ];
  if (d.fidelity.length > 0) {
    lines.push(
      '',
      `Measured ÷ traced per VM and interval: ${d.fidelity
        .map((b) => `${b.band} ${pct(b.traced)} → ${pct(b.measured)} (sd ${pct(b.sd)}, ${b.n})`)
        .join('; ')}.`,
    );
  }
  const shown = d.intervals.slice(0, first);
  if (shown.length > 0) {
    lines.push(
      '',
      '| interval | cause | cluster plan | simulator plan | cluster state on the trace | hosts: measured / traced (overloaded m/t), VM that moved it most |',
      '|---|---|---|---|---|---|',
    );
    for (const r of shown) {
      const gaps = r.gaps
        .map(
          (g) =>
            `h${g.host} ${pct(g.measured)} / ${pct(g.traced)} (${g.overloadedMeasured ? 'o' : '-'}/${g.overloadedTraced ? 'o' : '-'})` +
            (g.vm ? ` vm${g.vm.vm} ${pct(g.vm.measured)} / ${pct(g.vm.traced)}` : ''),
        )
        .join('; ');
      lines.push(
        `| ${r.interval} | ${r.cause} | ${plan(r.cluster)} | ${plan(r.sim)} | ${plan(r.traced)} | ${gaps} |`,
      );
    }
  }
  return lines.join('\n');
}
