/**
 * Builds the live view (web/cluster-events.ts) from the run's state; run.ts calls it on every event it emits, so the
 * view is always the state after that event.
 */
import type { ClusterView, ClusterViewHost, ClusterViewMigration } from '../web/index.js';
import { VIEW_MIGRATIONS } from '../web/index.js';

export interface SnapshotInput {
  policy: string;
  day: string;
  speed: number;
  interval: number;
  intervals: number;
  periodMs: number;
  /** The hosts as the run knows them (run.ts's ClusterHost): the view's host fields that are not computed here. */
  hosts: readonly Pick<ClusterViewHost, 'index' | 'type' | 'mips' | 'address' | 'pid' | 'alive' | 'netns'>[];
  vms: readonly {
    index: number;
    guest: string;
    workload: string;
    ramMiB: number;
    mips: number;
    state: string;
  }[];
  /** VM → host (−1: none). */
  location: ArrayLike<number>;
  inFlight: ReadonlyMap<number, { from: number; target: number; interval: number; startedAt: number }>;
  /** VM → last measured demand, MIPS. */
  demand: ArrayLike<number>;
  watts: readonly ((u: number) => number)[];
  migrations: readonly ClusterViewMigration[];
  power: readonly { time: number; watts: number; activeHosts: number }[];
  killed: readonly { host: number; interval: number; guests: string[] }[];
}

export function clusterSnapshot(s: SnapshotInput, phase: ClusterView['phase'], error?: string): ClusterView {
  const hosts: ClusterViewHost[] = s.hosts.map((h) => ({
    index: h.index,
    type: h.type,
    mips: h.mips,
    address: h.address,
    pid: h.pid,
    ...(h.netns ? { netns: h.netns } : {}),
    alive: h.alive,
    on: false,
    utilisation: 0,
    watts: 0,
    guests: [],
  }));
  const load = new Float64Array(hosts.length);
  for (const vm of s.vms) {
    const h = s.location[vm.index] ?? -1;
    if (vm.state !== 'running' || h < 0 || !hosts[h]) continue;
    const d = s.demand[vm.index] ?? 0;
    load[h] = load[h]! + d;
    hosts[h]!.guests.push({
      guest: vm.guest,
      workload: vm.workload,
      ramMiB: vm.ramMiB,
      utilisation: vm.mips > 0 ? d / vm.mips : 0,
    });
  }
  for (const f of s.inFlight.values()) if (hosts[f.target]) hosts[f.target]!.on = true;
  for (const h of hosts) {
    h.on = h.alive && (h.on || h.guests.length > 0);
    h.utilisation = h.mips > 0 ? load[h.index]! / h.mips : 0;
    h.watts = h.on ? (s.watts[h.index]?.(Math.min(1, h.utilisation)) ?? 0) : 0;
  }
  const completed = s.migrations.filter((m) => m.status === 'completed').length;
  return {
    policy: s.policy,
    day: s.day,
    speed: s.speed,
    interval: s.interval,
    intervals: s.intervals,
    periodMs: s.periodMs,
    phase,
    ...(error ? { error } : {}),
    hosts,
    inFlight: [...s.inFlight.entries()].map(([v, f]) => ({
      guest: s.vms[v]?.guest ?? `vm${v}`,
      from: f.from,
      to: f.target,
      interval: f.interval,
      startedAt: f.startedAt,
    })),
    migrations: s.migrations.slice(-VIEW_MIGRATIONS).map((m) => ({
      guest: m.guest,
      from: m.from,
      to: m.to,
      interval: m.interval,
      status: m.status,
      totalTimeMs: m.totalTimeMs,
      downtimeMs: m.downtimeMs,
      transferredBytes: m.transferredBytes,
      verified: m.verified,
      traceTime: m.traceTime,
      ...(m.error ? { error: m.error } : {}),
    })),
    power: [...s.power],
    killed: s.killed.map((k) => ({ ...k, guests: [...k.guests] })),
    totals: {
      migrations: s.migrations.length + s.inFlight.size,
      completed,
      failed: s.migrations.length - completed,
      lost: s.vms.filter((v) => v.state === 'lost-with-host').length,
      running: s.vms.filter((v) => v.state === 'running').length,
    },
  };
}
