/**
 * The simulator's whole state in one object: hosts and VMs in typed arrays, the metric accumulators, and the planning
 * scratch buffers. The other files of the engine are functions over it (accounting, placement, planning, migrations);
 * one class, built by one constructor, keeps every run's state the same shape for the hot loops.
 */

import type { EngineCosts } from '../../migration/model.js';
import type { GuestProfile } from '../../profile/schema.js';
import {
  DEFAULT_PRICING,
  fixesFor,
  type MigrationPricing,
  planetlabDatacenter,
  type SimFixes,
  type SimOptions,
  vmTypesByBlocks,
} from '../config.js';
import type { OverloadPolicy } from '../policies.js';
import { engineCostsOf, loadBundledProfiles, profileFor, traceClassOf } from '../profiles.js';
import { Rng } from '../stats.js';
import type { Workload } from '../workload.js';
import type { SimDecision, SimSeries } from './result.js';
import { meanWeight, samplingOf, samplingStepsOf } from './sampling.js';
import { switchOffOf } from './switch-off.js';

/** VM utilisation history length (CloudSim `PowerVm.HISTORY_LENGTH`). */
export const HISTORY_LENGTH = 30;

export class SimState {
  readonly options: SimOptions;
  /** CloudSim-compatible event timing (all hosts updated at every event, 0.1-s offset). */
  readonly compat: boolean;
  readonly fix: SimFixes;
  readonly H: number;
  readonly N: number;
  readonly interval: number;
  readonly spv: number;
  readonly samples: Uint8Array;
  /** `SimOptions.utilisation`: exact samples (fractions) in place of the whole percents, or null. */
  readonly exact: ArrayLike<number> | null;
  /** `SimOptions.sampling` is `mean`: VMs are seen at each interval's mean (sampling.ts). */
  readonly meanSampling: boolean;
  /** The weight of an interval's end sample in its mean (`meanWeight(samplingSteps)`). */
  readonly meanWeight: number;
  readonly pricing: MigrationPricing;
  readonly overload: OverloadPolicy | undefined;
  readonly capacityMode: 'initial' | 'always' | 'never';
  /** Whether RAM and the bandwidth cap are checked right now (see `SimOptions.capacityChecks`). */
  capacityChecks: boolean;
  /** PE fit tested against the VM's current demand (true) or its full MIPS (false). */
  readonly peCheckDemand: boolean;

  // Hosts
  readonly hostMips: Float64Array;
  readonly peMips: Float64Array;
  readonly hostRam: Float64Array;
  readonly maxVms: Int32Array;
  readonly hostBwKbps: Float64Array;
  readonly hostType: Uint8Array;
  /** Host indices of each host type, ascending. */
  readonly typeHosts: Int32Array[];
  readonly rng: Rng;
  readonly power: ((u: number) => number)[];
  readonly hostVms: number[][];
  readonly hostMigIn: number[][];
  /** Utilisation at the last update of the host (CloudSim's `getUtilizationOfCpu()`). */
  readonly measuredU: Float64Array;
  readonly reqSum: Float64Array;
  readonly ramUsed: Float64Array;

  // VMs
  readonly vmMips: Float64Array;
  readonly vmRam: Float64Array;
  readonly vmHost: Int32Array;
  readonly vmAlive: Uint8Array;
  readonly inMig: Uint8Array;
  readonly demand: Float64Array;
  readonly vmHist: Float64Array;
  readonly vmHistLen: Uint8Array;

  // Metrics: host state-history entries (pending = the latest entry, replaced if another comes at the same time)
  readonly hTime: Float64Array;
  readonly hAlloc: Float64Array;
  readonly hReq: Float64Array;
  readonly hActive: Uint8Array;
  readonly hPrevActive: Uint8Array;
  readonly hSwitchedOn: Float64Array;
  readonly vTime: Float64Array;
  readonly vAlloc: Float64Array;
  readonly vReq: Float64Array;
  readonly vMig: Uint8Array;
  readonly vPrevMig: Uint8Array;
  readonly vMigStart: Float64Array;
  activeTime = 0;
  violationTime = 0;
  requestedMipsSeconds = 0;
  degradedMipsSeconds = 0;
  energyWs = 0;
  migrations = 0;
  duplicateMigrations = 0;
  migrationTimeSum = 0;
  downtimeSum = 0;
  migrationBytes = 0;
  vmsDeleted = 0;
  vmsUnplaced = 0;
  shutdownCount = 0;
  shutdownTimeSum = 0;
  vmMigCount = 0;
  vmMigTimeSum = 0;
  /** Each migration's modelled time and downtime, s (the report's distributions). */
  readonly migrationTimes: number[] = [];
  readonly downtimes: number[] = [];
  /** `profile` pricing: energy the migrations add on their two hosts (the engine's J/GiB), J. */
  migrationEnergyJ = 0;
  /** `profile` pricing: each VM's profile (by memory size and trace class), the engine's costs, J per GiB. */
  readonly vmProfile: GuestProfile[] = [];
  readonly engineCosts: Partial<EngineCosts> = {};
  readonly joulesPerGiB: number = 0;
  /** `profile` pricing: predictions by (VM profile, utilisation in 1 % steps, bandwidth). */
  readonly profileIds = new Map<GuestProfile, number>();
  readonly priceCache = new Map<string, { time: number; downtime: number; bytes: number }>();
  /** Time of each host's last update (energy segments are per host). */
  readonly hostLast: Float64Array;

  // Planning scratch
  readonly histScratch = new Float64Array(HISTORY_LENGTH);
  costScratch = new Float64Array(1024);
  hostScratch = new Int32Array(1024);
  readonly histCache: Float64Array;
  readonly histValid: Uint8Array;
  /** P(measured utilisation) per host: constant during a planning round (CloudSim's `host.getPower()`). */
  readonly measuredPower: Float64Array;
  /** Tentative placements of the current round, as (host, vm, list index or −1 for an add) triples. */
  undo: number[] = [];
  readonly series: SimSeries | undefined;
  /** `migrationLog`: (time, VM, source, target) of every migration started. */
  readonly migrationLog: number[] | undefined;
  /** `decisions`: every planning round (src/cluster/divergence.ts compares them with a cluster's). */
  readonly decisions: SimDecision[] | undefined;
  /** With `decisions`: the VMs whose migration completed since the last round, in completion order. */
  arrivals: number[] = [];
  /** livemig: host held at least one VM at its last update (on); off hosts draw nothing. */
  readonly hostOn: Uint8Array;
  /** `switchOff: 'step'`: hosts are switched off at scheduling steps only (switch-off.ts). */
  readonly stepSwitchOff: boolean;
  /** `switchOff: 'step'`: host held a VM at the last scheduling step (it draws power until the next); else all 0. */
  readonly onAtStep: Uint8Array;
  /** CloudSim: capacity of each host's `mipsMapRequested` HashMap (see java-hashmap.ts). */
  readonly mapCapacity: Int32Array;

  constructor(workload: Workload, options: SimOptions) {
    this.options = options;
    this.fix = fixesFor(options.mode, options.fixes);
    this.compat = !this.fix.wholeDay;
    const dc = options.datacenter ?? planetlabDatacenter();
    this.H = dc.hostTypeOf.length;
    this.N = workload.vms;
    this.interval = options.interval ?? 300;
    this.spv = workload.samplesPerVm;
    this.samples = workload.samples;
    this.exact = options.utilisation ?? null;
    this.meanSampling = samplingOf(options) === 'mean';
    this.meanWeight = meanWeight(samplingStepsOf(options));
    this.pricing = { ...DEFAULT_PRICING, ...options.pricing };
    this.rng = new Rng(options.seed ?? 42);
    this.capacityMode = options.capacityChecks ?? (options.mode === 'cloudsim' ? 'initial' : 'never');
    this.capacityChecks = this.capacityMode !== 'never';
    this.peCheckDemand = (options.peCheck ?? (options.mode === 'cloudsim' ? 'demand' : 'vm')) === 'demand';
    const p = options.policy;
    this.overload =
      p.kind === 'migration'
        ? { kind: p.overload, safety: p.safety, robust: this.fix.robustLrr && p.overload === 'lrr' }
        : undefined;

    const H = this.H;
    this.hostMips = new Float64Array(H);
    this.peMips = new Float64Array(H);
    this.hostRam = new Float64Array(H);
    this.maxVms = new Int32Array(H);
    this.hostBwKbps = new Float64Array(H);
    this.hostType = Uint8Array.from(dc.hostTypeOf);
    this.typeHosts = dc.hostTypes.map((_, t) => {
      const hs: number[] = [];
      for (let h = 0; h < H; h++) if (dc.hostTypeOf[h] === t) hs.push(h);
      return Int32Array.from(hs);
    });
    this.power = [];
    const vmBw = dc.vmTypes[0]?.bwKbps ?? 1;
    for (let h = 0; h < H; h++) {
      const t = dc.hostTypes[dc.hostTypeOf[h]!]!;
      this.hostMips[h] = t.pes * t.peMips;
      this.peMips[h] = t.peMips;
      this.hostRam[h] = t.ramMb;
      this.maxVms[h] = Math.floor(t.bwKbps / vmBw);
      this.hostBwKbps[h] = t.bwKbps;
      const model = t.power;
      this.power.push((u: number) => model.power(u));
    }
    this.hostVms = Array.from({ length: H }, () => []);
    this.hostMigIn = Array.from({ length: H }, () => []);
    this.measuredU = new Float64Array(H);
    this.reqSum = new Float64Array(H);
    this.ramUsed = new Float64Array(H);
    this.hostOn = new Uint8Array(H);
    this.stepSwitchOff = switchOffOf(options) === 'step' && this.fix.idleVms;
    this.onAtStep = new Uint8Array(H);
    this.mapCapacity = new Int32Array(H).fill(16);
    this.hostLast = new Float64Array(H).fill(-1);
    this.histCache = new Float64Array(H * HISTORY_LENGTH);
    this.histValid = new Uint8Array(H);
    this.measuredPower = new Float64Array(H);

    const N = this.N;
    const types = vmTypesByBlocks(N, dc.vmTypes.length);
    this.vmMips = new Float64Array(N);
    this.vmRam = new Float64Array(N);
    for (let v = 0; v < N; v++) {
      const t = dc.vmTypes[types[v]!]!;
      this.vmMips[v] = t.mips;
      this.vmRam[v] = t.ramMb;
    }
    if (this.fix.precopy && this.pricing.model === 'profile') {
      const set = options.profiles ?? loadBundledProfiles();
      this.engineCosts = engineCostsOf(set);
      this.joulesPerGiB = set.energy.sourceJPerGiB + set.energy.destinationJPerGiB;
      const byKey = new Map<string, GuestProfile>();
      const spv = workload.samplesPerVm;
      for (let v = 0; v < N; v++) {
        let sum = 0;
        for (let k = 0; k < spv; k++) sum += workload.samples[v * spv + k]!;
        const cls = traceClassOf(spv > 0 ? sum / spv : 0);
        const key = `${cls}:${this.vmRam[v]}`;
        let prof = byKey.get(key);
        if (!prof) {
          prof = profileFor(set, this.vmRam[v]!, cls);
          const z = this.pricing.zeroFraction;
          if (z !== null) prof = { ...prof, zeroFraction: z };
          byKey.set(key, prof);
        }
        this.vmProfile.push(prof);
      }
    }
    this.vmHost = new Int32Array(N).fill(-1);
    this.vmAlive = new Uint8Array(N);
    this.inMig = new Uint8Array(N);
    this.demand = new Float64Array(N);
    this.vmHist = new Float64Array(N * HISTORY_LENGTH);
    this.vmHistLen = new Uint8Array(N);

    this.hTime = new Float64Array(H).fill(-1);
    this.hAlloc = new Float64Array(H);
    this.hReq = new Float64Array(H);
    this.hActive = new Uint8Array(H);
    this.hPrevActive = new Uint8Array(H).fill(1);
    this.hSwitchedOn = new Float64Array(H);
    this.vTime = new Float64Array(N).fill(-1);
    this.vAlloc = new Float64Array(N);
    this.vReq = new Float64Array(N);
    this.vMig = new Uint8Array(N);
    this.vPrevMig = new Uint8Array(N);
    this.vMigStart = new Float64Array(N);
    this.migrationLog = options.migrationLog ? [] : undefined;
    this.decisions = options.decisions ? [] : undefined;
    this.series =
      options.series === false
        ? undefined
        : {
            time: [],
            energyKWh: [],
            activeHosts: [],
            overloadedHosts: [],
            migrations: [],
            slaViolation: [],
            vms: [],
          };
  }
}
