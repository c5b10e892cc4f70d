/**
 * The cluster measured against the simulator, fairly: the simulator runs four times on the same hosts, VMs, window
 * and policy, and each step of the ladder takes one of the simulator's assumptions away.
 *
 * 1. `samples`: CloudSim's utilisation model — each VM at the trace's instantaneous sample at each interval's end —
 *    with migrations priced by the engine's pre-copy model (`SimOptions.sampling: 'instant'`).
 * 2. `model`: what `livemig sim` does: each VM at the interval's mean of the trace, as a monitor (the cluster's)
 *    measures it (`sampling: 'mean'`, livemig mode's default), migrations priced by the model for CloudSim's VM
 *    sizes on an idle 1 Gbit/s link.
 * 3. `measured-migrations`: the same, each VM's migration priced as the cluster measured it (trace seconds:
 *    wall × speed; a VM that did not migrate gets the mean), spanning as many intervals as it took.
 * 4. `measured-demand`: the same, on the utilisation the cluster delivered and measured (per VM per interval)
 *    instead of the trace: what is left is the policy's inputs being the same and the rest of the simulator's
 *    assumptions (billing between events, its 10 % migration overhead, placement during a migration).
 *
 * Each metric's row names, where the cluster and the simulator differ, the assumption that the ladder shows causes
 * it. Migration time per VM is checked against the pre-copy model on its own: a priori (the bandwidth limit, the
 * engine's default costs) and calibrated on this run (round 1's throughput, dirty rate and resend ratio, and the
 * other migrations' median setup and switch-over times: leave-one-out, so a migration never predicts itself).
 */
import { predictPrecopy } from '../migration/model.js';
import { DEFAULT_OPTIONS, type MigrationOptions } from '../migration/options.js';
import type { MigrationReport } from '../migration/stats.js';
import type { MeasuredPrices, SimDecision, SimOptions, SimResult, Workload } from '../sim/index.js';
import { medianOf, PlanningSession, parsePolicy, planetlabDatacenter, simulate } from '../sim/index.js';
import { type ClusterDecision, type Divergence, decisionDivergence } from './divergence.js';
import type { ClusterMetrics, ClusterMigration } from './metrics.js';

export type SimVariantKey = 'samples' | 'model' | 'measured-migrations' | 'measured-demand';

export interface SimVariant {
  key: SimVariantKey;
  label: string;
  sim: Omit<SimResult, 'series'>;
  series: { time: number[]; activeHosts: number[]; migrations: number[] };
}

export interface AgreementRow {
  metric: string;
  cluster: number;
  /** One figure per variant, in `variants` order. */
  sims: number[];
  /** (cluster − sim) / sim per variant; null when the simulator's figure is 0 and the cluster's is not. */
  relative: (number | null)[];
  /** The tolerance on |relative| (energy, migrations 10 %, SLAV 20 %); null: no target, shown for reading. */
  target: number | null;
  /** Per variant: within the target (null without one). */
  agrees: (boolean | null)[];
  /**
   * The absolute tolerance that replaces the relative one when either side is 0 (SLAV: a relative difference from
   * 0 is undefined, or −100 % whatever the other side is); null: the metric has none.
   */
  absolute: number | null;
  /** Per variant: judged on |cluster − sim| against `absolute`, because one side is 0. */
  byAbsolute: boolean[];
  /** Where they differ: the simulator assumption the ladder shows causes it. Empty when every variant agrees. */
  cause: string;
}

export interface MigrationModelCheck {
  /** Completed migrations compared. */
  n: number;
  measuredMeanS: number;
  apriori: { meanS: number; medianAbsError: number };
  calibrated: { meanS: number; medianAbsError: number };
  /** The model's own median |error| on total time (docs/model.md, all cells at load 23–29). */
  target: number;
  agrees: boolean;
}

export interface Agreement {
  variants: SimVariant[];
  rows: AgreementRow[];
  migrationModel: MigrationModelCheck | null;
  /** Measured demand ÷ traced demand over the run (Σ over VMs and intervals). */
  deliveredRatio: number;
  /**
   * Per planning round, where the cluster's plan and the plain simulator's (`model`) differ and why
   * (src/cluster/divergence.ts); absent for runs saved before the rounds were recorded.
   */
  divergence?: Divergence;
}

/**
 * The simulator's options for a cluster run: the same hosts, policy, seed and interval, under the cluster's
 * concurrency limits (it plans the same; only the starts are bounded). livemig mode: VMs seen at each interval's mean.
 */
export function clusterSimOptions(c: {
  policy: string;
  hosts: number;
  seed: number;
  interval: number;
  migrationLimits: { perHost: number; perCluster: number };
}): SimOptions {
  return {
    mode: 'livemig',
    policy: parsePolicy(c.policy),
    datacenter: planetlabDatacenter(c.hosts),
    seed: c.seed,
    interval: c.interval,
    migrationLimits: c.migrationLimits,
  };
}

/** The targets; the model's median time error measured in docs/model.md. */
export const TARGETS = { energy: 0.1, migrations: 0.1, slav: 0.2, modelTime: 0.2 } as const;

/**
 * SLAV when the cluster's or the simulator's is 0 (the cluster's delivered CPU never exceeds what it granted, so its
 * SLATAH, hence SLAV, is often exactly 0): agreement is |cluster − sim| ≤ 1e-6, a host short of MIPS 0.1 % of the
 * active time with 0.1 % of the demand lost to migrations. A stated scale, not a relative difference: any nonzero
 * figure is "−100 %" from 0.
 */
export const SLAV_ABSOLUTE = 1e-6;

/**
 * The measured state as a workload: sample 0 is the trace's (the initial placement), sample k the interval-k mean;
 * `exact` holds the same unrounded (`SimOptions.utilisation`: whole percents flip threshold decisions).
 */
export function measuredWorkload(
  trace: Workload,
  utilisation: readonly (readonly number[])[],
): { workload: Workload; exact: Float64Array } {
  const K = trace.samplesPerVm;
  const samples = new Uint8Array(trace.vms * K);
  const exact = new Float64Array(trace.vms * K);
  for (let v = 0; v < trace.vms; v++) {
    exact[v * K] = trace.samples[v * K]! / 100;
    const u = utilisation[v] ?? [];
    for (let k = 1; k < K; k++) {
      const x = u[k - 1];
      exact[v * K + k] = x === undefined ? trace.samples[v * K + k]! / 100 : Math.min(1, Math.max(0, x));
    }
    for (let k = 0; k < K; k++) samples[v * K + k] = Math.round(exact[v * K + k]! * 100);
  }
  return { workload: { ...trace, name: `${trace.name} (measured)`, samples }, exact };
}

/**
 * Each VM's migration as measured: its own completed migrations' mean time and downtime (trace s), or the mean over
 * all of them; bytes scaled from the miniature's RAM to the simulator's VM. Null when nothing completed.
 */
export function measuredPrices(
  vms: number,
  migrations: readonly ClusterMigration[],
  bytesScale: (v: number) => number,
): MeasuredPrices | null {
  const done = migrations.filter((m) => m.status === 'completed');
  if (done.length === 0) return null;
  const mean = (xs: readonly ClusterMigration[], f: (m: ClusterMigration) => number): number =>
    xs.reduce((a, m) => a + f(m), 0) / xs.length;
  const time = new Float64Array(vms);
  const downtime = new Float64Array(vms);
  const bytes = new Float64Array(vms);
  const slowdown = new Float64Array(vms);
  for (let v = 0; v < vms; v++) {
    const own = done.filter((m) => m.vm === v);
    const xs = own.length > 0 ? own : done;
    time[v] = mean(xs, (m) => m.traceTime);
    downtime[v] = mean(xs, (m) => m.traceDowntime);
    bytes[v] = mean(xs, (m) => m.transferredBytes) * bytesScale(v);
    slowdown[v] = mean(xs, (m) => m.slowdown);
  }
  return { time, downtime, bytes, slowdown };
}

const median = (xs: readonly number[]): number => (xs.length === 0 ? 0 : medianOf(xs));

/**
 * The pre-copy model calibrated on the run for migration i, wall ms: its round 1 as measured (bytes, throughput,
 * dirty rate), its resend ratio, and the median setup and switch-over (downtime) of the other migrations.
 */
export function calibratedModelMs(done: readonly ClusterMigration[], i: number): number | null {
  const m = done[i]!;
  const c = m.calibration;
  if (!c || c.round1BytesPerSec <= 0) return null;
  const others = done.filter((_, j) => j !== i);
  const setup = median(others.map((x) => x.calibration?.setupMs ?? 0)) / 1000;
  const switchover = median(others.map((x) => x.downtimeMs)) / 1000;
  // What is neither setup, pre-copy rounds nor downtime: mostly waiting for the destination's guest to come up
  // (READY comes only once it runs), seconds on a loaded machine.
  const rest =
    median(
      others.map((x) =>
        Math.max(
          0,
          x.totalTimeMs - (x.calibration?.setupMs ?? 0) - (x.calibration?.roundsMs ?? 0) - x.downtimeMs,
        ),
      ),
    ) / 1000;
  const pred = predictPrecopy({
    ramBytes: c.round1Bytes,
    dirtyRate: c.dirtyRate,
    bandwidth: c.round1BytesPerSec,
    compressionRatio: Math.min(1, Math.max(0.001, c.resendRatio)),
    downtimeLimit: c.downtimeLimitMs / 1000,
    maxRounds: c.maxRounds,
    resumeOverhead: others.length > 0 ? switchover : m.downtimeMs / 1000,
  });
  return (setup + rest + pred.totalTime) * 1000;
}

export function migrationModelCheck(migrations: readonly ClusterMigration[]): MigrationModelCheck | null {
  const done = migrations.filter((m) => m.status === 'completed' && m.totalTimeMs > 0);
  if (done.length === 0) return null;
  const apriori: number[] = [];
  const calibrated: number[] = [];
  const errA: number[] = [];
  const errC: number[] = [];
  done.forEach((m, i) => {
    apriori.push(m.modelTimeMs);
    errA.push(Math.abs(m.totalTimeMs - m.modelTimeMs) / m.totalTimeMs);
    const c = calibratedModelMs(done, i);
    if (c !== null) {
      calibrated.push(c);
      errC.push(Math.abs(m.totalTimeMs - c) / m.totalTimeMs);
    }
  });
  const mean = (xs: number[]): number => (xs.length ? xs.reduce((a, x) => a + x, 0) / xs.length / 1000 : 0);
  const medC = median(errC);
  return {
    n: done.length,
    measuredMeanS: done.reduce((a, m) => a + m.totalTimeMs, 0) / done.length / 1000,
    apriori: { meanS: mean(apriori), medianAbsError: median(errA) },
    calibrated: { meanS: mean(calibrated), medianAbsError: medC },
    target: TARGETS.modelTime,
    agrees: errC.length > 0 && medC <= TARGETS.modelTime,
  };
}

/** The four simulator runs of the ladder (the second is the plain `livemig sim` run). */
export function simLadder(
  trace: Workload,
  measured: { workload: Workload; exact: Float64Array },
  options: SimOptions,
  prices: MeasuredPrices | null,
): (SimVariant & { decisions?: SimDecision[] })[] {
  const run = (
    key: SimVariantKey,
    label: string,
    w: Workload,
    o: SimOptions,
  ): SimVariant & { decisions?: SimDecision[] } => {
    const { series, decisions, ...sim } = simulate(w, { ...o, series: true, decisions: key === 'model' });
    return {
      key,
      label,
      sim,
      ...(decisions ? { decisions } : {}),
      series: {
        time: series?.time ?? [],
        activeHosts: series?.activeHosts ?? [],
        migrations: series?.migrations ?? [],
      },
    };
  };
  const priced: SimOptions = prices
    ? { ...options, pricing: { ...options.pricing, measured: prices } }
    : options;
  return [
    run('samples', 'sim: trace samples (CloudSim), model', trace, { ...options, sampling: 'instant' }),
    run('model', 'sim: trace, model', trace, options),
    run(
      'measured-migrations',
      `sim: trace, measured migrations${prices ? '' : ' (none: model)'}`,
      trace,
      priced,
    ),
    // The measured utilisation is already each interval's mean: taken as it is.
    run('measured-demand', 'sim: measured demand and migrations', measured.workload, {
      ...priced,
      sampling: 'instant',
      utilisation: measured.exact,
    }),
  ];
}

/** Metric, label, relative target, absolute tolerance when one side is 0. */
const ROWS: readonly [keyof ClusterMetrics & keyof SimResult, string, number | null, number | null][] = [
  ['energyKWh', 'energy (kWh)', TARGETS.energy, null],
  ['migrations', 'migrations', TARGETS.migrations, null],
  ['slatah', 'SLATAH', null, null],
  ['pdm', 'PDM', null, null],
  ['slav', 'SLAV', TARGETS.slav, SLAV_ABSOLUTE],
  ['esv', 'ESV', null, null],
  ['hostShutdowns', 'host shutdowns', null, null],
  ['meanMigrationTime', 'mean migration time (trace s)', null, null],
  ['meanDowntime', 'mean downtime (trace s)', null, null],
];

/** Relative difference; 0 when both are 0, null when only the simulator's is. */
export function relativeDiff(cluster: number, sim: number): number | null {
  if (sim !== 0) return (cluster - sim) / sim;
  return cluster === 0 ? 0 : null;
}

/** What the run knows that the causes quote. */
export interface CauseContext {
  deliveredRatio: number;
  /** Mean measured migration time, trace s, and the model's price for the simulator's VMs (first variant). */
  measuredMigrationS: number;
  modelMigrationS: number;
  /** The same for downtime, trace s. */
  measuredDowntimeS: number;
  modelDowntimeS: number;
  /** Migrations the concurrency limits held back. */
  deferred: number;
  /** Mean intervals a measured migration spans. */
  spanIntervals: number;
  /** Mean measured slowdown of a guest during its migration, 0–1. */
  meanSlowdown: number;
}

/** Whether a step of the ladder closed a gap: from `a` (past the tolerance) to `b`, by a fifth or more. */
const closer = (a: number | null, b: number | null, tol: number): boolean =>
  b !== null && (a === null || (Math.abs(a) > tol && Math.abs(b) < Math.abs(a) * 0.8));

/** The assumption that explains a metric's gap, from how the ladder moved it. */
function causeOf(metric: string, rel: (number | null)[], tol: number, c: CauseContext): string {
  if (rel.every((r) => r !== null && Math.abs(r) <= tol)) return '';
  const [sm, m, mm, md] = rel;
  const parts: string[] = [];
  if (closer(sm ?? null, m ?? null, tol)) {
    parts.push(
      'sampling: CloudSim plans on the trace’s instantaneous sample at each interval’s end; a monitor, the ' +
        'cluster’s and `livemig sim`’s, on the interval’s mean',
    );
  }
  if (closer(m ?? null, mm ?? null, tol)) {
    parts.push(
      `migration model: the simulator prices a migration at ${c.modelMigrationS.toFixed(0)} trace s (pre-copy model, ` +
        `CloudSim VM sizes, idle 1 Gbit/s link, downtime ${c.modelDowntimeS.toFixed(1)} s); measured ` +
        `${c.measuredMigrationS.toFixed(0)} trace s (${c.spanIntervals.toFixed(1)} intervals), downtime ` +
        `${c.measuredDowntimeS.toFixed(1)} s`,
    );
  }
  if (closer(mm ?? null, md ?? null, tol)) {
    parts.push(
      'delivered CPU: the guests got ' +
        `${c.deliveredRatio.toFixed(2)} × their trace overall, measured with noise, and the policy decides on it`,
    );
  }
  const residual = md ?? null;
  const left = residual === null || Math.abs(residual) > tol;
  if (left) {
    switch (metric) {
      case 'energy (kWh)':
      case 'host shutdowns':
        parts.push(
          'billing: the simulator bills a host from its VMs’ allocation, linear between events (a migration’s ' +
            'start and end among them), and switches a drained host off at the next step; the cluster bills the ' +
            'measured CPU, linear between interval ends, so a migration’s effect on a host shows at the next one',
        );
        break;
      case 'migrations':
        parts.push(
          `placement during a migration: the cluster starts at most its concurrency limits (${c.deferred} held back ` +
            'and re-planned), and a guest in flight for several intervals is neither re-selected nor relieves its ' +
            'host until it arrives; the simulator starts every planned migration at once',
        );
        break;
      case 'SLATAH':
        parts.push(
          'SLA time: the simulator counts a host while its VMs’ allocation is below their request; the cluster while ' +
            'the measured demand exceeds the host’s MIPS (delivered CPU is capped at what was granted)',
        );
        break;
      case 'PDM':
      case 'SLAV':
      case 'ESV':
        parts.push(
          `degradation: the model-priced simulator takes 10 % of a migrating VM’s demand (CloudSim) plus its ` +
            `downtime; the cluster measures the guest’s own slowdown (${(c.meanSlowdown * 100).toFixed(0)} % on ` +
            'average) and its downtime × speed; the ladder’s last runs charge the measured slowdown per VM, so what ' +
            'is left is which VMs migrate when (the measured slowdown is charged at the demand the VM had at its start)',
        );
        break;
      default:
        parts.push('measured per migration in the cluster; the simulator’s model figure');
    }
  }
  return parts.join('; ');
}

/** The agreement table: the cluster's metrics against each variant, targets, and causes. */
export function agreementRows(
  metrics: ClusterMetrics,
  variants: readonly SimVariant[],
  c: CauseContext,
): AgreementRow[] {
  return ROWS.map(([k, metric, target, absolute]) => {
    const cluster = metrics[k];
    const sims = variants.map((v) => v.sim[k]);
    const relative = sims.map((s) => relativeDiff(cluster, s));
    const byAbsolute = sims.map((s) => absolute !== null && (cluster === 0 || s === 0));
    const agrees = relative.map((r, i) => {
      if (target === null) return null;
      if (byAbsolute[i]) return Math.abs(cluster - sims[i]!) <= absolute!;
      return r !== null && Math.abs(r) <= target;
    });
    // A gap is explained where the row misses its target (rows without one: past 10 %); a difference within the
    // absolute tolerance is none.
    const gaps = relative.map((r, i) => (byAbsolute[i] ? (agrees[i] ? 0 : null) : r));
    return {
      metric,
      cluster,
      sims,
      relative,
      target,
      agrees,
      absolute,
      byAbsolute,
      cause: causeOf(metric, gaps, target ?? 0.1, c),
    };
  });
}

/** What the calibrated model needs from one migration's report (see `calibratedModelMs`). */
export function calibrationOf(
  r: MigrationReport,
  options: Partial<MigrationOptions>,
): NonNullable<ClusterMigration['calibration']> {
  const first = r.perRound[0];
  const later = r.perRound.slice(1);
  const laterBytes = later.reduce((a, x) => a + x.bytes, 0);
  const laterPages = later.reduce((a, x) => a + x.pagesSent, 0);
  const seconds = first && first.durationMs > 0 ? first.durationMs / 1000 : 0;
  return {
    round1Bytes: first?.bytes ?? 0,
    round1BytesPerSec: seconds > 0 ? first!.bytes / seconds : 0,
    dirtyRate: seconds > 0 ? (first!.dirtyPages * r.pageSize) / seconds : 0,
    resendRatio: laterPages > 0 ? laterBytes / (laterPages * r.pageSize) : 1,
    setupMs: r.setupTimeMs,
    roundsMs: r.perRound.reduce((a, x) => a + x.durationMs, 0),
    downtimeLimitMs: r.downtimeLimitMs,
    maxRounds: Math.max(1, options.maxRounds ?? DEFAULT_OPTIONS.maxRounds),
  };
}

/** What the agreement is computed from: the run's measurements and the simulator's setting of the same run. */
export interface AgreementInput {
  /** The window's traces, one VM per guest. */
  trace: Workload;
  /** The simulator's options of the run (hosts, policy, seed, interval, the cluster's concurrency limits). */
  options: SimOptions;
  metrics: ClusterMetrics;
  migrations: readonly ClusterMigration[];
  /** Per VM: its measured utilisation per interval and its guest's RAM, MiB. */
  vms: readonly { readonly utilisation: readonly number[]; readonly ramMiB: number }[];
  /** Σ demand over the run's intervals, MIPS: measured, and what the trace asked. */
  demandMeasured: number;
  demandTrace: number;
  /** Migrations the limits held back. */
  deferred: number;
  /** The cluster's planning rounds, one per interval (undefined: not recorded, or no round after the last). */
  decisions?: readonly (ClusterDecision | undefined)[];
}

/**
 * The simulator ladder, the agreement table and the migration-model check of one run; `model` is the plain
 * `livemig sim` run. Deterministic: the same input (a saved run's `cluster.json`) gives the same agreement.
 */
export function agreementFor(i: AgreementInput): { agreement: Agreement; model: SimVariant } {
  const session = new PlanningSession(i.trace, i.options);
  const prices = measuredPrices(
    i.trace.vms,
    i.migrations,
    (v) => (session.vmSpec(v).ramMb * 1e6) / (i.vms[v]!.ramMiB * 1024 * 1024),
  );
  const ladder = simLadder(
    i.trace,
    measuredWorkload(
      i.trace,
      i.vms.map((vm) => vm.utilisation),
    ),
    i.options,
    prices,
  );
  const simDecisions = ladder.find((v) => v.key === 'model')?.decisions ?? [];
  const variants: SimVariant[] = ladder.map(({ decisions: _, ...v }) => v);
  const model = variants.find((v) => v.key === 'model')!;
  const recorded = i.decisions?.some((d) => d !== undefined) ?? false;
  const done = i.migrations.filter((m) => m.status === 'completed');
  const deliveredRatio = i.demandTrace > 0 ? i.demandMeasured / i.demandTrace : 1;
  const interval = i.options.interval ?? 300;
  const agreement: Agreement = {
    variants,
    rows: agreementRows(i.metrics, variants, {
      deliveredRatio,
      measuredMigrationS: i.metrics.meanMigrationTime,
      modelMigrationS: model.sim.meanMigrationTime,
      measuredDowntimeS: i.metrics.meanDowntime,
      modelDowntimeS: model.sim.meanDowntime,
      deferred: i.deferred,
      spanIntervals: i.metrics.meanMigrationTime / interval,
      meanSlowdown: done.length ? done.reduce((a, m) => a + m.slowdown, 0) / done.length : 0,
    }),
    migrationModel: migrationModelCheck(i.migrations),
    deliveredRatio,
    ...(recorded
      ? { divergence: decisionDivergence(i.trace, i.options, i.decisions ?? [], simDecisions) }
      : {}),
  };
  return { agreement, model };
}
