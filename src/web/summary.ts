/**
 * A migration as `GET /v1/status`, `GET /v1/migrations` and the event stream's `status` event list it: the figures
 * a list shows (who, where, how it ended, downtime, time, bytes, verified), not the report. A report carries
 * growing arrays (energy series, caps, resizes, events, rounds): a hundred kept migrations made a status of
 * about 1.5 MB, sent once a second to every dashboard. The full report is at `GET /v1/migrations/ID`.
 *
 * Every field is the report's field of the same name, so a full report is a summary too. Pure (the page bundle
 * compiles it).
 */
import type { MigrationReport } from '../migration/stats.js';

export type MigrationSummary = Pick<
  MigrationReport,
  | 'id'
  | 'guestId'
  | 'status'
  | 'phase'
  | 'strategy'
  | 'source'
  | 'destination'
  | 'verified'
  | 'startedAt'
  | 'totalTimeMs'
  | 'downtimeMs'
  | 'expectedDowntimeMs'
  | 'downtimeLimitMs'
  | 'rounds'
  | 'ramBytes'
  | 'transferredBytes'
  | 'remainingBytes'
  | 'error'
>;

/** The summary of `r`: its list fields only (a new object; `r` may go on changing). */
export function migrationSummary(r: MigrationReport): MigrationSummary {
  return {
    id: r.id,
    guestId: r.guestId,
    status: r.status,
    phase: r.phase,
    strategy: r.strategy,
    source: r.source,
    destination: r.destination,
    verified: r.verified,
    startedAt: r.startedAt,
    totalTimeMs: r.totalTimeMs,
    downtimeMs: r.downtimeMs,
    expectedDowntimeMs: r.expectedDowntimeMs,
    downtimeLimitMs: r.downtimeLimitMs,
    rounds: r.rounds,
    ramBytes: r.ramBytes,
    transferredBytes: r.transferredBytes,
    remainingBytes: r.remainingBytes,
    ...(r.error ? { error: { code: r.error.code, message: r.error.message } } : {}),
  };
}
