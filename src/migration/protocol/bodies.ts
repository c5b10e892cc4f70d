/**
 * The JSON bodies a peer sends (VCPU_STATE, COMPLETE, ERROR, RECOVER, RECONCILE, OWNER), each checked by a zod
 * schema before any field is used: a malformed body is a MigrationError(PROTOCOL), never a crash further on.
 */
import { z } from 'zod';
import { MIGRATION_ERROR_CODES, type MigrationErrorCode } from '../../errors.js';
import type { GuestState } from '../../guest/index.js';
import type { DestinationSwitchoverTimes, SwitchoverPriority } from '../stats.js';
import { protocolError } from './errors.js';
import { MAX_VCPUS } from './messages.js';
import { decodeJson, encodeJson } from './payload.js';

const hex32 = z.string().regex(/^[0-9a-f]{32}$/);

/**
 * Parses `payload`'s JSON with `schema`; on failure, a PROTOCOL error saying what was expected and which field
 * broke it (field names the peer chose are not echoed).
 */
function decodeBody<S extends z.ZodType>(
  payload: Buffer,
  what: string,
  schema: S,
  expected: string,
): z.output<S> {
  const r = schema.safeParse(decodeJson(payload, what));
  if (r.success) return r.data;
  throw protocolError(`${what}: expected ${expected}`, { field: fieldOf(r.error.issues[0]?.path ?? []) });
}

function fieldOf(path: readonly PropertyKey[]): string {
  return (
    path
      .map((k) =>
        typeof k === 'number'
          ? `[${k}]`
          : typeof k === 'string' && /^[A-Za-z_]\w{0,31}$/.test(k)
            ? `.${k}`
            : '[?]',
      )
      .join('')
      .replace(/^\./, '') || '(body)'
  );
}

/** RECOVER: which migration to resume, and the secret the source gave in HELLO (proves it is the same source). */
export interface Recover {
  migrationId: string;
  token: string;
}
const recoverSchema = z.object({ migrationId: hex32, token: hex32 });
export function encodeRecover(r: Recover): Buffer {
  return encodeJson(r);
}
export function decodeRecover(payload: Buffer): Recover {
  const { migrationId, token } = decodeBody(
    payload,
    'RECOVER',
    recoverSchema,
    '{migrationId, token} as 32 hex digits each',
  );
  return { migrationId, token };
}

/** PREEMPT: the migration whose post-copy preempt channel this connection is, and its token from HELLO. */
export function encodePreempt(r: Recover): Buffer {
  return encodeJson(r);
}
export function decodePreempt(payload: Buffer): Recover {
  const { migrationId, token } = decodeBody(
    payload,
    'PREEMPT',
    recoverSchema,
    '{migrationId, token} as 32 hex digits each',
  );
  return { migrationId, token };
}

/**
 * RECONCILE: which migration, the token from HELLO, and what the source asks for: `query` (tell me, and keep a held
 * guest held: the source then sends GO on this connection) or `abort` (the source kept the guest: discard yours).
 */
export interface Reconcile {
  migrationId: string;
  token: string;
  action: 'query' | 'abort';
}
const reconcileSchema = z.object({ migrationId: hex32, token: hex32, action: z.enum(['query', 'abort']) });
export function encodeReconcile(r: Reconcile): Buffer {
  return encodeJson(r);
}
export function decodeReconcile(payload: Buffer): Reconcile {
  const { migrationId, token, action } = decodeBody(
    payload,
    'RECONCILE',
    reconcileSchema,
    '{migrationId, token, action: "query" | "abort"}, ids as 32 hex digits',
  );
  return { migrationId, token, action };
}

/** Most parallel channels one migration may open (QEMU's multifd-channels allows 1..255; livemig: 2..16). */
export const MAX_MULTIFD_CHANNELS = 16;

/**
 * CHANNEL: which migration an extra connection belongs to, the token from HELLO (proves it comes from that source)
 * and its index among the migration's channels (a page travels on the channel its address maps to).
 */
export interface ChannelHello {
  migrationId: string;
  token: string;
  channel: number;
}
const channelSchema = z.strictObject({
  migrationId: hex32,
  token: hex32,
  channel: z
    .number()
    .int()
    .min(0)
    .max(MAX_MULTIFD_CHANNELS - 1),
});
export function encodeChannelHello(c: ChannelHello): Buffer {
  return encodeJson(c);
}
export function decodeChannelHello(payload: Buffer): ChannelHello {
  const { migrationId, token, channel } = decodeBody(
    payload,
    'CHANNEL',
    channelSchema,
    `{migrationId, token, channel: 0..${MAX_MULTIFD_CHANNELS - 1}}, ids as 32 hex digits`,
  );
  return { migrationId, token, channel };
}

/** HELLO's `multifd` field: how many channels the source opens after HELLO_ACK. */
const multifdSchema = z.strictObject({
  channels: z.number().int().min(2).max(MAX_MULTIFD_CHANNELS),
});
export function decodeMultifdRequest(value: unknown): { channels: number } {
  const r = multifdSchema.safeParse(value);
  if (r.success) return r.data;
  throw protocolError(`HELLO: multifd must be {channels: 2..${MAX_MULTIFD_CHANNELS}}`, {
    field: `multifd.${fieldOf(r.error.issues[0]?.path ?? [])}`,
  });
}

/**
 * Where the guest of a migration stands on the destination: `resumed` (it runs there, or ran: the destination owns
 * it), `held` (complete, verified and paused, waiting for GO or a verdict), `discarded` (the destination dropped its
 * copy and will never resume it), `unknown` (no such migration here: it never got past setup, or this agent
 * restarted — a guest dies with its agent).
 */
export const OWNER_STATES = ['resumed', 'held', 'discarded', 'unknown'] as const;
export type OwnerState = (typeof OWNER_STATES)[number];
const ownerSchema = z.object({ state: z.enum(OWNER_STATES) });
export function encodeOwner(state: OwnerState): Buffer {
  return encodeJson({ state });
}
export function decodeOwner(payload: Buffer): OwnerState {
  return decodeBody(payload, 'OWNER', ownerSchema, `{state: ${OWNER_STATES.join(' | ')}}`).state;
}

/** ERROR: what went wrong at the peer, as one of the documented error codes. */
export interface ErrorBody {
  code: MigrationErrorCode;
  message?: string;
}
const errorSchema = z.object({ code: z.enum(MIGRATION_ERROR_CODES), message: z.string().optional() });
export function decodeErrorBody(payload: Buffer): ErrorBody {
  const { code, message } = decodeBody(
    payload,
    'ERROR',
    errorSchema,
    '{code: a documented error code, message: string}',
  );
  return message === undefined ? { code } : { code, message };
}

/** COMPLETE: the destination's verdict on a post-copy and its fault statistics. */
export interface CompleteBody {
  verified?: boolean;
  faults?: number;
  faultLatencyMs?: number[];
  missing?: number;
}
const count = z.number().int().nonnegative();
const completeSchema = z.object({
  verified: z.boolean().optional(),
  faults: count.optional(),
  faultLatencyMs: z.array(z.number().nonnegative()).optional(),
  missing: count.optional(),
});
export function decodeCompleteBody(payload: Buffer): CompleteBody {
  return decodeBody(
    payload,
    'COMPLETE',
    completeSchema,
    '{verified?: boolean, faults?: count, faultLatencyMs?: number[], missing?: count}',
  );
}

/**
 * VCPU_STATE's shape: {config, vcpus: [{index, step, rng, registers}]}. The guest checks the meaning when it loads
 * the state (config equal to its own, rng four uint32, the workload's registers); this checks the types. Loose
 * objects: fields this version does not know are kept, since the vCPU digest covers the body as sent.
 */
const vcpuStateSchema = z.looseObject({
  index: count,
  step: count,
  rng: z.array(z.number().int()).max(16),
  registers: z.record(z.string(), z.number()),
});
const guestStateSchema = z.looseObject({
  config: z.looseObject({}),
  vcpus: z.array(vcpuStateSchema).min(1).max(MAX_VCPUS),
});
export function decodeVcpuState(payload: Buffer): GuestState {
  const value = decodeJson(payload, 'VCPU_STATE');
  const r = guestStateSchema.safeParse(value);
  if (!r.success) {
    throw protocolError(
      'VCPU_STATE: expected {config: {...}, vcpus: [{index, step, rng: [...], registers: {...}}]}',
      {
        field: fieldOf(r.error.issues[0]?.path ?? []),
      },
    );
  }
  // The body as sent (its digest is checked at switch-over); its config is resolved and compared by loadState.
  return value as GuestState;
}

const duration = z.number().nonnegative().max(3_600_000);
const destinationTimesSchema = z.object({
  stateMs: duration.optional(),
  applyMs: duration.optional(),
  drainMs: duration.optional(),
  verifyMs: duration.optional(),
  loadStateMs: duration.optional(),
  goMs: duration.optional(),
  resumeMs: duration.optional(),
  totalMs: duration.optional(),
});

export type { DestinationSwitchoverTimes };

const prioritySchema = z.object({
  nice: z.number().int().min(-20).max(19).nullable(),
  threads: z.number().int().nonnegative().max(1024),
  scope: z.enum(['window', 'migration', 'off']),
  reason: z.string().max(64).optional(),
});

/**
 * RESUMED: the guest runs on the destination; with `times`, where the destination's part of the downtime went, and
 * `priority`, what its switch-over threads ran at (src/switchover-priority.ts).
 */
export interface ResumedBody {
  ok?: boolean;
  times?: DestinationSwitchoverTimes;
  priority?: SwitchoverPriority;
}
const resumedSchema = z.object({
  ok: z.boolean().optional(),
  times: destinationTimesSchema.optional(),
  priority: prioritySchema.optional(),
});
export function encodeResumedBody(b: ResumedBody): Buffer {
  return encodeJson(b);
}
export function decodeResumedBody(payload: Buffer): ResumedBody {
  const r = decodeBody(
    payload,
    'RESUMED',
    resumedSchema,
    '{ok?: boolean, times?: {stateMs?, applyMs?, drainMs?, verifyMs?, loadStateMs?, goMs?, resumeMs?, totalMs?} in ms (0..3600000), priority?: {nice: -20..19 | null, threads, scope, reason?}}',
  );
  const out: ResumedBody = {};
  if (r.ok !== undefined) out.ok = r.ok;
  if (r.times) {
    const t: DestinationSwitchoverTimes = {};
    for (const [k, v] of Object.entries(r.times) as [keyof DestinationSwitchoverTimes, number | undefined][])
      if (v !== undefined) t[k] = v;
    out.times = t;
  }
  if (r.priority) {
    const { reason, ...p } = r.priority;
    out.priority = reason === undefined ? p : { ...p, reason };
  }
  return out;
}
