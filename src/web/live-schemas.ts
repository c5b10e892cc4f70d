/**
 * Schemas of what an agent sends its clients — migration reports, guests, the status and the event stream's
 * events — checked before a client believes them (AgentClient in src/agent, the dashboard page in app/). Shared by
 * both sides, so pure: zod, the leaf errors.ts and types only (the page bundle compiles it for the browser). Written
 * with zod/mini, whose functions tree-shake: the page bundle grows by tens of KiB, not the ~450 KiB of zod's classic API.
 *
 * The schemas are loose (unknown keys kept): they check the fields clients read — ids, statuses and phases as
 * enums, the numbers shown or computed with — not every field of a report, which grows with each feature.
 */
import * as z from 'zod/mini';
import { MIGRATION_ERROR_CODES } from '../errors.js';
import type { MigrationPhase, MigrationStatus } from '../migration/stats.js';

export const MIGRATION_STATUSES = [
  'setup',
  'active',
  'postcopy-active',
  'postcopy-paused',
  'postcopy-recover',
  'completed',
  'failed',
  'cancelled',
] as const satisfies readonly MigrationStatus[];

export const MIGRATION_PHASES = [
  'setup',
  'precopy',
  'stop-and-copy',
  'switchover',
  'postcopy',
  'done',
] as const satisfies readonly MigrationPhase[];

export const GUEST_STATUSES = ['running', 'paused', 'migrating', 'incoming'] as const;
export const GUEST_ORIGINS = ['started', 'migrated-in', 'restored'] as const;

// Fail to compile if a status or phase is added to the type but not to its list above.
const everyValueListed: [
  Exclude<MigrationStatus, (typeof MIGRATION_STATUSES)[number]>,
  Exclude<MigrationPhase, (typeof MIGRATION_PHASES)[number]>,
] extends [never, never]
  ? true
  : false = true;
void everyValueListed;

const count = z.number().check(z.nonnegative());
const num = z.number();

const errorSchema = z.optional(z.looseObject({ code: z.enum(MIGRATION_ERROR_CODES), message: z.string() }));

/**
 * A migration as `GET /v1/status` and `GET /v1/migrations` list it (MigrationSummary, summary.ts): the fields the
 * page's lists and the CLI read. A full report passes too (it has every one of them).
 */
export const summarySchema = z.looseObject({
  id: z.string().check(z.minLength(1)),
  guestId: z.string(),
  status: z.enum(MIGRATION_STATUSES),
  phase: z.enum(MIGRATION_PHASES),
  strategy: z.string(),
  source: z.string(),
  destination: z.string(),
  verified: z.boolean(),
  startedAt: z.string(),
  totalTimeMs: count,
  downtimeMs: count,
  expectedDowntimeMs: num,
  downtimeLimitMs: num,
  rounds: count,
  ramBytes: count,
  transferredBytes: count,
  remainingBytes: num,
  error: errorSchema,
});

/**
 * A migration report (`GET /v1/migrations/ID`, the answers of `POST /v1/migrations` and of cancel, the event
 * stream's `progress` and `end`): the summary's fields and those the CLI, the evacuation and the page read.
 */
export const reportSchema = z.extend(summarySchema, {
  maxBandwidth: num,
  throughputMbps: num,
  dirtyRatePagesPerSec: num,
  xbzrle: z.looseObject({ enabled: z.boolean(), cacheHits: count, cacheMisses: count, cacheBytes: count }),
  perRound: z.optional(z.array(z.looseObject({ round: count }))),
  events: z.optional(z.array(z.string())),
});

/** A guest as `GET /v1/guests` describes it. */
export const guestSchema = z.looseObject({
  id: z.string().check(z.minLength(1)),
  status: z.enum(GUEST_STATUSES),
  origin: z.enum(GUEST_ORIGINS),
  config: z.looseObject({
    ramBytes: count,
    vcpus: z.optional(count),
    workload: z.looseObject({ name: z.string() }),
  }),
  steps: z.array(num),
  cap: num,
  frequency: num,
  dirtyPages: count,
  migration: z.optional(z.string()),
});

/** `GET /v1/status` (and the event stream's `status` event): outgoing migrations as summaries. */
export const statusSchema = z.looseObject({
  address: z.string(),
  version: z.string(),
  guests: z.array(guestSchema),
  outgoing: z.array(summarySchema),
});

/** `DELETE /v1/guests/ID`. */
export const stoppedSchema = z.looseObject({ id: z.string(), stopped: z.literal(true) });

const nullableNum = z.nullable(num);

/** One point of a migration's live series (LiveSample in live-events.ts). */
export const liveSampleSchema = z.looseObject({
  t: num,
  phase: z.enum(MIGRATION_PHASES),
  round: count,
  transferredBytes: count,
  remainingBytes: num,
  dirtyPages: num,
  throughputMbps: num,
  limitMbps: num,
  expectedDowntimeMs: num,
  downtimeLimitMs: num,
  cacheHits: num,
  cacheMisses: num,
  xbzrleSavedBytes: num,
  cap: num,
  stepsPerSec: nullableNum,
  postcopyFaults: num,
  powerW: nullableNum,
  powerLabel: z.nullable(z.enum(['modelled', 'measured'])),
});

/** The event stream's events, by name (live-events.ts describes them). */
export const eventSchemas = {
  hello: z.looseObject({
    status: statusSchema,
    series: z.array(z.looseObject({ id: z.string(), samples: z.array(liveSampleSchema) })),
  }),
  status: statusSchema,
  progress: z.looseObject({ id: z.string(), sample: liveSampleSchema, report: reportSchema }),
  end: z.looseObject({ id: z.string(), report: reportSchema }),
} as const;

export type EventName = keyof typeof eventSchemas;

/** A schema of an answer's body. */
export type AnswerSchema = z.core.$ZodType;

/** What a check found: the value (typed as the caller's interface) or the first field that did not match. */
export type Checked<T> = { ok: true; value: T } | { ok: false; field: string; problem: string };

/**
 * Checks `json` against `schema`. A loose schema checks a subset of `T`'s fields (see above), so the value is
 * returned as `T` once that subset matched: the fields a client reads have been checked, the rest are the agent's.
 */
export function checkAnswer<T>(schema: AnswerSchema, json: unknown): Checked<T> {
  const r = z.safeParse(schema, json);
  if (r.success) return { ok: true, value: r.data as T };
  const issue = r.error.issues[0];
  return {
    ok: false,
    field: issue?.path.map(String).join('.') || '(body)',
    problem: issue
      ? `${issue.code}${'expected' in issue ? `, expected ${String(issue.expected)}` : ''}`
      : 'does not match',
  };
}

/** The data of the event stream's event `name`, parsed and checked; not JSON counts as a mismatch of the body. */
export function parseEvent<T>(name: EventName, data: string): Checked<T> {
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch {
    return { ok: false, field: '(body)', problem: 'not JSON' };
  }
  return checkAnswer<T>(eventSchemas[name], json);
}
