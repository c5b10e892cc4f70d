/**
 * Example answers of an agent, valid by construction: a migration report, its summary, a guest, the status and a
 * live sample. For the tests of the agent's client and of the page's checks, and for the fuzz targets that mutate
 * them (src/fuzz/answer-targets.ts). Reports come from emptyReport and summaries from migrationSummary, the
 * functions the agent uses, so the examples keep the agent's shape as fields are added. Here in web/ because
 * agent/ imports web/ and not the other way round.
 */
import { emptyReport, type MigrationReport } from '../migration/stats.js';
import type { LiveSample } from './live-events.js';
import { type MigrationSummary, migrationSummary } from './summary.js';

/** The id of the example migration (32 hex digits, as the agent makes them). */
export const EXAMPLE_MIGRATION_ID = '0123456789abcdef0123456789abcdef';

type ReportInit = Parameters<typeof emptyReport>[0];

/** A report as a pre-copy of guest g1 with XBZRLE starts (status setup); `init` changes what emptyReport takes. */
export function exampleReport(init: Partial<ReportInit> = {}): MigrationReport {
  return emptyReport({
    id: EXAMPLE_MIGRATION_ID,
    guestId: 'g1',
    strategy: 'precopy',
    source: '127.0.0.1:7070',
    destination: '127.0.0.1:7071',
    verify: 'ledger',
    ramBytes: 1 << 20,
    pageSize: 4096,
    downtimeLimitMs: 300,
    xbzrle: true,
    xbzrleCacheBytes: 1 << 20,
    cacheWays: 2,
    cacheSizing: 'static',
    pageOrder: 'address',
    compress: 'none',
    maxBandwidth: 0,
    ...init,
  });
}

/** The summary `GET /v1/status` lists of `exampleReport(init)`. */
export function exampleSummary(init: Partial<ReportInit> = {}): MigrationSummary {
  return migrationSummary(exampleReport(init));
}

/** Guest g1, running, as `GET /v1/guests/g1` describes it (GuestInfo, src/agent/guests.ts). */
export function exampleGuest() {
  return {
    id: 'g1',
    status: 'running',
    origin: 'started',
    createdAt: '2026-01-01T00:00:00.000Z',
    config: { ramBytes: 1 << 20, vcpus: 1, workload: { name: 'gap', params: {} } },
    steps: [10, 12],
    busyMs: 1,
    cap: 0,
    frequency: 1,
    dirtyPages: 0,
  };
}

/** `GET /v1/status` of an agent hosting g1 with one outgoing migration (the example's summary). */
export function exampleStatus() {
  return {
    agent: 'livemig',
    version: '0.1.0',
    address: '127.0.0.1:7070',
    pid: 1,
    guests: [exampleGuest()],
    outgoing: [exampleSummary()],
    incoming: [],
  };
}

/** One point of a migration's live series, as the event stream's `progress` carries it. */
export function exampleSample(): LiveSample {
  return {
    t: 100,
    phase: 'precopy',
    round: 1,
    transferredBytes: 4096,
    remainingBytes: 1 << 20,
    dirtyPages: 3,
    throughputMbps: 10,
    limitMbps: 0,
    expectedDowntimeMs: 2,
    downtimeLimitMs: 300,
    cacheHits: 1,
    cacheMisses: 1,
    xbzrleSavedBytes: 0,
    cap: 0,
    stepsPerSec: null,
    postcopyFaults: 0,
    powerW: 90,
    powerLabel: 'modelled',
  };
}
