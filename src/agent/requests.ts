/**
 * Validation of control-API request bodies: every field checked, every message naming the field and the form
 * it accepts. The CLI builds the same bodies, so a request the CLI can make is one the API accepts. Query strings
 * go through a schema too (their values are strings: numbers are parsed from digits, never coerced from junk).
 */
import { z } from 'zod';
import { UsageError } from '../errors.js';
import type { GuestConfig } from '../guest/index.js';
import { type MigrationOptions, migrationOptionsSchema, PRESETS, type Preset } from '../migration/options.js';
import { POWER_MODEL_NAMES, type PowerModelName } from '../power/index.js';

const guestRequestSchema = z.strictObject({
  id: z
    .string()
    .regex(/^[\w.-]{1,64}$/, 'letters, digits, ".", "_" or "-", at most 64')
    .optional(),
  run: z.boolean().optional(),
  // The guest module validates the configuration itself (resolveConfig), with messages naming each field.
  config: z.looseObject({ ramBytes: z.number(), workload: z.looseObject({ name: z.string() }) }),
});

function explain(error: z.ZodError, what: string): UsageError {
  const issue = error.issues[0]!;
  const path = issue.path.join('.');
  return new UsageError(`${what}: ${path || 'body'}: ${issue.message}`, path);
}

export function parseGuestRequest(body: unknown): { id?: string; run: boolean; config: GuestConfig } {
  const r = guestRequestSchema.safeParse(body);
  if (!r.success) throw explain(r.error, 'guest request');
  return { id: r.data.id, run: r.data.run ?? true, config: r.data.config as GuestConfig };
}

const migrationRequestSchema = z.strictObject({
  guest: z.string().min(1),
  destination: z.string().min(3),
  preset: z.enum(PRESETS).optional(),
  options: migrationOptionsSchema.partial().optional(),
});

export function parseMigrationRequest(body: unknown): {
  guest: string;
  destination: string;
  preset?: Preset;
  options: Partial<MigrationOptions>;
} {
  const r = migrationRequestSchema.safeParse(body);
  if (!r.success) throw explain(r.error, 'migration request');
  return {
    guest: r.data.guest,
    destination: r.data.destination,
    preset: r.data.preset,
    options: r.data.options ?? {},
  };
}

// No coercion: `{"cap": "50"}` is refused, not read as 50.
const throttleRequestSchema = z.strictObject({
  cap: z.number().int('an integer').min(0).max(100, 'at most 100 (0 = uncapped)').optional(),
  frequency: z.number().gt(0, 'a ratio in (0, 1]').lte(1, 'a ratio in (0, 1]').optional(),
});

/** POST /v1/guests/ID/throttle: `{cap?: 0..100, frequency?: (0, 1]}`. */
export function parseThrottleRequest(body: unknown): { cap?: number; frequency?: number } {
  const r = throttleRequestSchema.safeParse(body);
  if (!r.success) throw explain(r.error, 'throttle request');
  return r.data;
}

const resumeRequestSchema = z.strictObject({
  destination: z.string().min(3, 'a HOST:PORT string').max(300).optional(),
});

/** POST /v1/migrations/ID/resume: `{destination?: "HOST:PORT"}`. */
export function parseResumeRequest(body: unknown): { destination?: string } {
  const r = resumeRequestSchema.safeParse(body);
  if (!r.success) throw explain(r.error, 'resume request');
  return r.data;
}

const emptyRequestSchema = z.strictObject({});

/** Commands without parameters (pause, resume, cancel, stop): no body, or `{}`. */
export function parseEmptyRequest(body: unknown, what: string): void {
  const r = emptyRequestSchema.safeParse(body);
  if (!r.success) throw explain(r.error, `${what} request (takes no fields)`);
}

/** A query string as a plain object; a repeated parameter keeps its first value, as URLSearchParams.get does. */
function queryObject(params: URLSearchParams): Record<string, string> {
  const o: Record<string, string> = {};
  for (const [k, v] of params) if (!(k in o)) o[k] = v;
  return o;
}

// Unknown parameters are ignored (a cache-buster, a newer client's option); known ones are checked.
const powerQuerySchema = z.looseObject({
  since: z
    .string()
    .regex(/^\d{1,16}(\.\d+)?$/, 'epoch milliseconds, e.g. 1700000000000')
    .optional(),
  sample: z.enum(['0', '1'], '0 or 1').optional(),
  model: z.enum(POWER_MODEL_NAMES, `must be one of ${POWER_MODEL_NAMES.join(', ')}`).optional(),
});

/** GET /v1/power?since=MS&sample=0|1&model=NAME: all optional. */
export function parsePowerQuery(params: URLSearchParams): {
  since: number;
  sample: boolean;
  model?: PowerModelName;
} {
  const r = powerQuerySchema.safeParse(queryObject(params));
  if (!r.success) throw explain(r.error, 'power query');
  return {
    since: r.data.since === undefined ? 0 : Number(r.data.since),
    sample: r.data.sample === '1',
    ...(r.data.model === undefined ? {} : { model: r.data.model }),
  };
}

const migrationQuerySchema = z.looseObject({ wait: z.enum(['0', '1'], '0 or 1').optional() });

/** GET /v1/migrations/ID?wait=1: answer once the migration has ended. */
export function parseMigrationQuery(params: URLSearchParams): { wait: boolean } {
  const r = migrationQuerySchema.safeParse(queryObject(params));
  if (!r.success) throw explain(r.error, 'migration query');
  return { wait: r.data.wait === '1' };
}
