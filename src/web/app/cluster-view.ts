/**
 * The cluster view's pure parts (no DOM): the status line, each host's card text, the power curve's columns and the
 * migration timeline's bars, from a ClusterView (src/web/cluster-events.ts).
 */
import * as z from 'zod/mini';
import { formatBytes } from '../../units.js';
import type { ClusterView, ClusterViewHost } from '../cluster-events.js';
import { type Checked, checkAnswer } from '../live-schemas.js';

export type { ClusterView, ClusterViewHost } from '../cluster-events.js';

/** One scheduling interval, trace seconds (CloudSim's and the simulator's). */
export const INTERVAL_SEC = 300;

const pct = (x: number): string => `${Math.round(x * 100)} %`;

export function statusLine(v: ClusterView): string {
  const on = v.hosts.filter((h) => h.on).length;
  const watts = v.hosts.reduce((a, h) => a + h.watts, 0);
  const phase =
    v.phase === 'finished' ? 'finished' : v.phase === 'failed' ? `failed: ${v.error ?? ''}` : 'running';
  return (
    `${v.policy} on ${v.day} at ${v.speed}× · interval ${v.interval}/${v.intervals} · ${on}/${v.hosts.length} hosts on · ` +
    `${watts.toFixed(0)} W · ${v.totals.running} guests running · ${v.inFlight.length} migrations in flight · ` +
    `${v.totals.completed} completed, ${v.totals.failed} failed` +
    (v.totals.lost > 0 ? ` · ${v.totals.lost} lost with a dead host` : '') +
    ` · ${phase}`
  );
}

export type HostState = 'on' | 'off' | 'dead';

export function hostState(h: ClusterViewHost): HostState {
  return !h.alive ? 'dead' : h.on ? 'on' : 'off';
}

/** The card's heading and its figures line. */
export function hostText(h: ClusterViewHost): { title: string; figures: string } {
  const state = hostState(h);
  return {
    title: `host ${h.index} · ${h.type}`,
    figures:
      state === 'dead'
        ? `agent dead (pid ${h.pid}) · ${h.mips} MIPS`
        : state === 'off'
          ? `switched off (no guests) · ${h.mips} MIPS · 0 W`
          : `${pct(h.utilisation)} of ${h.mips} MIPS · ${h.watts.toFixed(0)} W · ${h.guests.length} guest${h.guests.length === 1 ? '' : 's'}`,
  };
}

export function guestText(g: ClusterViewHost['guests'][number]): string {
  return `${g.guest} · ${g.workload} · ${g.ramMiB} MiB · ${pct(g.utilisation)}`;
}

/** The power chart's columns: trace hours, whole-cluster watts, hosts on. */
export function powerColumns(v: ClusterView): [number[], number[], number[]] {
  return [v.power.map((p) => p.time / 3600), v.power.map((p) => p.watts), v.power.map((p) => p.activeHosts)];
}

export interface TimelineBar {
  guest: string;
  /** Trace hours. */
  start: number;
  end: number;
  /** Row: guests in order of their first migration. */
  row: number;
  status: string;
  label: string;
}

/**
 * One bar per migration, from its start (the end of the interval whose plan started it) to its end (start + its
 * wall time × speed), in trace hours; migrations in flight run to now (`nowMs`).
 */
export function timelineBars(
  v: ClusterView,
  nowMs: number,
): { bars: TimelineBar[]; rows: string[]; hours: number } {
  const rows: string[] = [];
  const rowOf = (g: string): number => {
    let i = rows.indexOf(g);
    if (i < 0) i = rows.push(g) - 1;
    return i;
  };
  const bars: TimelineBar[] = [];
  for (const m of v.migrations) {
    const start = (m.interval * INTERVAL_SEC) / 3600;
    bars.push({
      guest: m.guest,
      start,
      end: start + m.traceTime / 3600,
      row: rowOf(m.guest),
      status: m.status,
      label:
        `${m.guest}: host ${m.from} → ${m.to}, ${m.status}${m.verified ? ' and verified' : ''}, ` +
        `${(m.totalTimeMs / 1000).toFixed(1)} s, downtime ${m.downtimeMs.toFixed(0)} ms, ${formatBytes(m.transferredBytes)}`,
    });
  }
  for (const f of v.inFlight) {
    const start = (f.interval * INTERVAL_SEC) / 3600;
    const elapsed = Math.max(0, nowMs - f.startedAt) / 1000;
    bars.push({
      guest: f.guest,
      start,
      end: start + (elapsed * v.speed) / 3600,
      row: rowOf(f.guest),
      status: 'in flight',
      label: `${f.guest}: host ${f.from} → ${f.to}, in flight for ${elapsed.toFixed(1)} s`,
    });
  }
  const hours = Math.max((v.intervals * INTERVAL_SEC) / 3600, ...bars.map((b) => b.end));
  return { bars, rows, hours };
}

const num = z.number();
const guestSchema = z.looseObject({ guest: z.string(), workload: z.string(), ramMiB: num, utilisation: num });
/**
 * The fields of a `view` event the page reads, checked before it believes them (loose: unknown keys kept). A view
 * that does not match is dropped with a console error; the next one redraws.
 */
export const clusterViewSchema = z.looseObject({
  policy: z.string(),
  day: z.string(),
  speed: num,
  interval: num,
  intervals: num,
  periodMs: num,
  phase: z.enum(['running', 'finished', 'failed']),
  error: z.optional(z.string()),
  hosts: z.array(
    z.looseObject({
      index: num,
      type: z.string(),
      mips: num,
      address: z.string(),
      pid: num,
      alive: z.boolean(),
      on: z.boolean(),
      utilisation: num,
      watts: num,
      guests: z.array(guestSchema),
    }),
  ),
  inFlight: z.array(z.looseObject({ guest: z.string(), from: num, to: num, interval: num, startedAt: num })),
  migrations: z.array(
    z.looseObject({
      guest: z.string(),
      from: num,
      to: num,
      interval: num,
      status: z.string(),
      totalTimeMs: num,
      downtimeMs: num,
      transferredBytes: num,
      verified: z.boolean(),
      traceTime: num,
      error: z.optional(z.string()),
    }),
  ),
  power: z.array(z.looseObject({ time: num, watts: num, activeHosts: num })),
  killed: z.array(z.looseObject({ host: num, interval: num, guests: z.array(z.string()) })),
  totals: z.looseObject({ migrations: num, completed: num, failed: num, lost: num, running: num }),
});

/** A `view` event's data, parsed and checked. */
export function parseView(data: string): Checked<ClusterView> {
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch {
    return { ok: false, field: '(body)', problem: 'not JSON' };
  }
  return checkAnswer<ClusterView>(clusterViewSchema, json);
}
