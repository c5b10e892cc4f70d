/**
 * The data-centre simulator: hosts and VMs in typed arrays, a 300-s scheduling step, migrations as timed events.
 *
 * Event order follows CloudSim 3.0.3's PowerDatacenter exactly (CLOUDSIM.md §2–§6), because its numbers depend on it:
 *
 * ```
 * t_k = k·300 + 0.1 (k ≥ 1)       update all hosts at t_k:  energy of [t_prev, t_k] (trapezoid), VM history += u(t_k),
 *                                  delete VMs whose demand is exactly 0 (Q1), then plan: overloaded hosts → select VMs
 *                                  → PABFD; underloaded hosts → all-or-nothing PABFD; start migrations (counted now)
 * t_k + RAM/(BW/2)                 each distinct completion time: update all hosts (energy), move the VMs, update again
 * ```
 *
 * Between samples a host's utilisation is linear (energy) and its state constant (SLA metrics), as in CloudSim's
 * state-history accounting. `livemig` mode keeps the structure but fixes the defects listed in docs/simulator.md and
 * prices each migration with the pre-copy model.
 */
import { MigrationError } from '../errors.js';
import { predictPrecopy } from '../migration/model.js';
import {
  DEFAULT_PRICING,
  fixesFor,
  type MigrationPricing,
  planetlabDatacenter,
  policyLabel,
  type SimFixes,
  type SimOptions,
  vmTypesByBlocks,
} from './config.js';
import {
  isOverloaded,
  type OverloadPolicy,
  selectMaximumCorrelation,
  selectMinimumMigrationTime,
  selectMinimumUtilisation,
  selectRandom,
} from './policies.js';
import { Rng } from './stats.js';
import type { Workload } from './workload.js';

/** VM utilisation history length (CloudSim `PowerVm.HISTORY_LENGTH`). */
export const HISTORY_LENGTH = 30;
/** CloudSim 3.0.3 runs its updates 0.1 s after each interval boundary. */
const EPSILON = 0.1;

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
}

interface Pending {
  time: number;
  vm: number;
  target: number;
  seq: number;
}

/** Runs one policy on one workload. Deterministic for given options and seed. */
export function simulate(workload: Workload, options: SimOptions): SimResult {
  return new Simulation(workload, options).run();
}

class Simulation {
  /** CloudSim-compatible event timing (all hosts updated at every event, 0.1-s offset). */
  private readonly compat: boolean;
  private readonly fix: SimFixes;
  private readonly H: number;
  private readonly N: number;
  private readonly interval: number;
  private readonly spv: number;
  private readonly samples: Uint8Array;
  private readonly pricing: MigrationPricing;
  private readonly overload: OverloadPolicy | undefined;
  private readonly capacityMode: 'initial' | 'always' | 'never';
  /** Whether RAM and the bandwidth cap are checked right now (see `SimOptions.capacityChecks`). */
  private capacityChecks: boolean;
  /** PE fit tested against the VM's current demand (true) or its full MIPS (false). */
  private readonly peCheckDemand: boolean;

  // Hosts
  private readonly hostMips: Float64Array;
  private readonly peMips: Float64Array;
  private readonly hostRam: Float64Array;
  private readonly maxVms: Int32Array;
  private readonly hostBwKbps: Float64Array;
  readonly hostType: Uint8Array;
  /** Host indices of each host type, ascending. */
  readonly typeHosts: Int32Array[];
  readonly rng: Rng;
  private readonly power: ((u: number) => number)[];
  private readonly hostVms: number[][];
  private readonly hostMigIn: number[][];
  /** Utilisation at the last update of the host (CloudSim's `getUtilizationOfCpu()`). */
  private readonly measuredU: Float64Array;
  private readonly reqSum: Float64Array;
  private readonly ramUsed: Float64Array;

  // VMs
  private readonly vmMips: Float64Array;
  private readonly vmRam: Float64Array;
  private readonly vmHost: Int32Array;
  private readonly vmAlive: Uint8Array;
  private readonly inMig: Uint8Array;
  private readonly demand: Float64Array;
  private readonly vmHist: Float64Array;
  private readonly vmHistLen: Uint8Array;

  // Metrics: host state-history entries (pending = the latest entry, replaced if another comes at the same time)
  private readonly hTime: Float64Array;
  private readonly hAlloc: Float64Array;
  private readonly hReq: Float64Array;
  private readonly hActive: Uint8Array;
  private readonly hPrevActive: Uint8Array;
  private readonly hSwitchedOn: Float64Array;
  private readonly vTime: Float64Array;
  private readonly vAlloc: Float64Array;
  private readonly vReq: Float64Array;
  private readonly vMig: Uint8Array;
  private readonly vPrevMig: Uint8Array;
  private readonly vMigStart: Float64Array;
  private activeTime = 0;
  private violationTime = 0;
  private requestedMipsSeconds = 0;
  private degradedMipsSeconds = 0;
  private energyWs = 0;
  private migrations = 0;
  private duplicateMigrations = 0;
  private migrationTimeSum = 0;
  private downtimeSum = 0;
  private migrationBytes = 0;
  private vmsDeleted = 0;
  private vmsUnplaced = 0;
  private shutdownCount = 0;
  private shutdownTimeSum = 0;
  private vmMigCount = 0;
  private vmMigTimeSum = 0;
  /** Time of each host's last update (energy segments are per host). */
  private readonly hostLast: Float64Array;

  // Planning scratch
  private readonly histScratch = new Float64Array(HISTORY_LENGTH);
  private costScratch = new Float64Array(1024);
  private hostScratch = new Int32Array(1024);
  private readonly histCache: Float64Array;
  private readonly histValid: Uint8Array;
  /** P(measured utilisation) per host: constant during a planning round (CloudSim's `host.getPower()`). */
  private readonly measuredPower: Float64Array;
  private undo: number[] = [];
  private readonly series: SimSeries | undefined;
  /** livemig: host held at least one VM at its last update (on); off hosts draw nothing. */
  private readonly hostOn: Uint8Array;

  constructor(
    workload: Workload,
    private readonly options: SimOptions,
  ) {
    this.fix = fixesFor(options.mode, options.fixes);
    this.compat = !this.fix.wholeDay;
    const dc = options.datacenter ?? planetlabDatacenter();
    this.H = dc.hostTypeOf.length;
    this.N = workload.vms;
    this.interval = options.interval ?? 300;
    this.spv = workload.samplesPerVm;
    this.samples = workload.samples;
    this.pricing = { ...DEFAULT_PRICING, ...options.pricing };
    this.rng = new Rng(options.seed ?? 42);
    this.capacityMode = options.capacityChecks ?? (options.mode === 'cloudsim' ? 'initial' : 'never');
    this.capacityChecks = this.capacityMode !== 'never';
    this.peCheckDemand = options.peCheck === 'demand';
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

  run(): SimResult {
    const wallStart = performance.now();
    const p = this.options.policy;
    const duration = this.spv * this.interval;
    const offset = this.compat ? EPSILON : 0;
    if (p.kind === 'baseline') this.placeFirstFit();
    else this.placeInitial();
    this.capacityChecks = this.capacityMode === 'always';
    if (!this.compat) {
      // livemig: sample the initial state so that the first interval is billed too.
      this.updateAll(0, false);
    }
    const npa = p.kind === 'baseline' && p.baseline === 'npa';
    let npaWatts = 0;
    if (npa) for (let h = 0; h < this.H; h++) npaWatts += this.power[h]!(1);
    let pending: Pending[] = [];
    let seq = 0;
    for (let k = 1; ; k++) {
      const t = k * this.interval + offset;
      // CloudSim stops at 86400 s: the update at 86400.1 never runs. livemig samples the end of the day too.
      const last = this.compat ? t >= duration : t > duration;
      if (last) break;
      const energyBefore = this.energyWs;
      let started = 0;
      const violationBefore = this.violationTime;
      const activeBefore = this.activeTime;
      // Migrations from the previous step complete before this update (they all take < one interval).
      this.completeMigrations(pending);
      pending = [];
      if (npa) {
        // Non-power-aware: every host at full power all the time, counted from the first update (CloudSim: 86 100 s).
        this.updateAll(t, true);
        this.energyWs = npaWatts * (t - offset);
      } else {
        this.updateAll(t, true);
        this.deleteIdleVms();
      }
      let overloaded = 0;
      if (p.kind === 'migration' && (this.compat ? true : t < duration)) {
        const plan = this.plan();
        overloaded = plan.overloaded;
        started = plan.entries.length / 2;
        pending = this.startMigrations(t, plan.entries, seq);
        seq += pending.length;
      }
      if (this.series) {
        const s = this.series;
        s.time.push(t);
        s.energyKWh.push((this.energyWs - energyBefore) / 3.6e6);
        let active = 0;
        let vms = 0;
        for (let h = 0; h < this.H; h++) {
          if (this.measuredU[h]! > 0 || (this.fix.idleVms && this.hostVms[h]!.length > 0)) active++;
          vms += this.hostVms[h]!.length;
        }
        s.activeHosts.push(active);
        s.overloadedHosts.push(overloaded);
        s.migrations.push(started);
        const act = this.activeTime - activeBefore;
        s.slaViolation.push(act > 0 ? (this.violationTime - violationBefore) / act : 0);
        s.vms.push(vms);
      }
    }
    // Migrations started at the last update still complete before the simulation limit.
    this.completeMigrations(pending);
    this.finishMetrics();
    return this.result(performance.now() - wallStart);
  }

  // ---------------------------------------------------------------- demand, updates, accounting

  /** CloudSim's `UtilizationModelPlanetLabInMemory.getUtilization` (with the last sample repeated) × VM MIPS. */
  private demandAt(v: number, t: number): number {
    const I = this.interval;
    const base = v * this.spv;
    const last = this.spv - 1;
    if (t % I === 0) {
      const k = Math.min(t / I, last);
      return (this.samples[base + k]! / 100) * this.vmMips[v]!;
    }
    const k1 = Math.floor(t / I);
    const k2 = Math.ceil(t / I);
    const u1 = this.samples[base + Math.min(k1, last)]! / 100;
    const u2 = this.samples[base + Math.min(k2, last)]! / 100;
    const delta = (u2 - u1) / ((k2 - k1) * I);
    return (u1 + delta * (t - k1 * I)) * this.vmMips[v]!;
  }

  /**
   * Updates every host at time t: new demands, allocation (over-subscription scaled), utilisation, energy of the
   * segment since the last event, state-history samples, and (at scheduled steps) the VMs' utilisation history.
   */
  private updateAll(t: number, scheduled: boolean): void {
    const N = this.N;
    for (let v = 0; v < N; v++) {
      if (this.vmHost[v]! >= 0) this.demand[v] = this.demandAt(v, t);
    }
    for (let h = 0; h < this.H; h++) this.advanceHost(h, t);
    if (scheduled) {
      const L = HISTORY_LENGTH;
      for (let v = 0; v < N; v++) {
        if (this.vmHost[v]! < 0) continue;
        const base = v * L;
        this.vmHist.copyWithin(base + 1, base, base + L - 1);
        this.vmHist[base] = this.demand[v]! / this.vmMips[v]!;
        if (this.vmHistLen[v]! < L) this.vmHistLen[v] = this.vmHistLen[v]! + 1;
      }
    }
  }

  /**
   * Brings host h to time t (its VMs' demands must be current): energy of the segment since its last update
   * (trapezoid between the two samples), then the new state.
   */
  private advanceHost(h: number, t: number): void {
    const last = this.hostLast[h]!;
    const dt = last >= 0 ? t - last : 0;
    const prev = this.measuredU[h]!;
    const wasOn = this.hostOn[h] === 1;
    const now = this.recomputeHost(h, t);
    // CloudSim: a host whose utilisation was 0 at the start of the segment is off (0 W). livemig: off = no VM.
    const off = this.fix.idleVms ? !wasOn : prev === 0;
    if (dt > 0 && !off) {
      const from = this.power[h]!(prev);
      const to = this.power[h]!(now);
      this.energyWs += (from + (to - from) / 2) * dt;
    }
    this.hostLast[h] = t;
  }

  /** livemig: brings only the given hosts to time t (a migration completing touches two hosts, not all). */
  private updateHosts(hosts: Iterable<number>, t: number): void {
    for (const h of hosts) {
      for (const v of this.hostVms[h]!) this.demand[v] = this.demandAt(v, t);
      this.advanceHost(h, t);
    }
  }

  /** CloudSim's `HostDynamicWorkload.updateVmsProcessing` + `VmSchedulerTimeSharedOverSubscription`. */
  private recomputeHost(h: number, t: number): number {
    const list = this.hostVms[h]!;
    const migIn = this.hostMigIn[h]!;
    const total = this.hostMips[h]!;
    const pe = this.peMips[h]!;
    let available = total;
    let over = false;
    let needed = 0;
    for (let i = 0; i < list.length; i++) {
      const v = list[i]!;
      const c = Math.min(this.demand[v]!, pe);
      const need = migIn.length > 0 && migIn.includes(v) ? c * 0.1 : c;
      needed += need;
      if (!over && available >= need) available -= need;
      else over = true;
    }
    const scale = over ? total / needed : 1;
    let util = 0;
    let requested = 0;
    let allocNonMig = 0;
    let reqNonMig = 0;
    for (let i = 0; i < list.length; i++) {
      const v = list[i]!;
      const req = this.demand[v]!;
      const c = Math.min(req, pe);
      const incoming = migIn.length > 0 && migIn.includes(v);
      const outgoing = !incoming && this.inMig[v] === 1;
      let a: number;
      if (over) {
        a = outgoing
          ? Math.floor(c * scale * 0.9)
          : incoming
            ? Math.floor(c * 0.1 * scale)
            : Math.floor(c * scale);
      } else {
        a = outgoing ? c * 0.9 : incoming ? c * 0.1 : c;
      }
      if (incoming) {
        util += a;
      } else {
        this.vmSample(v, t, a, req, this.inMig[v]!);
        const full = this.inMig[v] === 1 ? a / 0.9 : a;
        util += full;
        allocNonMig += full;
        reqNonMig += req;
        // livemig: the migration costs CPU on the source as well (the target's 10 % is counted above).
        if (this.fix.precopy && outgoing) util += this.pricing.cpuOverhead * c;
      }
      requested += req;
    }
    // slaCopy: the migrating-in copy is not a workload that is short-changed; only over-subscription counts.
    this.hostSample(
      h,
      t,
      this.fix.slaCopy ? allocNonMig : util,
      this.fix.slaCopy ? reqNonMig : requested,
      this.fix.idleVms ? list.length > 0 : util > 0,
    );
    let u = util / total;
    if (u > 1 && u < 1.01) u = 1;
    if (u > 1) {
      // The migration's own CPU cost can push a full host over; it then simply runs at 100 %.
      if (this.fix.precopy) u = 1;
      else
        throw new MigrationError(
          'INTERNAL',
          `host ${h} utilisation ${u} > 1 at t=${t} (CloudSim would exit here)`,
        );
    }
    this.measuredU[h] = u;
    this.reqSum[h] = requested;
    this.hostOn[h] = list.length > 0 ? 1 : 0;
    return u;
  }

  /** Host state-history entry; an entry at the same time replaces the previous one. */
  private hostSample(h: number, t: number, alloc: number, req: number, active: boolean): void {
    const prevT = this.hTime[h]!;
    if (prevT >= 0 && prevT !== t) this.commitHost(h, t);
    this.hTime[h] = t;
    this.hAlloc[h] = alloc;
    this.hReq[h] = req;
    this.hActive[h] = active ? 1 : 0;
  }

  /** Folds the pending host entry into the totals; `next` is the time of the entry that supersedes it. */
  private commitHost(h: number, next: number): void {
    const t0 = this.hTime[h]!;
    const active = this.hActive[h]!;
    if (next > t0 && active) {
      const dt = next - t0;
      this.activeTime += dt;
      if (this.hAlloc[h]! < this.hReq[h]!) this.violationTime += dt;
    }
    // Shutdown bookkeeping (CloudSim `getTimesBeforeHostShutdown`), once per committed entry.
    if (this.hPrevActive[h] === 1 && active === 0) {
      this.shutdownCount++;
      this.shutdownTimeSum += t0 - this.hSwitchedOn[h]!;
    }
    if (this.hPrevActive[h] === 0 && active === 1) this.hSwitchedOn[h] = t0;
    this.hPrevActive[h] = active;
  }

  private vmSample(v: number, t: number, alloc: number, req: number, mig: number): void {
    const prevT = this.vTime[v]!;
    if (prevT >= 0 && prevT !== t) this.commitVm(v, t);
    this.vTime[v] = t;
    this.vAlloc[v] = alloc;
    this.vReq[v] = req;
    this.vMig[v] = mig;
  }

  private commitVm(v: number, next: number): void {
    const t0 = this.vTime[v]!;
    const dt = next - t0;
    const alloc = this.vAlloc[v]!;
    const req = this.vReq[v]!;
    if (dt > 0) {
      this.requestedMipsSeconds += req * dt;
      if (alloc < req && this.vMig[v] === 1) this.degradedMipsSeconds += (req - alloc) * dt;
    }
    const mig = this.vMig[v]!;
    if (this.vPrevMig[v] === 1 && mig === 0) {
      this.vmMigCount++;
      this.vmMigTimeSum += t0 - this.vMigStart[v]!;
    }
    if (this.vPrevMig[v] === 0 && mig === 1) this.vMigStart[v] = t0;
    this.vPrevMig[v] = mig;
  }

  private finishMetrics(): void {
    for (let h = 0; h < this.H; h++) if (this.hTime[h]! >= 0) this.commitHost(h, this.hTime[h]!);
    for (let v = 0; v < this.N; v++) if (this.vTime[v]! >= 0) this.commitVm(v, this.vTime[v]!);
  }

  /** Q1: CloudSim treats a VM whose requested MIPS is exactly 0 as finished and de-allocates it for good. */
  private deleteIdleVms(): void {
    if (this.fix.idleVms) return;
    for (let h = 0; h < this.H; h++) {
      const list = this.hostVms[h]!;
      if (list.length === 0) continue;
      let w = 0;
      for (let i = 0; i < list.length; i++) {
        const v = list[i]!;
        if (this.inMig[v] === 0 && this.demand[v] === 0) {
          this.vmHost[v] = -1;
          this.vmAlive[v] = 0;
          this.vmsDeleted++;
        } else {
          list[w++] = v;
        }
      }
      list.length = w;
    }
  }

  // ---------------------------------------------------------------- placement

  private placeInitial(): void {
    // CloudSim: a VM being instantiated requests its full MIPS; no host has been measured yet (utilisation 0).
    // livemig: VMs are placed by what they will actually ask for at t = 0.
    for (let v = 0; v < this.N; v++)
      this.demand[v] = this.fix.initialDemand ? this.demandAt(v, 0) : this.vmMips[v]!;
    const none = new Uint8Array(this.H);
    this.refreshSums();
    for (let h = 0; h < this.H; h++) this.measuredPower[h] = this.power[h]!(0);
    const cands = this.candidateSet(none, true);
    for (let v = 0; v < this.N; v++) {
      const h = this.findHost(v, none, cands.list(), true);
      if (h < 0) {
        this.vmsUnplaced++;
        continue;
      }
      const wasEmpty = this.hostVms[h]!.length === 0;
      this.addVm(h, v);
      this.vmHost[v] = h;
      this.vmAlive[v] = 1;
      if (wasEmpty) cands.woke(h);
    }
    this.undo = [];
  }

  /** DVFS / NPA baselines: first suitable host in index order, never migrate. */
  private placeFirstFit(): void {
    for (let v = 0; v < this.N; v++) this.demand[v] = this.vmMips[v]!;
    this.refreshSums();
    for (let v = 0; v < this.N; v++) {
      let placed = -1;
      for (let h = 0; h < this.H; h++) {
        if (this.suitable(h, v)) {
          placed = h;
          break;
        }
      }
      if (placed < 0) {
        this.vmsUnplaced++;
        continue;
      }
      this.addVm(placed, v);
      this.vmHost[v] = placed;
      this.vmAlive[v] = 1;
    }
    this.undo = [];
  }

  private refreshSums(): void {
    for (let h = 0; h < this.H; h++) {
      let s = 0;
      let r = 0;
      for (const v of this.hostVms[h]!) {
        s += this.demand[v]!;
        r += this.vmRam[v]!;
      }
      this.reqSum[h] = s;
      this.ramUsed[h] = r;
    }
  }

  private addVm(h: number, v: number): void {
    this.histValid[h] = 0;
    this.hostVms[h]!.push(v);
    this.reqSum[h] = this.reqSum[h]! + this.demand[v]!;
    this.ramUsed[h] = this.ramUsed[h]! + this.vmRam[v]!;
    this.undo.push(h, v, -1);
  }

  private removeVm(h: number, v: number): void {
    const list = this.hostVms[h]!;
    const i = list.indexOf(v);
    if (i < 0) return;
    this.histValid[h] = 0;
    list.splice(i, 1);
    this.reqSum[h] = this.reqSum[h]! - this.demand[v]!;
    this.ramUsed[h] = this.ramUsed[h]! - this.vmRam[v]!;
    this.undo.push(h, v, i);
  }

  /** Reverts tentative placements (CloudSim's `restoreAllocation`), restoring list order. */
  private restore(): void {
    const u = this.undo;
    const touched = new Set<number>();
    for (let j = u.length - 3; j >= 0; j -= 3) {
      const h = u[j]!;
      const v = u[j + 1]!;
      const i = u[j + 2]!;
      const list = this.hostVms[h]!;
      if (i < 0) list.splice(list.lastIndexOf(v), 1);
      else list.splice(i, 0, v);
      touched.add(h);
    }
    this.undo = [];
    for (const h of touched) {
      let s = 0;
      let r = 0;
      for (const v of this.hostVms[h]!) {
        s += this.demand[v]!;
        r += this.vmRam[v]!;
      }
      this.reqSum[h] = s;
      this.ramUsed[h] = r;
    }
  }

  /** PE MIPS, RAM, bandwidth (VM count) and free MIPS (`Host.isSuitableForVm`). */
  private suitable(h: number, v: number): boolean {
    const peNeed = this.peCheckDemand ? this.demand[v]! : this.vmMips[v]!;
    if (peNeed > this.peMips[h]! || this.hostMips[h]! - this.reqSum[h]! < this.demand[v]!) return false;
    if (!this.capacityChecks) return true;
    return this.ramUsed[h]! + this.vmRam[v]! <= this.hostRam[h]! && this.hostVms[h]!.length < this.maxVms[h]!;
  }

  /**
   * Host utilisation history into `histScratch`: MIPS-weighted sum of its VMs' histories (list order, then `extra`
   * as if appended), newest first, trailing zeros trimmed. Returns the length. The per-host sums are cached during a
   * planning round and invalidated whenever the host's list changes.
   */
  private hostHistory(h: number, extra = -1): number {
    const L = HISTORY_LENGTH;
    const cache = this.histCache;
    const hostMips = this.hostMips[h]!;
    const cbase = h * L;
    if (this.histValid[h] === 0) {
      cache.fill(0, cbase, cbase + L);
      for (const v of this.hostVms[h]!) {
        const n = this.vmHistLen[v]!;
        const base = v * L;
        const mips = this.vmMips[v]!;
        for (let i = 0; i < n; i++)
          cache[cbase + i] = cache[cbase + i]! + (this.vmHist[base + i]! * mips) / hostMips;
      }
      this.histValid[h] = 1;
    }
    const acc = this.histScratch;
    for (let i = 0; i < L; i++) acc[i] = cache[cbase + i]!;
    if (extra >= 0) {
      const n = this.vmHistLen[extra]!;
      const base = extra * L;
      const mips = this.vmMips[extra]!;
      for (let i = 0; i < n; i++) acc[i] = acc[i]! + (this.vmHist[base + i]! * mips) / hostMips;
    }
    let len = L;
    while (len > 0 && acc[len - 1] === 0) len--;
    return len;
  }

  /** The active policy's overload test on the host's list, plus `extra` as if it had been placed there. */
  private hostOverloaded(h: number, extra = -1): boolean {
    const policy = this.overload!;
    const req = extra >= 0 ? this.reqSum[h]! + this.demand[extra]! : this.reqSum[h]!;
    const u = req / this.hostMips[h]!;
    if (policy.kind === 'thr') return u > policy.safety;
    const len = this.hostHistory(h, extra);
    let intervals = 0;
    if (policy.kind === 'lr' || policy.kind === 'lrr') {
      let maxRam = extra >= 0 ? this.vmRam[extra]! : 0;
      for (const v of this.hostVms[h]!) maxRam = Math.max(maxRam, this.vmRam[v]!);
      const time = maxRam / (this.hostBwKbps[h]! / (2 * 8000));
      intervals = Math.ceil(time / this.interval);
    }
    return isOverloaded(policy, u, this.histScratch, len, intervals);
  }

  /** PABFD host choice for one VM (`findHostForVm`). */
  private findHost(v: number, excluded: Uint8Array, candidates: ArrayLike<number>, initial = false): number {
    if ((this.options.placementCandidates ?? 0) < 0)
      return this.findHostScan(v, excluded, candidates, initial);
    const d = this.demand[v]!;
    const n = candidates.length;
    if (this.costScratch.length < n) {
      this.costScratch = new Float64Array(n * 2);
      this.hostScratch = new Int32Array(n * 2);
    }
    const costs = this.costScratch;
    const hosts = this.hostScratch;
    // 1. Power increase of every suitable host (cheap).
    let m = 0;
    for (let j = 0; j < n; j++) {
      const h = candidates[j]!;
      if (excluded[h] === 1 || !this.suitable(h, v)) continue;
      const sum = this.reqSum[h]!;
      const total = this.hostMips[h]!;
      const after = this.power[h]!((sum + d) / total);
      let before: number;
      if (!this.fix.wakeCost) {
        before = this.measuredPower[h]!;
      } else {
        // livemig: the real marginal cost — waking an empty host costs its idle power too.
        before = this.hostVms[h]!.length === 0 ? 0 : this.power[h]!(Math.min(1, sum / total));
      }
      costs[m] = after - before;
      hosts[m++] = h;
    }
    // 2. Cheapest first (ties: lowest index, as CloudSim's scan keeps the first); the first host that passes the
    // (expensive) overload-after-allocation test is exactly the host CloudSim's single scan would return.
    for (;;) {
      let k = -1;
      for (let j = 0; j < m; j++) {
        if (hosts[j]! < 0) continue;
        if (k < 0 || costs[j]! < costs[k]! || (costs[j] === costs[k] && hosts[j]! < hosts[k]!)) k = j;
      }
      if (k < 0) return -1;
      const h = hosts[k]!;
      hosts[k] = -1;
      if (this.reqSum[h] === 0 || !this.overload) return h;
      if (initial && !this.fix.initialDemand) {
        // At t = 0 the VMs created before this one request 0 MIPS (no cloudlet yet), so CloudSim's check sees
        // only the new VM, and no history (adaptive policies use their THR 0.7 fallback).
        if (!isOverloaded(this.overload, d / this.hostMips[h]!, this.histScratch, 0, 1)) return h;
      } else if (!this.hostOverloaded(h, v)) {
        return h;
      }
    }
  }

  /** Reference PABFD: CloudSim's single scan in host order, overload-tested for every host (see findHost). */
  private findHostScan(
    v: number,
    excluded: Uint8Array,
    candidates: ArrayLike<number>,
    initial: boolean,
  ): number {
    const d = this.demand[v]!;
    let best = -1;
    let minCost = Number.MAX_VALUE;
    for (let j = 0; j < candidates.length; j++) {
      const h = candidates[j]!;
      if (excluded[h] === 1 || !this.suitable(h, v)) continue;
      const sum = this.reqSum[h]!;
      const total = this.hostMips[h]!;
      if (sum !== 0 && this.overload) {
        const over =
          initial && !this.fix.initialDemand
            ? isOverloaded(this.overload, d / total, this.histScratch, 0, 1)
            : this.hostOverloaded(h, v);
        if (over) continue;
      }
      const before = !this.fix.wakeCost
        ? this.measuredPower[h]!
        : this.hostVms[h]!.length === 0
          ? 0
          : this.power[h]!(Math.min(1, sum / total));
      const cost = this.power[h]!((sum + d) / total) - before;
      if (cost < minCost) {
        minCost = cost;
        best = h;
      }
    }
    return best;
  }

  /**
   * Hosts PABFD has to look at, in index order. Every empty, switched-off host of one type costs the same and is
   * equally suitable, so only the first such host per type can win (ties keep the first): the others are skipped
   * without changing the answer. With `placementCandidates` > 0, the active hosts are sampled (large runs).
   */
  private candidateSet(excluded: Uint8Array, includeEmpty: boolean): Candidates {
    const active: number[] = [];
    for (let h = 0; h < this.H; h++) {
      if (excluded[h] === 1) continue;
      if (!this.isEmpty(h)) active.push(h);
    }
    const k = this.options.placementCandidates ?? 0;
    if (k < 0) {
      // Reference mode: every non-excluded host, no pruning (tests check the pruned modes against it).
      const all: number[] = [];
      for (let h = 0; h < this.H; h++)
        if (excluded[h] === 0 && (includeEmpty || !this.isEmpty(h))) all.push(h);
      return new Candidates(this, all, excluded, false, 0);
    }
    return new Candidates(this, active, excluded, includeEmpty, k);
  }

  /** Switched off and holding nothing (CloudSim: measured utilisation 0 too). */
  isEmpty(h: number): boolean {
    return this.hostVms[h]!.length === 0 && (this.fix.idleVms || this.measuredU[h] === 0);
  }

  private selectVm(h: number): number {
    const candidates = this.hostVms[h]!.filter((v) => this.inMig[v] === 0);
    if (candidates.length === 0) return -1;
    const p = this.options.policy;
    if (p.kind !== 'migration') return -1;
    switch (p.selection) {
      case 'mmt':
        return selectMinimumMigrationTime(candidates, this.vmRam);
      case 'mu':
        return selectMinimumUtilisation(candidates, this.demand);
      case 'rs':
        return selectRandom(candidates, this.rng);
      case 'mc': {
        const chosen = selectMaximumCorrelation(
          candidates,
          (v) => this.vmHist.subarray(v * HISTORY_LENGTH, v * HISTORY_LENGTH + this.vmHistLen[v]!),
          (v) => this.vmHistLen[v]!,
        );
        return chosen ?? selectMinimumMigrationTime(candidates, this.vmRam);
      }
    }
  }

  private sortByDemand(vms: number[]): number[] {
    // Stable, decreasing current demand (PowerVmList.sortByCpuUtilization).
    return vms
      .map((v, i) => [v, i] as const)
      .sort((a, b) => this.demand[b[0]]! - this.demand[a[0]]! || a[1] - b[1])
      .map(([v]) => v);
  }

  /** One planning round (`optimizeAllocation`): returns [vm, target, vm, target, …] and the overloaded count. */
  private plan(): { entries: number[]; overloaded: number } {
    const H = this.H;
    this.refreshSums();
    this.histValid.fill(0);
    for (let h = 0; h < H; h++) this.measuredPower[h] = this.power[h]!(this.measuredU[h]!);
    this.undo = [];
    const overMark = new Uint8Array(H);
    const overloaded: number[] = [];
    for (let h = 0; h < H; h++) {
      if (this.hostVms[h]!.length === 0) continue;
      if (this.hostOverloaded(h)) {
        overloaded.push(h);
        overMark[h] = 1;
      }
    }
    const toMigrate: number[] = [];
    for (const h of overloaded) {
      for (;;) {
        const v = this.selectVm(h);
        if (v < 0) break;
        toMigrate.push(v);
        this.removeVm(h, v);
        if (!this.hostOverloaded(h)) break;
      }
    }
    const entries: number[] = [];
    const excluded = Uint8Array.from(overMark);
    const cands = this.candidateSet(excluded, true);
    const overloadTargets = new Uint8Array(H);
    for (const v of this.sortByDemand(toMigrate)) {
      const h = this.findHost(v, excluded, cands.list());
      if (h >= 0) {
        const wasEmpty = this.hostVms[h]!.length === 0;
        this.addVm(h, v);
        entries.push(v, h);
        overloadTargets[h] = 1;
        // A woken host joins the active ones; the next empty host of its type becomes the representative.
        if (wasEmpty) cands.woke(h);
      }
    }

    // Underload pass. "Switched off" = measured utilisation 0 (CloudSim) or no VM at all (livemig).
    const exclUnder = Uint8Array.from(overMark);
    const exclPlace = Uint8Array.from(overMark);
    const order: number[] = [];
    for (let h = 0; h < H; h++) {
      const off = this.fix.idleVms
        ? this.hostVms[h]!.length === 0 && overloadTargets[h] === 0
        : this.measuredU[h] === 0;
      if (off) {
        exclUnder[h] = 1;
        exclPlace[h] = 1;
      } else if (this.fix.drainOnce && overloadTargets[h] === 1) {
        // CloudSim means to exclude this round's targets but reads an empty list; drainOnce does exclude them.
        exclUnder[h] = 1;
      }
      if (exclUnder[h] === 0 && this.measuredU[h]! < 1 && (this.fix.idleVms || this.measuredU[h]! > 0)) {
        order.push(h);
      }
    }
    // Repeatedly taking the least-utilised remaining host (ties: lowest index) = one pass in sorted order,
    // since the exclusion set only grows.
    order.sort((a, b) => this.measuredU[a]! - this.measuredU[b]! || a - b);
    const targets = this.candidateSet(exclPlace, false);
    for (const u of order) {
      if (exclUnder[u] === 1) continue;
      const vms = this.hostVms[u]!.filter((v) => this.inMig[v] === 0);
      exclUnder[u] = 1;
      exclPlace[u] = 1;
      if (vms.length === 0) continue;
      const placed: number[] = [];
      let ok = true;
      for (const v of this.sortByDemand(vms)) {
        const h = this.findHost(v, exclPlace, targets.list());
        if (h < 0) {
          ok = false;
          break;
        }
        this.addVm(h, v);
        placed.push(v, h);
      }
      if (!ok) {
        for (let j = placed.length - 2; j >= 0; j -= 2) this.removeVm(placed[j + 1]!, placed[j]!);
        continue;
      }
      for (let j = 0; j < placed.length; j += 2) exclUnder[placed[j + 1]!] = 1;
      entries.push(...placed);
    }
    this.restore();
    return { entries, overloaded: overloaded.length };
  }

  // ---------------------------------------------------------------- migrations

  private startMigrations(t: number, entries: number[], seq0: number): Pending[] {
    const pending: Pending[] = [];
    const touched = new Set<number>();
    const seen = new Set<number>();
    for (let j = 0; j < entries.length; j += 2) {
      const v = entries[j]!;
      const target = entries[j + 1]!;
      const source = this.vmHost[v]!;
      if (seen.has(v)) this.duplicateMigrations++;
      seen.add(v);
      this.inMig[v] = 1;
      if (!this.hostMigIn[target]!.includes(v)) {
        this.hostMigIn[target]!.push(v);
        this.hostVms[target]!.push(v);
      }
      this.migrations++;
      const bw = this.hostBwKbps[target]!;
      let time: number;
      let downtime = 0;
      let bytes = this.vmRam[v]! * 1e6;
      if (!this.fix.precopy) {
        time = this.vmRam[v]! / (bw / (2 * 8000));
      } else {
        const pr = this.pricing;
        const ramBytes = this.vmRam[v]! * 1e6;
        const u = this.demand[v]! / this.vmMips[v]!;
        const pred = predictPrecopy({
          ramBytes,
          dirtyRate: pr.dirtyRateAtFullLoad * u,
          workingSetBytes: ramBytes * pr.workingSetFraction,
          bandwidth: (bw * 1000 * pr.bandwidthShare) / 8,
          compressionRatio: pr.compressionRatio,
          downtimeLimit: pr.downtimeLimit,
          maxRounds: pr.maxRounds,
        });
        time = pred.totalTime;
        downtime = pred.downtime;
        bytes = pred.bytes;
        // During the downtime the VM gets nothing: all of its demand is lost to the migration.
        this.degradedMipsSeconds += this.demand[v]! * downtime;
      }
      this.migrationTimeSum += time;
      this.downtimeSum += downtime;
      this.migrationBytes += bytes;
      pending.push({ time: t + time, vm: v, target, seq: seq0 + pending.length });
      touched.add(target);
      if (source >= 0) touched.add(source);
    }
    for (const h of [...touched].sort((a, b) => a - b)) this.recomputeHost(h, t);
    pending.sort((a, b) => a.time - b.time || a.seq - b.seq);
    return pending;
  }

  /** Processes completions grouped by identical time: update all, move the VMs, update the hosts involved. */
  private completeMigrations(pending: Pending[]): void {
    let i = 0;
    while (i < pending.length) {
      const t = pending[i]!.time;
      let j = i;
      while (j < pending.length && pending[j]!.time === t) j++;
      const touched = new Set<number>();
      if (!this.fix.precopy) {
        // CloudSim updates every host at every event (completion times coincide, so this stays cheap).
        this.updateAll(t, false);
      } else {
        for (let x = i; x < j; x++) {
          const { vm, target } = pending[x]!;
          if (this.vmHost[vm]! >= 0) touched.add(this.vmHost[vm]!);
          touched.add(target);
        }
        this.updateHosts(
          [...touched].sort((a, b) => a - b),
          t,
        );
      }
      for (let x = i; x < j; x++) {
        const { vm, target } = pending[x]!;
        const current = this.vmHost[vm]!;
        if (current >= 0) {
          const list = this.hostVms[current]!;
          const at = list.indexOf(vm);
          if (at >= 0) list.splice(at, 1);
          touched.add(current);
        }
        const tl = this.hostVms[target]!;
        const at = tl.indexOf(vm);
        if (at >= 0) tl.splice(at, 1);
        const mi = this.hostMigIn[target]!;
        const k = mi.indexOf(vm);
        if (k >= 0) mi.splice(k, 1);
        tl.push(vm);
        this.vmHost[vm] = target;
        this.inMig[vm] = 0;
        touched.add(target);
      }
      for (const h of [...touched].sort((a, b) => a - b)) this.recomputeHost(h, t);
      i = j;
    }
  }

  private result(wallMs: number): SimResult {
    const slatah = this.activeTime > 0 ? this.violationTime / this.activeTime : 0;
    const pdm = this.requestedMipsSeconds > 0 ? this.degradedMipsSeconds / this.requestedMipsSeconds : 0;
    const energyKWh = this.energyWs / 3.6e6;
    const slav = slatah * pdm;
    return {
      policy: policyLabel(this.options.policy),
      mode: this.options.mode,
      workload: '',
      hosts: this.H,
      vms: this.N,
      seed: this.options.seed ?? 42,
      energyKWh,
      migrations: this.migrations,
      slatah,
      pdm,
      slav,
      esv: energyKWh * slav,
      hostShutdowns: this.shutdownCount,
      meanTimeBeforeHostShutdown: this.shutdownCount > 0 ? this.shutdownTimeSum / this.shutdownCount : 0,
      meanTimeBeforeVmMigration: this.vmMigCount > 0 ? this.vmMigTimeSum / this.vmMigCount : 0,
      meanMigrationTime: this.migrations > 0 ? this.migrationTimeSum / this.migrations : 0,
      meanDowntime: this.migrations > 0 ? this.downtimeSum / this.migrations : 0,
      migrationBytes: this.migrationBytes,
      vmsDeleted: this.vmsDeleted,
      vmsUnplaced: this.vmsUnplaced,
      duplicateMigrations: this.duplicateMigrations,
      wallMs,
      ...(this.series ? { series: this.series } : {}),
    };
  }
}

/**
 * The hosts one planning phase considers. Exact mode: every active host plus one representative empty host per type,
 * kept sorted by index (so ties resolve as in a full scan). Sampled mode: `k` random active hosts per placement plus
 * the representatives. When a placement wakes a representative, the next empty host of its type takes its place.
 */
class Candidates {
  private readonly exact: number[] = [];
  private readonly reps: number[] = [];
  private readonly cursor: Int32Array;

  constructor(
    private readonly sim: Simulation,
    private readonly pool: number[],
    private readonly excluded: Uint8Array,
    private readonly includeEmpty: boolean,
    private readonly k: number,
  ) {
    this.cursor = new Int32Array(sim.typeHosts.length);
    if (includeEmpty) for (let t = 0; t < sim.typeHosts.length; t++) this.advance(t);
    if (k <= 0) {
      this.exact = [...pool, ...this.reps.filter((h) => h >= 0)].sort((a, b) => a - b);
    }
  }

  /** Moves type t's representative to its first empty, non-excluded host (or -1). */
  private advance(t: number): void {
    const hs = this.sim.typeHosts[t]!;
    let i = this.cursor[t]!;
    while (i < hs.length && (this.excluded[hs[i]!] === 1 || !this.sim.isEmpty(hs[i]!))) i++;
    this.cursor[t] = i;
    this.reps[t] = i < hs.length ? hs[i]! : -1;
  }

  list(): ArrayLike<number> {
    if (this.k <= 0) return this.exact;
    const out: number[] = [];
    for (const r of this.reps) if (r >= 0) out.push(r);
    if (this.pool.length <= this.k) out.push(...this.pool);
    else for (let i = 0; i < this.k; i++) out.push(this.pool[this.sim.rng.int(this.pool.length)]!);
    return out; // order does not matter: findHost breaks ties by host index
  }

  /** Host h just received its first VM. */
  woke(h: number): void {
    const t = this.sim.hostType[h]!;
    if (!this.includeEmpty || this.reps[t] !== h) return;
    this.advance(t);
    if (this.k > 0) {
      this.pool.push(h);
      return;
    }
    const next = this.reps[t]!;
    if (next >= 0) {
      let lo = 0;
      let hi = this.exact.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.exact[mid]! < next) lo = mid + 1;
        else hi = mid;
      }
      this.exact.splice(lo, 0, next);
    }
  }
}
