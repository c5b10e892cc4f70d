/** What a simulation run returns: the totals CloudSim prints, the livemig additions, and per-interval series. */
import type { SimOptions } from '../config.js';

export interface SimSeries {
  /** End time of each interval, seconds. */
  readonly time: number[];
  readonly energyKWh: number[];
  readonly activeHosts: number[];
  readonly overloadedHosts: number[];
  readonly migrations: number[];
  /** Fraction of active host-time with SLA violation within the interval. */
  readonly slaViolation: number[];
  readonly vms: number[];
}

/**
 * One planning round as the simulator decided it (`SimOptions.decisions`): the placement it planned on, each host's
 * requested demand ÷ MIPS, the hosts found overloaded, the plan (held-back entries included) and what was in flight.
 */
export interface SimDecision {
  /** Trace seconds of the round. */
  readonly time: number;
  readonly vmHost: number[];
  /** Each VM's demand as the round saw it, fraction of its MIPS. */
  readonly vmUtilisation: number[];
  readonly requested: number[];
  readonly overloaded: number[];
  /** [vm, target] pairs in the engine's order. */
  readonly migrations: [number, number][];
  readonly inFlight: [number, number][];
  /** The VMs whose migration completed since the last round, in completion order (their place in a host's list). */
  readonly arrivals: number[];
}

/** Order statistics of a set of durations, seconds. */
export interface SimDistribution {
  readonly count: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

/** Nearest-rank quantiles of `values` (unsorted; not modified). */
export function distributionOf(values: readonly number[]): SimDistribution | undefined {
  if (values.length === 0) return undefined;
  const v = Float64Array.from(values).sort();
  const at = (q: number): number => v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))]!;
  let sum = 0;
  for (const x of v) sum += x;
  return {
    count: v.length,
    mean: sum / v.length,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: v[v.length - 1]!,
  };
}

export interface SimResult {
  readonly policy: string;
  readonly mode: SimOptions['mode'];
  readonly workload: string;
  readonly hosts: number;
  readonly vms: number;
  readonly seed: number;
  readonly energyKWh: number;
  readonly migrations: number;
  /** SLA violation time per active host (pooled ratio, as CloudSim prints it). */
  readonly slatah: number;
  /** Performance degradation due to migration (pooled ratio). */
  readonly pdm: number;
  readonly slav: number;
  readonly esv: number;
  readonly hostShutdowns: number;
  /** Mean active time before a host switches off, seconds. */
  readonly meanTimeBeforeHostShutdown: number;
  /** CloudSim's "mean time before a VM migration": in fact the mean migration duration, seconds. */
  readonly meanTimeBeforeVmMigration: number;
  /** Mean modelled migration time and downtime, seconds (downtime is 0 in CloudSim's model). */
  readonly meanMigrationTime: number;
  readonly meanDowntime: number;
  /**
   * SimDistribution of the modelled migration times and downtimes, s (CloudSim: RAM ÷ bandwidth and no downtime).
   * Absent when no migration happened.
   */
  readonly migrationTime?: SimDistribution;
  readonly downtime?: SimDistribution;
  /**
   * livemig mode with `profile` pricing: the energy the migrations add, kWh (included in `energyKWh`), from the
   * engine's measured J per GiB moved (modelled: the meter's power model, data/profiles/README.md).
   */
  readonly migrationEnergyKWh: number;
  /** Bytes the migrations moved (CloudSim: whole RAM each). */
  readonly migrationBytes: number;
  /** VMs removed because their demand hit exactly 0 (CloudSim quirk Q1; 0 in livemig mode). */
  readonly vmsDeleted: number;
  /** VMs no host could take at t = 0. */
  readonly vmsUnplaced: number;
  /** Duplicate migrations of one VM in one round (CloudSim's underload pass can re-place a just-placed VM). */
  readonly duplicateMigrations: number;
  readonly wallMs: number;
  readonly series?: SimSeries;
  /** With `migrationLog`: every migration started, in order, as flat (time s, VM, source host, target host) quads. */
  readonly migrationLog?: number[];
  /** With `decisions`: every planning round, what it planned on and what it planned. */
  readonly decisions?: SimDecision[];
}

/** The migration log as text, one `MIG <time> vm=<vm> from=<host> to=<host>` line per migration (CloudSim's ids). */
export function migrationLogLines(log: readonly number[]): string {
  let out = '';
  for (let i = 0; i + 3 < log.length; i += 4) {
    out += `MIG ${Number(log[i]!.toFixed(6))} vm=${log[i + 1]} from=${log[i + 2]} to=${log[i + 3]}\n`;
  }
  return out;
}
