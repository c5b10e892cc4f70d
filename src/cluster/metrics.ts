/**
 * The cluster's metrics in the simulator's terms, accumulated per scheduling interval from what was measured, and
 * the side-by-side comparison with a simulator run of the same hosts, VMs, window and policy.
 *
 * Accounting follows the simulator's livemig mode (src/sim/engine/accounting.ts): a host that held a VM at the
 * previous step is on and its energy over the interval is the trapezoid of its power at the two measured
 * utilisations; a host with no VM draws nothing (switched off). SLATAH: the share of active host time during which
 * the measured demand exceeded the host's MIPS. PDM: demand lost to migrations (measured: the guest's slowdown
 * during its migration over the migration time, plus all of it during the downtime) over all demand.
 */
import type { SwitchoverTimes } from '../migration/index.js';
import type { SimResult } from '../sim/index.js';
import type { ClusterViewMigration } from '../web/index.js';

/**
 * A migration the cluster carried out: what the live view shows (guest, hosts, the interval that started it, status,
 * wall-clock time and downtime as measured, bytes, verified, trace seconds) and what the comparison needs besides.
 */
export interface ClusterMigration extends ClusterViewMigration {
  vm: number;
  traceDowntime: number;
  /** The engine's pre-copy model for this migration's RAM, dirty rate and bandwidth, wall ms. */
  modelTimeMs: number;
  /** The guest's measured slowdown during the migration (1 − steps/s during ÷ before), 0–1. */
  slowdown: number;
  /**
   * Where the downtime went, as the engine reports it (source's clock: pause, last pages, digest, the two round
   * trips `checkMs` and `ackMs`, and the destination's own steps): with `--link-delay`, what the link added shows here.
   */
  switchover?: SwitchoverTimes;
  /** What the pre-copy model calibrated on the run takes from this migration (src/cluster/agreement.ts). */
  calibration?: {
    /** Round 1: bytes sent and their rate, bytes/s; the guest's dirty rate then, bytes/s. */
    round1Bytes: number;
    round1BytesPerSec: number;
    dirtyRate: number;
    /** Wire bytes per resent page byte (XBZRLE), 1 without. */
    resendRatio: number;
    setupMs: number;
    /** Σ of the pre-copy rounds' durations. */
    roundsMs: number;
    downtimeLimitMs: number;
    maxRounds: number;
  };
}

export interface ClusterMetrics {
  energyKWh: number;
  migrations: number;
  slatah: number;
  pdm: number;
  slav: number;
  esv: number;
  hostShutdowns: number;
  /** Mean migration time and downtime, trace seconds. */
  meanMigrationTime: number;
  meanDowntime: number;
  migrationBytes: number;
}

/** Running totals over the intervals. */
export class MetricsAccumulator {
  energyWs = 0;
  activeTime = 0;
  violationTime = 0;
  requestedMipsSeconds = 0;
  degradedMipsSeconds = 0;
  shutdowns = 0;
  readonly #wasOn: boolean[];

  constructor(hosts: number, initiallyOn: boolean[]) {
    this.#wasOn = Array.from({ length: hosts }, (_, h) => initiallyOn[h] ?? false);
    // The simulator (CloudSim's state history) starts every host active: one left empty at t = 0 counts as a
    // shutdown at its first entry. Counted the same way here.
    this.shutdowns = this.#wasOn.filter((on) => !on).length;
  }

  /**
   * One interval of `seconds` (trace time): host h went from utilisation `u0[h]` to `u1[h]` (capped at 1), its VMs
   * asked for `requested[h]` MIPS of its `mips[h]`, and it holds a VM now (`on[h]`).
   */
  interval(
    seconds: number,
    watts: ((u: number) => number)[],
    u0: ArrayLike<number>,
    u1: ArrayLike<number>,
    requested: ArrayLike<number>,
    mips: ArrayLike<number>,
    on: readonly boolean[],
  ): void {
    for (let h = 0; h < watts.length; h++) {
      if (this.#wasOn[h]) {
        const a = watts[h]!(Math.min(1, u0[h]!));
        const b = watts[h]!(Math.min(1, u1[h]!));
        this.energyWs += ((a + b) / 2) * seconds;
        this.activeTime += seconds;
        if (requested[h]! > mips[h]!) this.violationTime += seconds;
        this.requestedMipsSeconds += requested[h]! * seconds;
      }
      if (this.#wasOn[h] && !on[h]) this.shutdowns++;
      this.#wasOn[h] = on[h]!;
    }
  }

  /**
   * Host h was switched on between two measurements (a migration to it started): it draws power from now, as the
   * simulator bills a host from the moment an incoming copy makes it active.
   */
  switchedOn(h: number): void {
    this.#wasOn[h] = true;
  }

  result(migrations: readonly ClusterMigration[]): ClusterMetrics {
    const done = migrations.filter((m) => m.status === 'completed');
    const slatah = this.activeTime > 0 ? this.violationTime / this.activeTime : 0;
    const pdm = this.requestedMipsSeconds > 0 ? this.degradedMipsSeconds / this.requestedMipsSeconds : 0;
    const energyKWh = this.energyWs / 3.6e6;
    return {
      energyKWh,
      migrations: migrations.length,
      slatah,
      pdm,
      slav: slatah * pdm,
      esv: energyKWh * slatah * pdm,
      hostShutdowns: this.shutdowns,
      meanMigrationTime: done.length ? done.reduce((a, m) => a + m.traceTime, 0) / done.length : 0,
      meanDowntime: done.length ? done.reduce((a, m) => a + m.traceDowntime, 0) / done.length : 0,
      migrationBytes: migrations.reduce((a, m) => a + m.transferredBytes, 0),
    };
  }
}

export interface ComparisonRow {
  metric: string;
  cluster: number;
  sim: number;
  /** (cluster − sim) / sim; null when the simulator's figure is 0. */
  relative: number | null;
}

/** The compared metrics and their labels, in table order. */
export const METRIC_LABELS: readonly [keyof ClusterMetrics & keyof SimResult, string][] = [
  ['energyKWh', 'energy (kWh)'],
  ['migrations', 'migrations'],
  ['slatah', 'SLATAH'],
  ['pdm', 'PDM'],
  ['slav', 'SLAV'],
  ['esv', 'ESV'],
  ['hostShutdowns', 'host shutdowns'],
  ['meanMigrationTime', 'mean migration time (trace s)'],
  ['meanDowntime', 'mean downtime (trace s)'],
];

/** The cluster's figures next to the simulator's, with the relative difference. */
export function compareWithSim(c: ClusterMetrics, s: SimResult): ComparisonRow[] {
  return METRIC_LABELS.map(([k, metric]) => {
    const cluster = c[k];
    const sim = s[k];
    return { metric, cluster, sim, relative: sim !== 0 ? (cluster - sim) / sim : cluster === 0 ? 0 : null };
  });
}
