/**
 * What the agent's event stream (`GET /v1/events`, server-sent events) carries, shared by the agent side and the
 * dashboard page. Pure: no Node and no DOM, so both sides compile it.
 *
 * Events, in the order a subscriber sees them:
 * - `hello`    {status, series}: the agent's status (GET /v1/status) and the samples of recent migrations, so a
 *              page opened mid-migration still draws the whole run;
 * - `progress` {id, sample, report}: a migration advanced (several times a second while one is active);
 * - `end`      {id, report}: a migration finished (completed, failed or cancelled) — its final report;
 * - `status`   the agent's status again, when guests or migrations change and once a second.
 */
import type { MigrationReport } from '../migration/stats.js';

/** One point of a migration's live time series, measured by the source agent. */
export interface LiveSample {
  /** Milliseconds since the migration started. */
  t: number;
  phase: MigrationReport['phase'];
  round: number;
  transferredBytes: number;
  remainingBytes: number;
  dirtyPages: number;
  /** Throughput since the previous sample (Mbit/s, what left the source). */
  throughputMbps: number;
  /** The bandwidth limit in Mbit/s (0 = unlimited). */
  limitMbps: number;
  expectedDowntimeMs: number;
  downtimeLimitMs: number;
  cacheHits: number;
  cacheMisses: number;
  /** Page bytes XBZRLE replaced minus the bytes of its encodings. */
  xbzrleSavedBytes: number;
  /** The guest's CAP on the source (percent of one CPU, 0 = uncapped). */
  cap: number;
  /** Guest progress on the source, vCPU steps per second; null once the guest runs on the destination. */
  stepsPerSec: number | null;
  postcopyFaults: number;
  /** Source-host power in watts (the agent's power meter, else the report's energy figures), null if neither. */
  powerW: number | null;
  powerLabel: 'modelled' | 'measured' | null;
}

export interface SeriesSnapshot {
  id: string;
  samples: LiveSample[];
}

export interface HelloEvent {
  status: unknown;
  series: SeriesSnapshot[];
}

export interface ProgressEvent {
  id: string;
  sample: LiveSample;
  report: MigrationReport;
}

export interface EndEvent {
  id: string;
  report: MigrationReport;
}

/** Power as the dashboard shows it: always labelled with where the figure comes from. */
export interface EnergyView {
  label: 'modelled' | 'measured';
  watts: number | null;
  joules: number | null;
}

const WATT_KEYS = ['watts', 'powerW', 'sourceWatts', 'meanWatts', 'avgWatts', 'averageWatts'];
const JOULE_KEYS = ['joules', 'sourceJoules', 'energyJ', 'totalJoules'];

function firstNumber(o: Record<string, unknown>, keys: readonly string[]): number | null {
  for (const k of keys) {
    const v = o[k];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  return null;
}

/**
 * Reads the report's optional `energy` field (added by the power work: `energy.source` is the source host's
 * figure {joules, averageWatts, peakWatts, label}, `energy.sourceMeasured` the RAPL one where the machine has it).
 * Tolerant of the exact shape on purpose — watts or joules at the top or under `source`, the label from `label`,
 * `method`, `kind` or a `measured` flag, RAPL counting as measured — so the page keeps working while that field
 * settles. A measured figure wins over a modelled one. Undefined when the report has no energy.
 */
export function readEnergy(report: unknown): EnergyView | undefined {
  const e = (report as { energy?: unknown } | null)?.energy;
  if (!e || typeof e !== 'object') return undefined;
  const o = e as Record<string, unknown>;
  const obj = (v: unknown) => (v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined);
  const measuredFigure = obj(o.sourceMeasured);
  const nested = measuredFigure ?? obj(o.source) ?? {};
  const how = [o.method, o.kind, o.label, o.source, nested.label, nested.method, nested.kind]
    .filter((v) => typeof v === 'string')
    .join(' ');
  const measured =
    measuredFigure !== undefined ||
    o.measured === true ||
    nested.measured === true ||
    /measur|rapl/i.test(how);
  const joules = firstNumber(nested, JOULE_KEYS) ?? firstNumber(o, JOULE_KEYS);
  let watts = firstNumber(nested, WATT_KEYS) ?? firstNumber(o, WATT_KEYS);
  const ms = firstNumber(nested, ['durationMs']) ?? (report as { totalTimeMs?: number }).totalTimeMs ?? 0;
  if (watts === null && joules !== null && ms > 0) watts = joules / (ms / 1000);
  if (watts === null && joules === null) return undefined;
  return { label: measured ? 'measured' : 'modelled', watts, joules };
}
