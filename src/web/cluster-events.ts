/**
 * What the live cluster view shows (`livemig cluster --dashboard`): a snapshot of the run after each of its events —
 * the hosts with their guests, utilisation and power, the migrations in flight, the finished ones, the power curve so
 * far and the hosts that died. Plain data (JSON over the event stream, `src/cluster/dashboard.ts`); the page
 * (app/cluster.ts) only draws it. It lives with the dashboard, not with the cluster, so that the page and the
 * manager share it without web/ importing cluster/; it imports nothing, so the page's bundle may import it too.
 */

/** A finished migration as the view shows it (the fields of the report's ClusterMigration it needs). */
export interface ClusterViewMigration {
  guest: string;
  from: number;
  to: number;
  interval: number;
  status: string;
  totalTimeMs: number;
  downtimeMs: number;
  transferredBytes: number;
  verified: boolean;
  /** Wall time × speed: trace seconds. */
  traceTime: number;
  error?: string;
}

export interface ClusterViewGuest {
  guest: string;
  workload: string;
  ramMiB: number;
  /** Last measured utilisation of its MIPS, 0..1. */
  utilisation: number;
}

export interface ClusterViewHost {
  index: number;
  type: string;
  mips: number;
  address: string;
  pid: number;
  netns?: string;
  /** Its agent runs. */
  alive: boolean;
  /** Holds a guest or an incoming migration (a host without either is switched off). */
  on: boolean;
  /** Last measured utilisation of its MIPS (Σ its guests' demand), 0..1+. */
  utilisation: number;
  /** Its SPECpower watts at that utilisation; 0 when off or dead. */
  watts: number;
  guests: ClusterViewGuest[];
}

export interface ClusterViewFlight {
  guest: string;
  from: number;
  to: number;
  /** The scheduling interval it started in. */
  interval: number;
  /** Wall-clock start, ms since the epoch. */
  startedAt: number;
}

export interface ClusterView {
  policy: string;
  day: string;
  speed: number;
  /** Scheduling intervals done, of `intervals`. */
  interval: number;
  intervals: number;
  /** Wall ms per interval. */
  periodMs: number;
  phase: 'running' | 'finished' | 'failed';
  error?: string;
  hosts: ClusterViewHost[];
  inFlight: ClusterViewFlight[];
  /** Finished migrations, in the order they ended (the last 200). */
  migrations: ClusterViewMigration[];
  /** Whole-cluster power and hosts on at the end of each interval (trace seconds). */
  power: { time: number; watts: number; activeHosts: number }[];
  killed: { host: number; interval: number; guests: string[] }[];
  totals: { migrations: number; completed: number; failed: number; lost: number; running: number };
}

/** The most finished migrations a view carries (the report keeps them all). */
export const VIEW_MIGRATIONS = 200;
