/**
 * The success bodies of an agent's control API as AgentClient checks them before returning them (issue: a body of
 * another shape — another program on the port, another version, a proxy's page — is a PROTOCOL error naming the
 * endpoint and the first field that did not match, never garbage handed to the caller). Loose schemas: the fields
 * callers read, see src/web/live-schemas.ts, which the dashboard page shares.
 */
import { z } from 'zod';
import { MigrationError } from '../errors.js';
import { OWNER_STATES } from '../migration/protocol/bodies.js';
import { parsePowerSeries } from '../power/series-schema.js';
import {
  type AnswerSchema,
  checkAnswer,
  guestSchema,
  reportSchema,
  statusSchema,
  stoppedSchema,
  summarySchema,
} from '../web/live-schemas.js';
import { EVACUATION_ORDERS } from './evacuate.js';

const count = z.number().nonnegative();
const steps = z.array(z.number());

export { guestSchema, reportSchema };

/** `GET /v1/status`: outgoing migrations as summaries (the report is at `GET /v1/migrations/ID`). */
export const statusAnswer = statusSchema;

/** `GET /v1/migrations`: the outgoing migrations' summaries. */
export const migrationsAnswer = z.array(summarySchema);

export const guestsAnswer = z.array(guestSchema);

export const stoppedAnswer = stoppedSchema;

export const dirtyLogAnswer = z.looseObject({ at: z.number(), count, pages: z.string() });

export const stateAnswer = z.looseObject({
  config: z.looseObject({ ramBytes: count, pageSize: count }),
  vcpus: z.array(
    z.looseObject({
      index: count,
      step: count,
      rng: z.array(z.number()),
      registers: z.record(z.string(), z.number()),
    }),
  ),
});

export const snapshotAnswer = z.looseObject({
  file: z.string(),
  fileBytes: count,
  pages: count,
  zeroPages: count,
  copiedPages: count,
  steps,
  live: z.boolean(),
});

export const restoreAnswer = z.looseObject({
  guest: guestSchema,
  restoreMs: count,
  pagesRead: count,
  fileBytes: count,
  steps,
});

export const ownerAnswer = z.looseObject({
  migrationId: z.string(),
  guestId: z.string(),
  state: z.enum([...OWNER_STATES, 'in-flight']),
});

export const evacuationAnswer = z.looseObject({
  order: z.enum(EVACUATION_ORDERS),
  maxParallel: count,
  guests: count,
  completed: count,
  failed: count,
  totalTimeMs: count,
  downtimeSumMs: count,
  downtimeMaxMs: count,
  bytes: count,
  moves: z.array(
    z.looseObject({
      guest: z.string(),
      destination: z.string(),
      migration: z.string(),
      status: z.string(),
    }),
  ),
});

/** A check of an answer: a schema, or a parser of its own (GET /v1/power's is shared with the power meter). */
export type AnswerCheck = AnswerSchema | ((json: unknown, base: string) => unknown);

export const powerAnswer: AnswerCheck = (json, base) => parsePowerSeries(json, base);

/**
 * The body `json` of the answer to `endpoint` (e.g. "GET /v1/guests") from the agent at `base`, checked; a
 * PROTOCOL error naming the endpoint and the first field that does not match.
 */
export function parseAnswer<T>(check: AnswerCheck, json: unknown, endpoint: string, base: string): T {
  if (typeof check === 'function') return check(json, base) as T;
  const r = checkAnswer<T>(check, json);
  if (r.ok) return r.value;
  throw new MigrationError(
    'PROTOCOL',
    `the agent at ${base} answered ${endpoint} with a body livemig cannot use (at ${r.field}: ${r.problem}); is it a livemig agent of this version?`,
    { endpoint, field: r.field },
  );
}
