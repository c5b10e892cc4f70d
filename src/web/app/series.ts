/**
 * From the agent's samples and reports to chart columns and comparison rows. Pure functions, so they are unit
 * tested without a browser; units are in the names (MiB, ms, Mbit/s, %).
 */
import type { MigrationReport, RoundRow } from '../../migration/stats.js';
import { formatBytes, formatMs } from '../../units.js';
import { type LiveSample, readEnergy } from '../live-events.js';

const MiB = 1024 * 1024;

/** One column per chart series, all aligned on `tS` (seconds since the migration started). */
export interface TimeColumns {
  tS: number[];
  throughputMbps: number[];
  limitMbps: (number | null)[];
  expectedDowntimeMs: number[];
  downtimeLimitMs: number[];
  transferredMiB: number[];
  remainingMiB: number[];
  hitRatePct: (number | null)[];
  savedMiB: number[];
  stepsPerSec: (number | null)[];
  cap: number[];
  faults: number[];
  powerW: (number | null)[];
}

export function timeColumns(samples: readonly LiveSample[]): TimeColumns {
  const c: TimeColumns = {
    tS: [],
    throughputMbps: [],
    limitMbps: [],
    expectedDowntimeMs: [],
    downtimeLimitMs: [],
    transferredMiB: [],
    remainingMiB: [],
    hitRatePct: [],
    savedMiB: [],
    stepsPerSec: [],
    cap: [],
    faults: [],
    powerW: [],
  };
  let lastT = Number.NEGATIVE_INFINITY;
  for (const s of samples) {
    // uPlot needs x strictly ascending; two samples in the same millisecond keep the later one.
    const t = s.t / 1000;
    if (t <= lastT) {
      for (const k of Object.keys(c) as (keyof TimeColumns)[]) c[k].pop();
    }
    lastT = t;
    const lookups = s.cacheHits + s.cacheMisses;
    c.tS.push(t);
    c.throughputMbps.push(s.throughputMbps);
    c.limitMbps.push(s.limitMbps > 0 ? s.limitMbps : null);
    c.expectedDowntimeMs.push(s.expectedDowntimeMs);
    c.downtimeLimitMs.push(s.downtimeLimitMs);
    c.transferredMiB.push(s.transferredBytes / MiB);
    c.remainingMiB.push(s.remainingBytes / MiB);
    c.hitRatePct.push(lookups > 0 ? (100 * s.cacheHits) / lookups : null);
    c.savedMiB.push(s.xbzrleSavedBytes / MiB);
    c.stepsPerSec.push(s.stepsPerSec);
    c.cap.push(s.cap);
    c.faults.push(s.postcopyFaults);
    c.powerW.push(s.powerW);
  }
  return c;
}

export interface RoundColumns {
  round: number[];
  pagesSent: number[];
  dirtyPages: number[];
  throughputMbps: number[];
  expectedDowntimeMs: number[];
}

export function roundColumns(rows: readonly RoundRow[]): RoundColumns {
  return {
    round: rows.map((r) => r.round),
    pagesSent: rows.map((r) => r.pagesSent),
    dirtyPages: rows.map((r) => r.dirtyPages),
    throughputMbps: rows.map((r) => r.throughputMbps),
    expectedDowntimeMs: rows.map((r) => r.expectedDowntimeMs),
  };
}

/** A report as the page shows it, one line of text per figure. */
export type ReportLike = Omit<MigrationReport, 'perRound' | 'events'> &
  Partial<Pick<MigrationReport, 'perRound' | 'events'>>;

function hitRate(r: ReportLike): string {
  const n = r.xbzrle.cacheHits + r.xbzrle.cacheMisses;
  return r.xbzrle.enabled && n > 0 ? `${((100 * r.xbzrle.cacheHits) / n).toFixed(1)} %` : '—';
}

function limit(r: ReportLike): string {
  return r.maxBandwidth > 0 ? `${((r.maxBandwidth * 8) / 1e6).toFixed(0)} Mbit/s` : 'unlimited';
}

/** The rows of the side-by-side comparison: [label, one value per report]. */
export const COMPARE_ROWS: readonly [string, (r: ReportLike) => string][] = [
  ['guest', (r) => r.guestId],
  ['status', (r) => r.status],
  ['verified', (r) => (r.verified ? 'verified' : 'not verified')],
  ['strategy', (r) => r.strategy],
  ['guest RAM', (r) => formatBytes(r.ramBytes)],
  ['bandwidth limit', limit],
  ['XBZRLE', (r) => (r.xbzrle.enabled ? `on, ${formatBytes(r.xbzrle.cacheBytes)} cache` : 'off')],
  ['total time', (r) => formatMs(r.totalTimeMs)],
  ['downtime', (r) => formatMs(r.downtimeMs)],
  ['downtime limit', (r) => formatMs(r.downtimeLimitMs)],
  ['rounds', (r) => String(r.rounds)],
  ['transferred', (r) => formatBytes(r.transferredBytes)],
  ['throughput', (r) => `${r.throughputMbps.toFixed(0)} Mbit/s`],
  ['dirty rate', (r) => `${r.dirtyRatePagesPerSec.toFixed(0)} pages/s`],
  ['XBZRLE cache hit rate', hitRate],
  [
    'XBZRLE bytes saved',
    (r) => (r.xbzrle.enabled ? formatBytes(Math.max(0, r.xbzrle.pageBytes - r.xbzrle.encodedBytes)) : '—'),
  ],
  ['post-copy faults', (r) => String(r.postcopy.faults)],
  ['guest slowdown', (r) => `${(100 * r.guest.slowdown).toFixed(1)} %`],
  ['switch-over', (r) => r.switchoverReason || '—'],
  [
    'source power',
    (r) => {
      const e = readEnergy(r);
      if (!e) return '—';
      const w = e.watts === null ? '' : `${e.watts.toFixed(1)} W`;
      const j = e.joules === null ? '' : `${e.joules.toFixed(0)} J`;
      return `${[w, j].filter(Boolean).join(', ')} (${e.label})`;
    },
  ],
  ['error', (r) => (r.error ? `${r.error.code}: ${r.error.message}` : '—')],
];

export function compareTable(reports: readonly ReportLike[]): { label: string; values: string[] }[] {
  return COMPARE_ROWS.map(([label, f]) => ({ label, values: reports.map(f) }));
}
