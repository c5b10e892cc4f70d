/**
 * What a miniature data centre is made of, with the defaults (`DEFAULT_CLUSTER`) and the quick mode the test suite
 * runs (`QUICK_CLUSTER`: 4 hosts, 8 VMs of 32 MiB, two hours of a PlanetLab day at 150× — about a minute).
 */
import type { MigrationOptions } from '../migration/options.js';
import type { ClusterLinkFaults } from './links.js';

export interface ClusterOptions {
  /** Hosts (agents); host i is an HP ML110 G4 if i is even, a G5 if odd (CloudSim's PlanetLab data centre). */
  hosts: number;
  /** VMs (guests). */
  vms: number;
  /** Guest RAM range, MiB: each VM gets a deterministic size in [min, max]. */
  ramMiB: readonly [number, number];
  /** A bundled PlanetLab day (e.g. 20110303) or a trace folder / file `livemig sim --day` accepts. */
  day: string;
  /** Trace window start and length, seconds of the trace (multiples of 300). */
  startSec: number;
  durationSec: number;
  /** Replay speed: one 300-s scheduling interval lasts 300 / speed seconds of wall time. */
  speed: number;
  /** Consolidation policy, as `livemig sim --policy` (thr-mmt, lr-mmt-1.2, mad-mc, …). */
  policy: string;
  /** Seed of RS and of anything random in planning. */
  seed: number;
  /**
   * Real CPU per unit of emulated demand, 0.01–1: a VM asking for u % of its MIPS may use u × cpuScale % of a core
   * (guest CAP, and emulated frequency below 1 %), so that the miniature's CPU fits this machine; utilisation is
   * measured back as the guest's scheduled time ÷ cpuScale.
   */
  cpuScale: number;
  /**
   * What utilisation is measured from: `cpu`, the kernel's CPU time of each guest's vCPU threads (the agents' power
   * meters), or `scheduled`, the vCPUs' own clock of their scheduled time (GET /v1/guests). On an idle machine both
   * follow the CAP; on an oversubscribed one the first falls short of it and the second exceeds it (docs/cluster.md).
   */
  measure: 'cpu' | 'scheduled';
  /** KubeVirt's parallelOutboundMigrationsPerNode and parallelMigrationsPerCluster. */
  parallelOutboundPerHost: number;
  parallelPerCluster: number;
  /** livemig migration options for every migration. */
  migration: Partial<MigrationOptions>;
  /** Workload per VM, cycled (deterministic mix); names of CLUSTER_WORKLOADS. */
  workloads: readonly string[];
  /** Scale each guest's CAP so the CPU it gets follows its trace (default on; src/cluster/cpu-feedback.ts). */
  cpuFeedback?: boolean;
  /**
   * Each host in a network namespace of its own, joined through a bridge by veth links shaped with tc tbf to this
   * rate (bytes/s, both directions); needs root (src/cluster/netns.ts). Absent: every agent on the loopback.
   */
  netns?: { rateBytesPerSec: number };
  /**
   * Latency and loss between hosts, emulated in user space by a fault proxy in front of each host's migration port
   * (this kernel has no netem; src/cluster/links.ts). Absent: migrations go straight to the agents.
   */
  link?: ClusterLinkFaults;
  /** Kill the agent of `host` (SIGKILL) at the start of scheduling interval `atInterval` (fault drill). */
  killHost?: { host: number; atInterval: number };
}

export const DEFAULT_CLUSTER: ClusterOptions = {
  hosts: 8,
  vms: 24,
  ramMiB: [64, 128],
  day: '20110303',
  startSec: 0,
  durationSec: 6 * 3600,
  speed: 60,
  policy: 'lr-mmt',
  seed: 42,
  cpuScale: 0.05,
  measure: 'cpu',
  // KubeVirt's defaults.
  parallelOutboundPerHost: 2,
  parallelPerCluster: 5,
  migration: {},
  workloads: ['twolf', 'kv-read', 'twolf-wide', 'zipf'],
};

export const QUICK_CLUSTER: ClusterOptions = {
  ...DEFAULT_CLUSTER,
  hosts: 4,
  vms: 8,
  ramMiB: [32, 32],
  day: '20110306',
  durationSec: 2 * 3600,
  speed: 150,
  policy: 'thr-mmt',
};

/** `--netns` without `--link-rate`: CloudSim's PlanetLab hosts have 1 Gbit/s links. */
export const DEFAULT_LINK_RATE = 1e9 / 8;

/** The scheduling interval of the simulator and of CloudSim, seconds of trace time. */
export const SCHEDULING_INTERVAL = 300;
