/**
 * What a simulation run is made of: the data centre (host and VM types), the policy, the mode, and how migrations
 * are priced. `planetlabDatacenter()` is CloudSim's PlanetLab example (CLOUDSIM.md §2).
 */
import { UsageError } from '../errors.js';
import { type PowerModel, specPowerServer } from '../power/index.js';
import { type BaselineKind, DEFAULT_SAFETY, type OverloadKind, type SelectionKind } from './policies.js';

export interface HostType {
  readonly name: string;
  readonly pes: number;
  readonly peMips: number;
  readonly ramMb: number;
  /** kbit/s, as CloudSim counts it. */
  readonly bwKbps: number;
  readonly power: PowerModel;
}

export interface VmType {
  readonly mips: number;
  readonly ramMb: number;
  readonly bwKbps: number;
}

export interface Datacenter {
  readonly hostTypes: readonly HostType[];
  /** Type index of each host. */
  readonly hostTypeOf: Uint8Array;
  readonly vmTypes: readonly VmType[];
}

export const HP_ML110_G4: HostType = {
  name: 'HP ProLiant ML110 G4',
  pes: 2,
  peMips: 1860,
  ramMb: 4096,
  bwKbps: 1_000_000,
  power: specPowerServer('hpProLiantMl110G4'),
};

export const HP_ML110_G5: HostType = {
  name: 'HP ProLiant ML110 G5',
  pes: 2,
  peMips: 2660,
  ramMb: 4096,
  bwKbps: 1_000_000,
  power: specPowerServer('hpProLiantMl110G5'),
};

/** CloudSim's four VM types (Amazon EC2-like): MIPS 2500/2000/1000/500, RAM 870/1740/1740/613 MB, 100 Mbit/s. */
export const PLANETLAB_VM_TYPES: readonly VmType[] = [
  { mips: 2500, ramMb: 870, bwKbps: 100_000 },
  { mips: 2000, ramMb: 1740, bwKbps: 100_000 },
  { mips: 1000, ramMb: 1740, bwKbps: 100_000 },
  { mips: 500, ramMb: 613, bwKbps: 100_000 },
];

/** CloudSim's PlanetLab data centre: host i is a G4 if i is even, a G5 if odd. */
export function planetlabDatacenter(hosts = 800): Datacenter {
  const hostTypeOf = new Uint8Array(hosts);
  for (let i = 0; i < hosts; i++) hostTypeOf[i] = i % 2;
  return { hostTypes: [HP_ML110_G4, HP_ML110_G5], hostTypeOf, vmTypes: PLANETLAB_VM_TYPES };
}

/** CloudSim's VM type assignment: contiguous blocks, VM i gets type floor(i / ceil(N / types)). */
export function vmTypesByBlocks(vms: number, types: number): Uint8Array {
  const out = new Uint8Array(vms);
  const block = Math.ceil(vms / types);
  for (let i = 0; i < vms; i++) out[i] = Math.min(types - 1, Math.floor(i / block));
  return out;
}

export type PolicySpec =
  | {
      readonly kind: 'migration';
      readonly overload: OverloadKind;
      readonly selection: SelectionKind;
      readonly safety: number;
    }
  | { readonly kind: 'baseline'; readonly baseline: BaselineKind };

const OVERLOADS: readonly OverloadKind[] = ['thr', 'iqr', 'mad', 'lr', 'lrr'];
const SELECTIONS: readonly SelectionKind[] = ['mmt', 'rs', 'mc', 'mu'];

/** Parses `lr-mmt`, `thr-mmt-0.8`, `mad-mc`, `npa`, `dvfs`. An explicit `safety` overrides a suffix. */
export function parsePolicy(name: string, safety?: number): PolicySpec {
  const parts = name.trim().toLowerCase().split('-');
  if (parts.length === 1 && (parts[0] === 'npa' || parts[0] === 'dvfs')) {
    return { kind: 'baseline', baseline: parts[0] };
  }
  const [o, s, param] = parts as [string, string | undefined, string | undefined];
  if (
    !OVERLOADS.includes(o as OverloadKind) ||
    !SELECTIONS.includes(s as SelectionKind) ||
    parts.length > 3
  ) {
    throw new UsageError(
      `--policy: unknown policy "${name}"; use OVERLOAD-SELECTION[-SAFETY] with OVERLOAD in ` +
        `${OVERLOADS.join('/')} and SELECTION in ${SELECTIONS.join('/')} (e.g. lr-mmt, thr-mmt-0.8), or npa, dvfs`,
      '--policy',
    );
  }
  const overload = o as OverloadKind;
  let value = safety ?? (param !== undefined ? Number(param) : DEFAULT_SAFETY[overload]);
  if (!Number.isFinite(value) || value < 0) {
    throw new UsageError(`--safety: "${param ?? safety}" is not a non-negative number`, '--safety');
  }
  value = Number(value);
  return { kind: 'migration', overload, selection: s as SelectionKind, safety: value };
}

/** The paper's label: `LR-MMT-1.2`, `THR-MMT-0.8`, `NPA`, `DVFS`. */
export function policyLabel(p: PolicySpec): string {
  if (p.kind === 'baseline') return p.baseline.toUpperCase();
  const s = Number.isInteger(p.safety) ? p.safety.toFixed(1) : String(p.safety);
  return `${p.overload.toUpperCase()}-${p.selection.toUpperCase()}-${s}`;
}

import type { SimProfileSet } from './profiles.js';

/** How the default (livemig) mode prices a migration with the pre-copy model. */
export interface MigrationPricing {
  /**
   * `profile` (default): each VM gets a guest profile measured on the engine (by memory size and trace class,
   * src/sim/profiles.ts) and the profile-fed model prices its migration, which also charges the engine's measured
   * energy per GiB moved. `rate`: the papers' model with the dirty rate, working set and compression below.
   */
  readonly model: 'profile' | 'rate';
  /** `profile`: XBZRLE on (QEMU's default 64 MiB cache, 16 ways) for resent pages. */
  readonly xbzrle: boolean;
  /**
   * `profile`: the share of a VM's RAM that is zero pages (skipped in round 1). Default 0: a VM that has run for days
   * has filled its RAM (page cache, heap), while the profiled guests were freshly started and mostly zero, which
   * would make every migration look several times cheaper. `null`: the profile's own measured share.
   */
  readonly zeroFraction: number | null;
  /** Share of the target host's bandwidth a migration gets (CloudSim: 0.5). */
  readonly bandwidthShare: number;
  /** Page dirty rate of a VM at 100 % CPU, bytes/s; scaled by its current utilisation. */
  readonly dirtyRateAtFullLoad: number;
  /** Writable working set as a fraction of VM RAM. */
  readonly workingSetFraction: number;
  /** XBZRLE wire bytes per re-sent byte. */
  readonly compressionRatio: number;
  /** Seconds. */
  readonly downtimeLimit: number;
  readonly maxRounds: number;
  /**
   * CPU the migration costs on the source host, as a fraction of the VM's MIPS (the target's 10 % is CloudSim's own);
   * `rate` only: with `profile` pricing the migration's energy is charged per GiB instead (no double count).
   */
  readonly cpuOverhead: number;
  /**
   * Each VM's migration priced as measured elsewhere (a real run of the same VMs, `livemig cluster`): time and
   * downtime in seconds of simulated time, bytes; indexed by VM. Overrides `model` when set. A time may span several
   * scheduling intervals: the VM then stays in flight (on its source, its copy on the target) until it completes.
   */
  readonly measured: MeasuredPrices | null;
}

export interface MeasuredPrices {
  readonly time: ArrayLike<number>;
  readonly downtime: ArrayLike<number>;
  readonly bytes: ArrayLike<number>;
  /** The share of its demand a VM loses while it migrates, in place of CloudSim's 10 % (the rest is charged at start). */
  readonly slowdown?: ArrayLike<number>;
}

export const DEFAULT_PRICING: MigrationPricing = {
  model: 'profile',
  xbzrle: true,
  zeroFraction: 0,
  bandwidthShare: 0.5,
  dirtyRateAtFullLoad: 32 * 1024 * 1024,
  workingSetFraction: 0.25,
  compressionRatio: 0.4,
  downtimeLimit: 0.3,
  maxRounds: 30,
  cpuOverhead: 0.1,
  measured: null,
};

export type SimMode = 'cloudsim' | 'livemig';

/**
 * What livemig mode changes relative to CloudSim 3.0.3, one switch per defect (all on in livemig mode, all off in
 * cloudsim mode; `SimOptions.fixes` overrides single switches, e.g. for an ablation).
 */
export interface SimFixes {
  /** Keep VMs whose demand touches 0 (Q1 deletes them for good); a host holding any VM is on and pays idle power. */
  readonly idleVms: boolean;
  /** PABFD prices waking a switched-off host at its idle power too, and uses the current (tentative) utilisation. */
  readonly wakeCost: boolean;
  /** A host that just received VMs in this round is not drained in the same round (no double migrations). */
  readonly drainOnce: boolean;
  /** Price migrations with the pre-copy model (rounds, downtime as lost CPU, CPU cost on both hosts). */
  readonly precopy: boolean;
  /** The destination's in-flight copy of a migrating VM is not counted as an SLA violation of that host. */
  readonly slaCopy: boolean;
  /** LRR does robust (bisquare-weighted) regression, as the paper describes (Q2). */
  readonly robustLrr: boolean;
  /** Initial placement uses each VM's demand at t = 0 and the real overload test, not full MIPS. */
  readonly initialDemand: boolean;
  /** Bill the whole day: sample at t = 0, update at k·300 s, finish at 86 400 s (Q4). */
  readonly wholeDay: boolean;
}

export const FIX_NAMES: readonly (keyof SimFixes)[] = [
  'idleVms',
  'wakeCost',
  'drainOnce',
  'precopy',
  'slaCopy',
  'robustLrr',
  'initialDemand',
  'wholeDay',
];

export function fixesFor(mode: SimMode, overrides: Partial<SimFixes> = {}): SimFixes {
  const on = mode === 'livemig';
  const base = Object.fromEntries(FIX_NAMES.map((k) => [k, on])) as unknown as SimFixes;
  return { ...base, ...overrides };
}

export interface SimOptions {
  /** `cloudsim`: CloudSim 3.0.3's behaviour, quirks included. `livemig`: defects fixed, pre-copy pricing. */
  readonly mode: SimMode;
  readonly policy: PolicySpec;
  /** Override single livemig fixes (see `SimFixes`). */
  readonly fixes?: Partial<SimFixes>;
  /** Seed for RS and anything random. */
  readonly seed?: number;
  /** Scheduling interval, seconds (300). */
  readonly interval?: number;
  readonly datacenter?: Datacenter;
  readonly pricing?: Partial<MigrationPricing>;
  /** `profile` pricing: the guest profiles (default: the set bundled with livemig, `loadBundledProfiles`). */
  readonly profiles?: SimProfileSet;
  /**
   * 0 (default): PABFD scans every host, as CloudSim. N > 0: it scans N random active hosts plus the first switched-off
   * host of each type (all switched-off hosts of a type cost the same) — an approximation for very large runs.
   * −1: reference mode, CloudSim's plain scan of every host with no pruning at all (slow; for verification).
   */
  readonly placementCandidates?: number;
  /**
   * When host RAM (4096 MB) and bandwidth (1 Gbit/s = 10 VMs of 100 Mbit/s) limit placement (CLOUDSIM.md Q5).
   * `initial` (default in cloudsim mode): only at t = 0 — CloudSim asks the provisioners for the VM's *current*
   * RAM/BW, which is the full amount only while the VM is being instantiated and 0 afterwards (the PlanetLab
   * cloudlets' RAM/BW utilisation models are null). `never` (default in livemig mode): the paper's stated model
   * ("we do not limit the VM consolidation by the memory bounds"). `always`: every placement.
   */
  readonly capacityChecks?: 'initial' | 'always' | 'never';
  /**
   * Which MIPS a VM must fit in one PE. `demand` (default in cloudsim mode): its current demand, as CloudSim's
   * `Host.isSuitableForVm` compares `getCurrentRequestedMaxMips()` — the full MIPS only while the VM is being
   * instantiated (t = 0), so later a lightly loaded 2000- or 2500-MIPS VM may move to a G4 host (1860-MIPS PEs)
   * when that is the cheaper host; measured against CloudSim 3.0.3 (docs/simulator.md). `vm` (default in livemig
   * mode): its full MIPS, so a VM can always run at its full size.
   */
  readonly peCheck?: 'vm' | 'demand';
  /** Record per-interval time series (default true). */
  readonly series?: boolean;
  /**
   * Bound on migrations in flight, as a real cluster's (KubeVirt's parallelOutboundMigrationsPerNode and
   * parallelMigrationsPerCluster): a planned migration that would exceed either is dropped from the round and
   * re-planned at the next one. Default: unbounded (CloudSim starts every planned migration at once).
   */
  readonly migrationLimits?: { readonly perHost: number; readonly perCluster: number };
  /**
   * Exact utilisation samples (fractions of each VM's MIPS, the workload's layout: VM-major) in place of the
   * workload's whole percents, e.g. what a real cluster measured: a policy threshold can turn on a tenth of a percent.
   */
  readonly utilisation?: ArrayLike<number>;
  /** Record every migration started (time, VM, source, target), for a line-by-line comparison with CloudSim. */
  readonly migrationLog?: boolean;
  /** Record every planning round's inputs and plan (`SimResult.decisions`), to find where two runs decide apart. */
  readonly decisions?: boolean;
  /**
   * What the policy (and the accounting) sees of a VM's utilisation at a scheduling step. `instant`: the trace's
   * sample at that instant, CloudSim's `UtilizationModelPlanetLabInMemory` (the default in cloudsim mode, and in
   * livemig mode when `utilisation` gives measured values). `mean` (the default in livemig mode on traces): the mean
   * over the interval that ends there, as a monitor measures it (src/sim/engine/sampling.ts); step 0 is the sample.
   */
  readonly sampling?: 'instant' | 'mean';
  /**
   * `mean`: 0 (default) for a trace linear between samples; S for a demand held in S equal steps per interval, each
   * at the trace's value at its start (a controller that sets a guest's CPU stepwise: `livemig cluster`, 8).
   */
  readonly samplingSteps?: number;
  /**
   * When a host its last VM left stops drawing power. `instant` (CloudSim's; the only one in cloudsim mode): the
   * moment the migration completes. `step` (the default in livemig mode): at the next scheduling step, idle until
   * then, as a manager that powers hosts down in its control loop does (`livemig cluster`'s switches a host off when
   * a measurement finds it empty). src/sim/engine/switch-off.ts.
   */
  readonly switchOff?: 'instant' | 'step';
}
