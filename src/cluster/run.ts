/**
 * `livemig cluster`: a data centre in miniature. N agents (child processes on loopback) are the hosts, each with an
 * emulated capacity and SPECpower model (CloudSim's PlanetLab hosts); M guests are the VMs, their CPU following
 * PlanetLab traces through the guest CAP; every scheduling interval the simulator's own policy code
 * (`PlanningSession`: the engine's placeInitial and plan) decides on the utilisation measured from the agents'
 * power meters, and its decisions are carried out as live migrations through the agents' API, bounded per host and
 * per cluster. Every migration is checked (digest verified at switch-over, the guest running on its target and gone
 * from its source), and every interval the inventory: a guest lost or duplicated stops the run with an error. At the
 * end the simulator runs on the same hosts, VMs, window and policy, and both are compared.
 */
import { AgentClient } from '../agent/index.js';
import { type ChildAgent, spawnAgents } from '../agent/spawn.js';
import { MigrationError, UsageError } from '../errors.js';
import { CAP_PERIOD_MS, MAX_STRETCH } from '../guest/index.js';
import { predictPrecopy } from '../migration/model.js';
import { DEFAULT_OPTIONS } from '../migration/options.js';
import type { MigrationReport } from '../migration/stats.js';
import {
  HISTORY_LENGTH,
  isPlanetlabDay,
  loadPlanetlabDay,
  loadTraceSource,
  type PlannedMigration,
  PlanningSession,
  planetlabDatacenter,
  policyLabel,
  type SimOptions,
  type SimResult,
} from '../sim/index.js';
import type { ClusterView } from '../web/index.js';
import { type Agreement, agreementFor, calibrationOf, clusterSimOptions } from './agreement.js';
import { arrivedUtilisation, type GuestCpuSample } from './arrival-cpu.js';
import { CpuFeedback } from './cpu-feedback.js';
import { capAndFrequency, capStep, SUBSTEPS } from './cpu-grant.js';
import { clusterSnapshot } from './dashboard-snapshot.js';
import { type Inventory, inventoryProblem } from './inventory.js';
import { type ClusterLinkFaults, ClusterLinks, type LinkStats, parseClusterLink } from './links.js';
import { meterWindow } from './meter-window.js';
import {
  type ClusterMetrics,
  type ClusterMigration,
  type ComparisonRow,
  compareWithSim,
  MetricsAccumulator,
} from './metrics.js';
import { ClusterNetwork, spawnNetnsAgents } from './netns.js';
import { type ClusterOptions, SCHEDULING_INTERVAL } from './options.js';
import { CLUSTER_WORKLOADS, clusterWorkload, guestConfig, guestRamMiB } from './workload.js';

export type VmState = 'running' | 'lost-with-host' | 'unplaced';

export interface ClusterVm {
  index: number;
  guest: string;
  /** The trace file (VM) of the day it replays. */
  trace: string;
  ramMiB: number;
  workload: string;
  mips: number;
  initialHost: number;
  finalHost: number;
  state: VmState;
  migrations: number;
  /** Measured utilisation (fraction of its MIPS) at the end of each interval: the simulator's measured-demand run. */
  utilisation: number[];
}

export interface ClusterHost {
  index: number;
  type: string;
  mips: number;
  address: string;
  pid: number;
  alive: boolean;
  /** Its network namespace (`--netns`). */
  netns?: string;
}

export interface ClusterInterval {
  interval: number;
  /** Trace seconds at the end of the interval. */
  time: number;
  activeHosts: number;
  /** Whole-cluster power at the end of the interval (modelled from measured utilisation), W. */
  watts: number;
  overloaded: number;
  started: number;
  deferred: number;
  inFlight: number;
  /** Σ demand of the running VMs, MIPS: as measured for planning (see ClusterOptions.measure), and what the trace
   *  asked (interval mean). */
  demandMeasured: number;
  demandTrace: number;
  /** The same from the kernel's CPU time of the vCPU threads (short of the cap when this machine is oversubscribed). */
  demandCpu: number;
  /** The same from the vCPUs' own scheduled time (over the cap when this machine is oversubscribed: preemption counts). */
  demandScheduled: number;
  /** Mean CPU feedback gain over the VMs (1: the machine delivers the trace as granted; src/cluster/cpu-feedback.ts). */
  gain: number;
  /**
   * The planning round at the interval's end (none after the last): what the policy saw — each VM's host and measured
   * utilisation, each host's requested demand ÷ MIPS, the migrations in flight — and what it decided (the hosts it
   * found overloaded, its plan, held-back entries included). src/cluster/divergence.ts compares it with the
   * simulator's round.
   */
  decision?: ClusterDecision;
}

/** One planning round of the cluster, in the simulator's terms (`SimDecision` without its time). */
export interface ClusterDecision {
  vmHost: number[];
  vmUtilisation: number[];
  requested: number[];
  overloaded: number[];
  migrations: [number, number][];
  inFlight: [number, number][];
  /** The VMs whose migration completed since the last round, in completion order (their place in a host's list). */
  arrivals: number[];
  /** Each VM's kernel CPU over the interval ÷ cpu-scale, before a VM in flight is held at its last value. */
  vmCpu: number[];
  /** The VMs held at their last value (in flight during the interval, or their host's meter did not answer). */
  held: number[];
  /** The VMs that arrived during the interval, measured on their target from their first CAP there. */
  tail: number[];
  /** Each VM's CPU feedback gain over the interval (cpu-feedback.ts). */
  gain?: number[];
  /** Each VM's floor, what it burned granted nothing in the warm-up (fraction of its MIPS; cpu-feedback.ts). */
  floor?: number[];
}

export interface ClusterEvent {
  kind: 'started' | 'interval' | 'migration-started' | 'migration' | 'host-killed' | 'finished';
  message: string;
  /** The whole run's state after this event, for the live view (`--dashboard`). */
  view?: ClusterView;
  interval?: ClusterInterval;
  migration?: ClusterMigration;
}

export interface ClusterReport {
  policy: string;
  day: string;
  window: { startSec: number; durationSec: number; intervals: number };
  speed: number;
  hosts: ClusterHost[];
  vms: ClusterVm[];
  intervals: ClusterInterval[];
  migrations: ClusterMigration[];
  killed: { host: number; interval: number; guests: string[] }[];
  metrics: ClusterMetrics;
  sim: Omit<SimResult, 'series'>;
  simSeries: { time: number[]; activeHosts: number[]; migrations: number[] };
  comparison: ComparisonRow[];
  /** The simulator ladder (trace + model, trace + measured migrations, trace means, measured demand), the
   *  agreement table with targets and causes, and migration time per VM against the model (src/cluster/agreement.ts). */
  agreement: Agreement;
  /** Migrations the planner asked for that the concurrency limits held back until the next round re-planned. */
  deferred: number;
  /** The planner's seed and concurrency limits (the simulator runs with the same: `livemig sim --against`). */
  seed: number;
  migrationLimits: { perHost: number; perCluster: number };
  wallMs: number;
  /** `--link-delay/--link-jitter/--link-loss`: the emulated link (a user-space proxy, links.ts) and what it relayed. */
  link?: ClusterLinkFaults & LinkStats;
}

/** Intervals' time the guests run before t = 0 for the CPU feedback to measure the machine. */
const WARMUP_ROUNDS = 3;

const sleepUntil = (at: number): Promise<void> =>
  new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));

/**
 * Migration time per VM against the engine's pre-copy model for the same guest (its RAM, measured dirty rate, the
 * bandwidth limit): wall seconds, mean over the completed migrations; the model's figure is in the `sim` column.
 */
function migrationVsModel(done: readonly ClusterMigration[]): ComparisonRow {
  const n = Math.max(1, done.length);
  const cluster = done.reduce((a, m) => a + m.totalTimeMs, 0) / n / 1000;
  const sim = done.reduce((a, m) => a + m.modelTimeMs, 0) / n / 1000;
  return {
    metric: 'migration time per VM, wall s (sim column: pre-copy model)',
    cluster,
    sim,
    relative: sim > 0 ? (cluster - sim) / sim : null,
  };
}

/** Checks the options a user can get wrong, with messages that say what to use. */
export function checkClusterOptions(o: ClusterOptions): void {
  const bad = (flag: string, msg: string): never => {
    throw new UsageError(`${flag}: ${msg}`, flag);
  };
  if (!Number.isInteger(o.hosts) || o.hosts < 1 || o.hosts > 64) bad('--hosts', 'use 1..64 hosts');
  if (!Number.isInteger(o.vms) || o.vms < 1 || o.vms > 256) bad('--vms', 'use 1..256 VMs');
  if (o.durationSec < SCHEDULING_INTERVAL * 2 || o.durationSec % SCHEDULING_INTERVAL !== 0)
    bad('--duration', 'use a multiple of 5m, at least 10m');
  if (o.startSec < 0 || o.startSec % SCHEDULING_INTERVAL !== 0) bad('--start', 'use a multiple of 5m');
  if (!(o.speed >= 1 && o.speed <= 3000)) bad('--speed', 'use 1..3000');
  if (!(o.cpuScale > 0 && o.cpuScale <= 1)) bad('--cpu-scale', 'use a fraction in (0, 1]');
  const [lo, hi] = o.ramMiB;
  if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 4 && hi >= lo && hi <= 4096))
    bad('--ram', 'use MIN-MAX MiB, 4 ≤ MIN ≤ MAX ≤ 4096 (e.g. 64-128)');
  for (const w of o.workloads) {
    if (!(CLUSTER_WORKLOADS as readonly string[]).includes(w))
      bad('--workloads', `"${w}"; use a comma-separated list of ${CLUSTER_WORKLOADS.join(', ')}`);
  }
  if (o.workloads.length === 0) bad('--workloads', 'name at least one');
  if (o.link) parseClusterLink(o.link);
}

/** Runs the miniature data centre to the end of its window and compares it with the simulator. */
export async function runCluster(
  o: ClusterOptions,
  listener: (e: ClusterEvent) => void = () => {},
): Promise<ClusterReport> {
  checkClusterOptions(o);
  const wall0 = performance.now();
  const day = isPlanetlabDay(o.day) ? await loadPlanetlabDay(o.day) : await loadTraceSource({ dir: o.day });
  if (o.startSec + o.durationSec > day.samplesPerVm * SCHEDULING_INTERVAL) {
    throw new UsageError(
      `--start + --duration: the window ends after the trace (${(day.samplesPerVm * SCHEDULING_INTERVAL) / 3600} h)`,
      '--duration',
    );
  }
  if (o.vms > day.vms) throw new UsageError(`--vms: the trace has only ${day.vms} VMs`, '--vms');
  const { workload, picked } = clusterWorkload(day, o.vms, o.startSec, o.durationSec);
  const K = workload.samplesPerVm;
  const M = o.vms;
  const N = o.hosts;
  const dc = planetlabDatacenter(N);
  const simOptions: SimOptions = clusterSimOptions({
    policy: o.policy,
    hosts: N,
    seed: o.seed,
    interval: SCHEDULING_INTERVAL,
    migrationLimits: { perHost: o.parallelOutboundPerHost, perCluster: o.parallelPerCluster },
  });
  const session = new PlanningSession(workload, simOptions);
  const placement = session.initialPlacement();
  const hostMips = Array.from({ length: N }, (_, h) => session.hostSpec(h).mips);
  const watts = Array.from({ length: N }, (_, h) => session.hostSpec(h).watts);
  const vmMips = Array.from({ length: M }, (_, v) => session.vmSpec(v).mips);
  const sample = (v: number, k: number): number => workload.samples[v * K + Math.min(k, K - 1)]!;
  /** VM v's trace at `pos` (in intervals, fractional), linear between samples: what a CAP step grants. */
  const tracedAt = (v: number, pos: number): number => {
    const k0 = Math.floor(pos);
    return sample(v, k0) + (sample(v, k0 + 1) - sample(v, k0)) * (pos - k0);
  };
  const vms: ClusterVm[] = Array.from({ length: M }, (_, v) => ({
    index: v,
    guest: `vm${v}`,
    trace: workload.vmNames[v]!,
    ramMiB: guestRamMiB(v, o.ramMiB),
    workload: o.workloads[v % o.workloads.length]!,
    mips: vmMips[v]!,
    initialHost: placement[v]!,
    finalHost: placement[v]!,
    state: placement[v]! >= 0 ? 'running' : 'unplaced',
    migrations: 0,
    utilisation: [],
  }));
  const feedback = new CpuFeedback(M, o.cpuFeedback ?? true);
  /** VMs that were in flight during the current interval: their CPU is not steered by that interval. */
  const moved = new Set<number>();
  /**
   * Hosts that sent or received a migration during the current interval. Their guests' CPU that interval carries the
   * migration's toll (an agent copying RAM shares the cores with them): real, and measured, but not the machine's
   * steady bias, so it does not steer their gain — the feedback used to answer a 24-point shortfall during a
   * migration with a 20-point excess the interval after.
   */
  const migratingHosts = new Set<number>();
  void picked;

  // The manager is every agent's one client, from one address: well above the per-address connection limits.
  const agentArgs = ['--quiet', '--max-incoming', '8', '--connect-rate', '2000', '--connect-burst', '4000'];
  const network = o.netns ? ClusterNetwork.create({ hosts: N, ...o.netns }) : undefined;
  const netnsAgents = network ? await spawnNetnsAgents(network, agentArgs) : undefined;
  const agents: ChildAgent[] =
    netnsAgents?.agents ?? (await spawnAgents(Array.from({ length: N }, () => ({ args: agentArgs }))));
  // Delay and loss: a user-space proxy in front of each host's migration port (no netem here; links.ts).
  const links = o.link
    ? await ClusterLinks.start(
        agents.map((a) => a.address),
        network?.managerIp ?? '127.0.0.1',
        o.link,
        o.seed,
      ).catch(async (err: unknown) => {
        await Promise.all(agents.map((a) => a.stop()));
        netnsAgents?.release();
        network?.teardown();
        throw err;
      })
    : undefined;
  const clients = agents.map((a) => new AgentClient(a.address));
  const alive = agents.map(() => true);
  const hosts: ClusterHost[] = agents.map((a, h) => ({
    index: h,
    type: dc.hostTypes[dc.hostTypeOf[h]!]!.name,
    mips: hostMips[h]!,
    address: a.address,
    pid: a.pid,
    alive: true,
    ...(network ? { netns: network.hosts[h]!.ns } : {}),
  }));
  const location = Int32Array.from(placement);
  const inFlight = new Map<
    number,
    { from: number; target: number; interval: number; startedAt: number; done: Promise<void> }
  >();
  const outbound = new Array<number>(N).fill(0);
  /** VM → when its last migration settled: an inventory taken across that moment cannot judge it. */
  const settledAt = new Map<number, number>();
  const migrations: ClusterMigration[] = [];
  const killed: ClusterReport['killed'] = [];
  const intervals: ClusterInterval[] = [];
  const history: number[][] = Array.from({ length: M }, () => []);
  /** The guests whose migration completed since the last planning round, in completion order. */
  const arrivals: number[] = [];
  /** Arrived guests not yet capped on their target, and the time each got its first CAP there (arrival-cpu.ts). */
  const awaitingCap = new Set<number>();
  const cappedSince = new Map<number, number>();
  const demand = new Float64Array(M);
  let fatal: Error | undefined;
  let stopping = false;
  let k = 0;
  let queue: PlannedMigration[] = [];
  let deferredTotal = 0;
  let acc: MetricsAccumulator | undefined;
  const onEvent = (e: ClusterEvent): void =>
    listener({
      ...e,
      view: clusterSnapshot(
        {
          policy: policyLabel(simOptions.policy),
          day: day.name,
          speed: o.speed,
          interval: Math.min(k, K),
          intervals: K,
          periodMs: (SCHEDULING_INTERVAL / o.speed) * 1000,
          hosts,
          vms,
          location,
          inFlight,
          demand,
          watts,
          migrations,
          power: intervals.map((i) => ({ time: i.time, watts: i.watts, activeHosts: i.activeHosts })),
          killed,
        },
        e.kind === 'finished' ? 'finished' : 'running',
      ),
    });

  /** VM v went down with host h: accounted for as lost with it. */
  const loseWithHost = (v: number, h: number): void => {
    vms[v]!.state = 'lost-with-host';
    location[v] = -1;
    let entry = killed.find((x) => x.host === h);
    if (!entry) {
      entry = { host: h, interval: k, guests: [] };
      killed.push(entry);
    }
    if (!entry.guests.includes(vms[v]!.guest)) entry.guests.push(vms[v]!.guest);
  };
  /** Whether host h is dead: its agent exited, or does so within 2 s (an unanswered call may be its death). */
  const hostDead = async (h: number): Promise<boolean> => {
    if (!alive[h]) return true;
    const p = agents[h]!.process;
    if (p.exitCode === null && p.signalCode === null) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 2000);
        p.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return !alive[h] || p.exitCode !== null || p.signalCode !== null;
  };

  const onHostDied = (h: number): void => {
    if (stopping || !alive[h]) return;
    alive[h] = false;
    hosts[h]!.alive = false;
    if (!killed.some((x) => x.host === h)) killed.push({ host: h, interval: k, guests: [] });
    for (let v = 0; v < M; v++) if (location[v] === h && !inFlight.has(v)) loseWithHost(v, h);
    const lost = killed.find((x) => x.host === h)!.guests;
    onEvent({
      kind: 'host-killed',
      message: `host ${h} (${agents[h]!.address}) died at interval ${k}; its guests ${lost.join(', ') || '(none)'} are lost with it`,
    });
  };
  agents.forEach((a, h) => {
    a.process.once('exit', () => onHostDied(h));
  });

  // The CPU a VM may use, c = u × cpuScale % of a core, is CAP × emulated frequency (cpu-grant.ts; guests stall by
  // sleeping, so a lower frequency burns less CPU).
  // u in percent of the VM's MIPS; the feedback takes the guest's floor off and scales the rest (cpu-feedback.ts).
  const throttleFor = (v: number, u: number): { cap: number; frequency: number } =>
    capAndFrequency(feedback.grant(v, u / 100) * 100 * o.cpuScale);
  /** Per host: the end of the last power sample measured (epoch ms), where the next measurement window starts. */
  const meterAt = new Float64Array(N);
  /** Where in the trace the last CAP step was (intervals): an arriving guest is capped at it at once. */
  let capPos = 0;
  /** `idle`: every guest granted nothing (the warm-up's floor round). */
  const applyCaps = async (pos: number, idle = false): Promise<void> => {
    capPos = pos;
    await Promise.all(
      vms.map(async (vm, v) => {
        const h = location[v]!;
        if (vm.state !== 'running' || h < 0 || !alive[h] || inFlight.has(v)) return;
        const u = idle ? 0 : tracedAt(v, pos);
        try {
          await clients[h]!.throttle(vm.guest, throttleFor(v, u));
          // Its first CAP on the target since it arrived: from now on it runs at its trace again.
          if (awaitingCap.delete(v)) cappedSince.set(v, Date.now());
        } catch {
          // Busy (a migration just started) or the host just died: the next step sets it again.
        }
      }),
    );
  };

  /**
   * Guests seen on the live hosts (not counting a destination's incoming copy): id → hosts, and the hosts that
   * answered. A loaded agent may not answer at once: each is asked up to three times; one that still does not answer
   * is left out of this check (its guests are checked at the next one), not taken for empty.
   */
  const inventory = async (): Promise<Inventory> => {
    const startedAt = Date.now();
    const seen = new Map<string, number[]>();
    const busy = new Map<string, number>();
    const answered = clients.map(() => false);
    await Promise.all(
      clients.map(async (c, h) => {
        for (let attempt = 0; attempt < 3 && alive[h] && !answered[h]; attempt++) {
          try {
            const list = await c.guests();
            answered[h] = true;
            for (const g of list) {
              if (g.status === 'incoming') continue;
              seen.set(g.id, [...(seen.get(g.id) ?? []), h]);
              busy.set(`${g.id}@${h}`, g.busyMs ?? 0);
            }
          } catch {
            await new Promise((r) => setTimeout(r, 200));
          }
        }
      }),
    );
    return { seen, answered, busy, startedAt };
  };

  const checkInventory = async (inv?: Inventory): Promise<void> => {
    const problem = inventoryProblem(
      { vms, location, alive, inFlight, settledAt },
      inv ?? (await inventory()),
    );
    if (problem) throw problem;
  };

  const lastBusy = new Map<string, number>();
  /**
   * Each guest's kernel CPU time (ms) since the last call, from the agents' power meters, each host over its own
   * window (meter-window.ts: from the end of its last window to a sample it closes as it answers), and the hosts that
   * answered (each is asked up to three times: a loaded agent may drop a connection).
   */
  const kernelCpu = async (
    /** Guests whose samples on one host are kept (an arrived guest on its target: arrival-cpu.ts). */
    keep: ReadonlyMap<string, number> = new Map(),
  ): Promise<{
    cpu: Map<string, number>;
    answered: boolean[];
    kept: Map<string, GuestCpuSample[]>;
    /** Per host: the window's length, ms (0 on the first call or when the host did not answer). */
    spanMs: Float64Array;
  }> => {
    const cpu = new Map<string, number>();
    const kept = new Map<string, GuestCpuSample[]>();
    const answered = clients.map(() => false);
    const spanMs = new Float64Array(N);
    await Promise.all(
      clients.map(async (c, h) => {
        for (let attempt = 0; attempt < 3 && alive[h] && !answered[h]; attempt++) {
          try {
            const since = meterAt[h]!;
            const series = await c.power(since, true);
            answered[h] = true;
            const w = meterWindow(series.samples, since);
            for (const [id, ms] of w.cpu) cpu.set(id, (cpu.get(id) ?? 0) + ms);
            for (const s of series.samples) {
              if (s.at <= since) continue;
              for (const g of s.guests) {
                if (keep.get(g.id) !== h) continue;
                const list = kept.get(g.id) ?? [];
                list.push({ at: s.at, intervalMs: s.intervalMs, cpuMs: g.cpuMs });
                kept.set(g.id, list);
              }
            }
            spanMs[h] = w.spanMs;
            meterAt[h] = w.end;
          } catch {
            await new Promise((r) => setTimeout(r, 200));
          }
        }
      }),
    );
    return { cpu, answered, kept, spanMs };
  };

  const bandwidth = o.migration.maxBandwidth ?? DEFAULT_OPTIONS.maxBandwidth;
  const finishMigration = async (
    v: number,
    from: number,
    target: number,
    interval: number,
    demandAtStart: number,
    report: MigrationReport | undefined,
    error: string | undefined,
  ): Promise<void> => {
    const vm = vms[v]!;
    let status = report?.status ?? 'failed';
    // A guest that arrived is capped on its target at once: until its CAP is set it may run unthrottled, CPU its
    // trace did not ask for, and its measurement on the target (arrival-cpu.ts) starts from this CAP.
    let cappedAt: number | null = null;
    if (status === 'completed' && report?.verified) {
      try {
        await clients[target]!.throttle(vm.guest, throttleFor(v, tracedAt(v, capPos)));
        cappedAt = Date.now();
      } catch {
        // Not there yet or the host died: the checks below say which; the next CAP step caps it.
      }
    }
    if (status === 'completed') {
      if (!report!.verified) {
        fatal ??= new MigrationError(
          'DIGEST_MISMATCH',
          `migration of ${vm.guest} to host ${target} completed unverified (verify ${report!.verify}); the run stops`,
        );
      }
      // On its target, running; gone from its source. Only a definite answer counts (GUEST_NOT_FOUND, or the guest
      // listed): a refused or dropped call (a busy agent) is asked again, and left to the inventory if it persists.
      const ask = async (h: number): Promise<'here' | 'absent' | 'unknown'> => {
        for (let attempt = 0; attempt < 5 && alive[h]; attempt++) {
          try {
            const info = await clients[h]!.guest(vm.guest);
            return info.status === 'incoming' ? 'absent' : 'here';
          } catch (err) {
            if ((err as { code?: string }).code === 'GUEST_NOT_FOUND') return 'absent';
            await new Promise((r) => setTimeout(r, 300));
          }
        }
        return 'unknown';
      };
      const onTarget = await ask(target);
      if (onTarget === 'absent' && !(await hostDead(target))) {
        fatal ??= new MigrationError(
          'GUEST_NOT_FOUND',
          `guest ${vm.guest} completed its migration to host ${target} but is not there; the run stops`,
        );
      }
      if (alive[from] && (await ask(from)) === 'here') {
        fatal ??= new MigrationError(
          'OWNER_UNKNOWN',
          `guest ${vm.guest} migrated to host ${target} is still on its source host ${from}: duplicated`,
        );
      }
      vm.migrations++;
      if (alive[target]) {
        location[v] = target;
        arrivals.push(v);
        if (cappedAt === null) {
          cappedSince.delete(v);
          awaitingCap.add(v);
        } else {
          awaitingCap.delete(v);
          cappedSince.set(v, cappedAt);
        }
      } else loseWithHost(v, target);
    } else {
      // Failed or cancelled: the guest must still be on its source (or the source died with it).
      if (await hostDead(from)) loseWithHost(v, from);
      status = report?.status ?? 'failed';
    }
    const speed = o.speed;
    const totalTimeMs = report?.totalTimeMs ?? 0;
    const downtimeMs = report?.downtimeMs ?? 0;
    const before = report?.guest.stepsPerSecBefore ?? 0;
    const during = report?.guest.stepsPerSecDuring ?? 0;
    const slow = before > 0 ? Math.min(1, Math.max(0, 1 - during / before)) : 0;
    if (status === 'completed' && acc) {
      acc.degradedMipsSeconds +=
        demandAtStart * (slow * (totalTimeMs / 1000) * speed + (downtimeMs / 1000) * speed);
    }
    const ramBytes = vm.ramMiB * 1024 * 1024;
    const model = predictPrecopy({
      ramBytes,
      dirtyRate: (report?.dirtyRatePagesPerSec ?? 0) * (report?.pageSize ?? 4096),
      workingSetBytes: ramBytes,
      bandwidth: bandwidth > 0 ? bandwidth : 1e9,
      compressionRatio: o.migration.xbzrle ? 0.4 : 1,
      downtimeLimit: (o.migration.downtimeLimitMs ?? DEFAULT_OPTIONS.downtimeLimitMs) / 1000,
      maxRounds: Math.max(1, o.migration.maxRounds ?? DEFAULT_OPTIONS.maxRounds),
    });
    const m: ClusterMigration = {
      vm: v,
      guest: vm.guest,
      from,
      to: target,
      interval,
      status,
      totalTimeMs,
      downtimeMs,
      transferredBytes: report?.transferredBytes ?? 0,
      verified: report?.verified ?? false,
      traceTime: (totalTimeMs / 1000) * speed,
      traceDowntime: (downtimeMs / 1000) * speed,
      modelTimeMs: Math.round(model.totalTime * 1000),
      slowdown: slow,
      ...(report ? { calibration: calibrationOf(report, o.migration) } : {}),
      ...(report?.switchover ? { switchover: report.switchover } : {}),
      ...(error || report?.error ? { error: error ?? report?.error?.message } : {}),
    };
    migrations.push(m);
    onEvent({
      kind: 'migration',
      message: `${vm.guest}: host ${from} → ${target} ${status} in ${totalTimeMs.toFixed(0)} ms, downtime ${downtimeMs.toFixed(1)} ms${m.verified ? ', verified' : ''}`,
      migration: m,
    });
  };

  const startMigration = (p: PlannedMigration): void => {
    const v = p.vm;
    const from = location[v]!;
    const target = p.target;
    const interval = k;
    const demandAtStart = demand[v]!;
    outbound[from]!++;
    moved.add(v);
    migratingHosts.add(from);
    migratingHosts.add(target);
    acc?.switchedOn(target);
    const run = async (): Promise<void> => {
      let report: MigrationReport | undefined;
      let error: string | undefined;
      try {
        const started = await clients[from]!.migrate(
          vms[v]!.guest,
          links?.address(target, from) ?? agents[target]!.address,
          o.migration,
        );
        report = await clients[from]!.waitMigration(started.id);
      } catch (err) {
        error = (err as Error).message;
      }
      try {
        await finishMigration(v, from, target, interval, demandAtStart, report, error);
      } catch (err) {
        fatal ??= err as Error;
      } finally {
        outbound[from]!--;
        inFlight.delete(v);
        settledAt.set(v, Date.now());
        // Its host died while the migration was being settled: lost with it.
        const at = location[v]!;
        if (at >= 0 && !alive[at] && vms[v]!.state === 'running') loseWithHost(v, at);
        pump();
      }
    };
    inFlight.set(v, { from, target, interval, startedAt: Date.now(), done: run() });
    onEvent({
      kind: 'migration-started',
      message: `${vms[v]!.guest}: host ${from} → ${target} started`,
    });
  };

  const pump = (): void => {
    if (stopping) return;
    const rest: PlannedMigration[] = [];
    for (const p of queue) {
      const from = location[p.vm]!;
      const ok =
        inFlight.size < o.parallelPerCluster &&
        from >= 0 &&
        alive[from] &&
        alive[p.target] &&
        !inFlight.has(p.vm) &&
        vms[p.vm]!.state === 'running' &&
        from !== p.target &&
        outbound[from]! < o.parallelOutboundPerHost;
      if (ok) startMigration(p);
      else if (from >= 0 && alive[from] && alive[p.target] && !inFlight.has(p.vm) && from !== p.target)
        rest.push(p);
    }
    queue = rest;
  };

  try {
    // Guests on the initial placement (the engine's PABFD at t = 0), capped at their t = 0 demand.
    for (const vm of vms) {
      if (vm.state !== 'running') continue;
      await clients[location[vm.index]!]!.startGuest(guestConfig(vm.index, vm.ramMiB, vm.workload), vm.guest);
    }
    await applyCaps(0.5);
    onEvent({
      kind: 'started',
      message:
        `${N} hosts, ${vms.filter((x) => x.state === 'running').length} guests placed by PABFD; ` +
        `${policyLabel(simOptions.policy)}, ${workload.name}, ${K} intervals of ${(SCHEDULING_INTERVAL / o.speed).toFixed(2)} s`,
    });
    const periodMs = (SCHEDULING_INTERVAL / o.speed) * 1000;
    const requestedAt = (useDemand: (v: number) => number): Float64Array => {
      const r = new Float64Array(N);
      for (let v = 0; v < M; v++) {
        const h = location[v]!;
        if (h >= 0 && vms[v]!.state === 'running') r[h] = r[h]! + useDemand(v);
      }
      return r;
    };
    let prevU = requestedAt((v) => (sample(v, 0) / 100) * vmMips[v]!).map((x, h) => x / hostMips[h]!);
    const onAt = (): boolean[] =>
      Array.from({ length: N }, (_, h) => {
        if (!alive[h]) return false;
        for (let v = 0; v < M; v++) if (location[v] === h && vms[v]!.state === 'running') return true;
        for (const f of inFlight.values()) if (f.target === h) return true;
        return false;
      });
    // Warm-up before t = 0: the guests run at their first interval's mean demand for WARMUP_ROUNDS intervals' time
    // while the CPU feedback measures what this machine delivers (1.5× the CAP on a quiet machine, 0.6–0.8× on a
    // loaded one), so the first scheduling interval is not decided on a machine's bias. The gain is the geometric
    // mean of the rounds' corrections (steps 1, ½, ⅓, …): one round's noise is not carried into the run whole. At
    // the first interval's level, not the t = 0 sample's: the machine's bias depends on the CAP (a VM whose trace
    // went 73 → 97 % was measured 78–100 % in interval 1 while its gain settled from 73 %).
    if (o.cpuFeedback ?? true) {
      // First each guest's floor: what it burns granted nothing (cpu-feedback.ts: what a guest burns is affine in
      // its grant, and a gain alone under-delivered the busy VMs and over-delivered the light ones).
      await applyCaps(0, true);
      await kernelCpu(); // opens each host's measurement window
      await sleepUntil(Date.now() + periodMs);
      const idle = await kernelCpu();
      for (let v = 0; v < M; v++) {
        const h = location[v]!;
        if (h < 0 || !idle.answered[h] || !(idle.spanMs[h]! > 0)) continue;
        feedback.setFloor(v, (idle.cpu.get(vms[v]!.guest) ?? 0) / idle.spanMs[h]! / o.cpuScale);
      }
      await applyCaps(0.5);
      // An idle vCPU takes its CAP periods up to MAX_STRETCH at a time: it may sleep that long before its new CAP
      // counts, a shortfall the first gain round would take for the machine's (vm0 was then 1.8 points over its
      // trace in interval 1 of both runs).
      await sleepUntil(Date.now() + 2 * MAX_STRETCH * CAP_PERIOD_MS);
    }
    await kernelCpu(); // opens each host's measurement window
    if (o.cpuFeedback ?? true) {
      for (let round = 0; round < WARMUP_ROUNDS; round++) {
        await sleepUntil(Date.now() + periodMs);
        const { cpu, answered, spanMs } = await kernelCpu();
        for (let v = 0; v < M; v++) {
          const h = location[v]!;
          if (h < 0 || !answered[h] || !(spanMs[h]! > 0)) continue;
          const got = (cpu.get(vms[v]!.guest) ?? 0) / spanMs[h]! / o.cpuScale;
          feedback.update(v, (sample(v, 0) + sample(v, 1)) / 200, got, 1 / (round + 1));
        }
        await applyCaps(0.5);
      }
      feedback.seedUnmeasured();
      const inv = await inventory();
      for (const [key, b] of inv.busy) lastBusy.set(key, b);
    }
    acc = new MetricsAccumulator(N, onAt());
    await applyCaps(capStep(0, 0));
    await kernelCpu(); // the first interval's window starts here
    const t0 = Date.now();
    let last = t0;
    for (k = 1; k <= K; k++) {
      if (o.killHost && o.killHost.atInterval === k && alive[o.killHost.host]) {
        agents[o.killHost.host]!.process.kill('SIGKILL');
      }
      for (let j = 1; j < SUBSTEPS; j++) {
        await sleepUntil(t0 + (k - 1 + j / SUBSTEPS) * periodMs);
        await applyCaps(capStep(k - 1, j));
      }
      await sleepUntil(t0 + k * periodMs);
      if (fatal) throw fatal;
      const now = Date.now();
      // Utilisation measured from the agents: each guest's scheduled vCPU time over the interval ÷ cpuScale (the
      // listing is also the inventory), and the kernel's CPU time of its threads from the power meters.
      // A guest that moved during the interval and has since run capped on its target is measured there (its tail).
      const tails = new Map<string, number>();
      for (const v of moved) {
        if (!inFlight.has(v) && cappedSince.has(v) && location[v]! >= 0)
          tails.set(vms[v]!.guest, location[v]!);
      }
      const [inv, meters] = await Promise.all([inventory(), kernelCpu(tails)]);
      const cpu = meters.cpu;
      const elapsed = Math.max(1, now - last);
      const intervalStart = last;
      last = now;
      let demandCpu = 0;
      let demandScheduled = 0;
      const vmCpu = new Array<number>(M).fill(0);
      const heldVms: number[] = [];
      const tailVms: number[] = [];
      const gains = Array.from({ length: M }, (_, v) => feedback.gain(v));
      for (let v = 0; v < M; v++) {
        const vm = vms[v]!;
        let busyDelta = 0;
        for (const h of inv.seen.get(vm.guest) ?? []) {
          const key = `${vm.guest}@${h}`;
          const b = inv.busy.get(key) ?? 0;
          const before = lastBusy.get(key) ?? 0;
          busyDelta += b >= before ? b - before : b;
          lastBusy.set(key, b);
        }
        const scheduled = vm.state === 'running' ? Math.min(1, busyDelta / elapsed / o.cpuScale) : 0;
        // Over its host's measurement window (kernelCpu); a guest seen on two hosts moved and is held or measured on
        // its target below.
        const at = location[v]!;
        const span = at >= 0 && meters.spanMs[at]! > 0 ? meters.spanMs[at]! : elapsed;
        const kernel = vm.state === 'running' ? Math.min(1, (cpu.get(vm.guest) ?? 0) / span / o.cpuScale) : 0;
        // A host whose meter did not answer: its VMs keep their last measured value (not 0).
        const unmeasured = location[v]! >= 0 && !meters.answered[location[v]!] && o.measure === 'cpu';
        // A VM in flight during the interval: what it got is its demand less the migration's toll (paused, slowed,
        // uncapped for a moment on arrival), which PDM counts; its demand is held at its last value before, as a
        // monitor without a sample would, and as the simulator keeps a migrating VM's requested MIPS.
        const since = cappedSince.get(v);
        const tail =
          tails.has(vm.guest) && since !== undefined
            ? arrivedUtilisation(
                meters.kept.get(vm.guest) ?? [],
                Math.max(since, intervalStart),
                meterAt[location[v]!]!,
                periodMs,
                o.cpuScale,
              )
            : null;
        const held = (moved.has(v) || inFlight.has(v)) && tail === null && history[v]!.length > 0;
        const u =
          unmeasured || held
            ? (history[v]![0] ?? 0)
            : tail !== null
              ? tail
              : o.measure === 'scheduled'
                ? scheduled
                : kernel;
        if (tail !== null) tailVms.push(v);
        vmCpu[v] = kernel;
        if (unmeasured || held) heldVms.push(v);
        demand[v] = u * vmMips[v]!;
        if (vm.state === 'running') {
          vm.utilisation.push(u);
          if (!held && !unmeasured && tail === null && !migratingHosts.has(location[v]!))
            feedback.update(v, (sample(v, k - 1) + sample(v, k)) / 200, kernel);
        }
        demandCpu += kernel * vmMips[v]!;
        demandScheduled += scheduled * vmMips[v]!;
        history[v]!.unshift(u);
        if (history[v]!.length > HISTORY_LENGTH) history[v]!.length = HISTORY_LENGTH;
      }
      moved.clear();
      migratingHosts.clear();
      for (const [v, f] of inFlight) {
        moved.add(v);
        migratingHosts.add(f.from);
        migratingHosts.add(f.target);
      }
      for (const v of tailVms) cappedSince.delete(v);
      const requested = requestedAt((v) => demand[v]!);
      const u1 = Array.from(requested, (r, h) => r / hostMips[h]!);
      const on = onAt();
      acc.interval(SCHEDULING_INTERVAL, watts, prevU, u1, requested, hostMips, on);
      prevU = Float64Array.from(u1);
      await checkInventory(inv);
      if (fatal) throw fatal;
      const deferred = queue.length;
      deferredTotal += deferred;
      queue = [];
      let overloaded = 0;
      let started = 0;
      let decision: ClusterDecision | undefined;
      if (k < K) {
        const vmHost = Int32Array.from(location, (h, v) => (vms[v]!.state === 'running' ? h : -1));
        const flying = [...inFlight.entries()].map(([vm, f]) => ({ vm, target: f.target }));
        const arrived = arrivals.splice(0);
        const round = session.plan({
          vmHost,
          demand,
          history,
          hostUtilisation: u1,
          inFlight: flying,
          arrivals: arrived,
        });
        overloaded = round.overloaded;
        decision = {
          vmHost: Array.from(vmHost),
          vmUtilisation: Array.from(demand, (d, v) => d / vmMips[v]!),
          requested: round.requested,
          overloaded: round.overloadedHosts,
          migrations: round.migrations.map((p) => [p.vm, p.target]),
          inFlight: flying.map((f) => [f.vm, f.target]),
          arrivals: arrived,
          vmCpu,
          held: heldVms,
          tail: tailVms,
          gain: gains,
          floor: Array.from({ length: M }, (_, v) => feedback.floor(v)),
        };
        queue = round.migrations.filter((p) => alive[p.target]);
        const before = migrations.length + inFlight.size;
        pump();
        started = migrations.length + inFlight.size - before;
      }
      let demandMeasured = 0;
      let demandTrace = 0;
      for (let v = 0; v < M; v++) {
        if (vms[v]!.state !== 'running') continue;
        demandMeasured += demand[v]!;
        demandTrace += ((sample(v, k - 1) + sample(v, k)) / 200) * vmMips[v]!;
      }
      let w = 0;
      let active = 0;
      for (let h = 0; h < N; h++) {
        if (on[h]) {
          active++;
          w += watts[h]!(Math.min(1, u1[h]!));
        }
      }
      const row: ClusterInterval = {
        interval: k,
        time: k * SCHEDULING_INTERVAL,
        activeHosts: active,
        watts: w,
        overloaded,
        started,
        deferred,
        inFlight: inFlight.size,
        demandMeasured,
        demandTrace,
        demandCpu,
        demandScheduled,
        gain: feedback.mean(),
        ...(decision ? { decision } : {}),
      };
      intervals.push(row);
      onEvent({
        kind: 'interval',
        message: `interval ${k}/${K}: ${active} hosts on, ${w.toFixed(0)} W, ${overloaded} overloaded, ${started} migrations started, ${inFlight.size} in flight; demand ${demandMeasured.toFixed(0)} MIPS measured, ${demandTrace.toFixed(0)} traced`,
        interval: row,
      });
      if (k < K) await applyCaps(capStep(k, 0));
    }
    // Migrations still in flight finish (they were started inside the window).
    stopping = true;
    queue = [];
    await Promise.all([...inFlight.values()].map((f) => f.done));
    if (fatal) throw fatal;
    await checkInventory();
    const started = migrations.length;
    const metrics = acc.result(migrations);
    for (const vm of vms) vm.finalHost = location[vm.index]!;
    let demandMeasured = 0;
    let demandTrace = 0;
    for (const i of intervals) {
      demandMeasured += i.demandMeasured;
      demandTrace += i.demandTrace;
    }
    const { agreement, model: simRun } = agreementFor({
      trace: workload,
      options: simOptions,
      metrics,
      migrations,
      vms,
      demandMeasured,
      demandTrace,
      deferred: deferredTotal,
      decisions: intervals.map((i) => i.decision),
    });
    onEvent({ kind: 'finished', message: `${started} migrations; simulator run done` });
    return {
      policy: policyLabel(simOptions.policy),
      day: day.name,
      window: { startSec: o.startSec, durationSec: o.durationSec, intervals: K },
      speed: o.speed,
      hosts,
      vms,
      intervals,
      migrations,
      killed,
      metrics,
      sim: simRun.sim,
      simSeries: simRun.series,
      comparison: [
        ...compareWithSim(metrics, simRun.sim),
        migrationVsModel(migrations.filter((m) => m.status === 'completed')),
      ],
      agreement,
      deferred: deferredTotal,
      seed: o.seed,
      migrationLimits: { perHost: o.parallelOutboundPerHost, perCluster: o.parallelPerCluster },
      wallMs: Math.round(performance.now() - wall0),
      ...(links ? { link: { ...links.faults, ...(await links.stats()) } } : {}),
    };
  } finally {
    stopping = true;
    await Promise.allSettled([...inFlight.values()].map((f) => f.done));
    for (const c of clients) c.close();
    await links?.close();
    await Promise.all(agents.map((a) => a.stop()));
    netnsAgents?.release();
    network?.teardown();
  }
}
