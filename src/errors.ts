/**
 * Typed errors. Every failure a user can see carries a stable `code` (for scripts and the JSON report) and a message
 * that says what went wrong and what to do about it. One base, `LivemigError` (undici's `UndiciError` is the model):
 * every error class of livemig extends it, each with a code from the one documented union `LivemigErrorCode`
 * (docs/errors.md lists them with what to do); subclasses exist where the handling differs (a `UsageError` is exit
 * code 2 and no stack trace, a `MigrationError` is a migration's `error.code`, …).
 *
 * This file is a leaf: it imports nothing, so every folder (and the dashboard's page bundle) may import it.
 */

/**
 * Every error code livemig gives, one documented union (docs/errors.md: meaning and what to do). A migration's
 * report carries the subset `MigrationErrorCode`; the other codes belong to the control API, the CLI, traces,
 * codecs, the QEMU bridge and the guest.
 */
export type LivemigErrorCode =
  /** A flag, option, configuration or request field that cannot be accepted; the message names it. */
  | 'BAD_ARGUMENT'
  /** The link to the peer broke (reset, EOF, keep-alive silence) before the migration was done. */
  | 'CONNECTION_LOST'
  /** The peer (a destination agent, an agent's API, a QMP monitor) cannot be reached at the address given. */
  | 'CONNECTION_REFUSED'
  /** TLS or the API token did not prove who the peer is. */
  | 'AUTH_FAILED'
  /** The request is not allowed here: Host/Origin not this agent, or a command on the read-only listener. */
  | 'FORBIDDEN'
  /** The peer closed the connection (or a QMP monitor went away) while an answer was awaited. */
  | 'PEER_CLOSED'
  /** An answer or a step did not come in time. */
  | 'TIMEOUT'
  /** The peer broke the protocol: a malformed frame or body, a frame out of order, an unknown code. */
  | 'PROTOCOL'
  /** A frame's CRC32C does not match: the bytes were corrupted on the way. */
  | 'CHECKSUM'
  /** A frame of another migration or connection arrived on this one. */
  | 'FOREIGN_FRAME'
  /** The peers speak protocol versions with no common version. */
  | 'VERSION'
  /** The peer lacks a capability the migration needs (a codec, a strategy), or QEMU refused a setting. */
  | 'CAPABILITY'
  /** The destination's guest (RAM ledger or vCPU state) differs from the source's: nothing was switched over. */
  | 'DIGEST_MISMATCH'
  /** Cancelled on request (`POST /v1/migrations/ID/cancel`, Ctrl-C, an abort signal). */
  | 'CANCELLED'
  /** Pre-copy did not converge within its stop rule (rounds, time, downtime limit). */
  | 'NOT_CONVERGED'
  /** Pre-copy made no progress for too long (the remaining dirty set stopped shrinking). */
  | 'STALLED'
  /** No guest (or migration) by that id on this agent. */
  | 'GUEST_NOT_FOUND'
  /** The guest is in a state that forbids the request (already migrating, paused, held). */
  | 'GUEST_BUSY'
  /** A limit was reached: guests, memory, connections, event subscribers, cache or trace size. */
  | 'RESOURCE_LIMIT'
  /** The post-copy link broke after switch-over and recovery was cancelled or impossible. */
  | 'POSTCOPY_LINK_LOST'
  /** A report, trace or profile could not be written: the disk (or quota) is full. */
  | 'DISK_FULL'
  /** The destination refused RECOVER: no such paused post-copy, or the token is not the source's. */
  | 'RECOVER_REFUSED'
  /** A cancel that came after GO: the guest already belongs to the destination. */
  | 'TOO_LATE'
  /** A fault after GO and no answer from the destination: the guest is paused on the source, owner unknown. */
  | 'OWNER_UNKNOWN'
  /** The process to record a trace from does not exist (or exited). */
  | 'PROCESS_NOT_FOUND'
  /** The process to record a trace from cannot be read (/proc permissions, ptrace scope). */
  | 'PROCESS_ACCESS'
  /** A bug in livemig: what it was doing and the underlying message. Please report it. */
  | 'INTERNAL'
  /** An HTTP request the control API cannot take: not JSON, wrong content type, too large, no such endpoint. */
  | 'BAD_REQUEST'
  /** A trace file that cannot be used; the message names the file, line and column. */
  | 'TRACE_FORMAT'
  /** A malformed encoded page (XBZRLE, RLE, compressed) or a codec given impossible arguments. */
  | 'CODEC'
  /** QEMU answered a QMP command with an error (its class and description are in the message). */
  | 'QMP_ERROR'
  /** The guest was destroyed while a vCPU waited on a page; internal, never shown to a user. */
  | 'GUEST_STOPPED'
  /** A snapshot file whose bytes do not match their checksums, or cut short (docs/snapshot.md). */
  | 'SNAPSHOT_CORRUPT'
  /** A file that is not a livemig snapshot, or one of a format version this livemig does not read. */
  | 'SNAPSHOT_FORMAT';

/** Every LivemigErrorCode, for checking a code that arrives from a peer (an HTTP error body) before it is believed. */
export const LIVEMIG_ERROR_CODES = [
  'BAD_ARGUMENT',
  'CONNECTION_LOST',
  'CONNECTION_REFUSED',
  'AUTH_FAILED',
  'FORBIDDEN',
  'PEER_CLOSED',
  'TIMEOUT',
  'PROTOCOL',
  'CHECKSUM',
  'FOREIGN_FRAME',
  'VERSION',
  'CAPABILITY',
  'DIGEST_MISMATCH',
  'CANCELLED',
  'NOT_CONVERGED',
  'STALLED',
  'GUEST_NOT_FOUND',
  'GUEST_BUSY',
  'RESOURCE_LIMIT',
  'POSTCOPY_LINK_LOST',
  'DISK_FULL',
  'RECOVER_REFUSED',
  'TOO_LATE',
  'OWNER_UNKNOWN',
  'PROCESS_NOT_FOUND',
  'PROCESS_ACCESS',
  'INTERNAL',
  'BAD_REQUEST',
  'TRACE_FORMAT',
  'CODEC',
  'QMP_ERROR',
  'GUEST_STOPPED',
  'SNAPSHOT_CORRUPT',
  'SNAPSHOT_FORMAT',
] as const satisfies readonly LivemigErrorCode[];

/** The codes that are not a migration's: the control API's, the CLI's inputs', traces', codecs', QEMU's, the guest's. */
const NON_MIGRATION_CODES = [
  'BAD_REQUEST',
  'TRACE_FORMAT',
  'CODEC',
  'QMP_ERROR',
  'GUEST_STOPPED',
  'SNAPSHOT_CORRUPT',
  'SNAPSHOT_FORMAT',
] as const satisfies readonly LivemigErrorCode[];
type NonMigrationCode = (typeof NON_MIGRATION_CODES)[number];

/** Error codes of a migration, as they appear in the report's `error.code` and in ERROR frames. */
export type MigrationErrorCode = Exclude<LivemigErrorCode, NonMigrationCode>;

const isMigrationCode = (c: LivemigErrorCode): c is MigrationErrorCode =>
  !(NON_MIGRATION_CODES as readonly LivemigErrorCode[]).includes(c);

/**
 * Every MigrationErrorCode, for checking a code that arrives from a peer (an ERROR frame) before it is believed:
 * every LivemigErrorCode but the non-migration ones, in the same order.
 */
export const MIGRATION_ERROR_CODES: readonly MigrationErrorCode[] =
  LIVEMIG_ERROR_CODES.filter(isMigrationCode);

// Fail to compile if a code is added to the union but not to its list above (the migration list is derived).
const everyCodeListed: Exclude<LivemigErrorCode, (typeof LIVEMIG_ERROR_CODES)[number]> extends never
  ? true
  : false = true;
void everyCodeListed;

const livemigCodes: ReadonlySet<string> = new Set(LIVEMIG_ERROR_CODES);
const migrationCodes: ReadonlySet<string> = new Set(MIGRATION_ERROR_CODES);

/** Whether `code` (from a peer, a file, an HTTP body) is one of livemig's codes. */
export function isLivemigErrorCode(code: unknown): code is LivemigErrorCode {
  return typeof code === 'string' && livemigCodes.has(code);
}

/** Whether `code` is one a migration can end with. */
export function isMigrationErrorCode(code: unknown): code is MigrationErrorCode {
  return typeof code === 'string' && migrationCodes.has(code);
}

/** The JSON form of every livemig error. */
export interface LivemigErrorJson<C extends LivemigErrorCode = LivemigErrorCode> {
  code: C;
  message: string;
  context: Readonly<Record<string, unknown>>;
}

/** The base of every livemig error: a stable `code`, a message saying what to do, and a `context` record. */
export class LivemigError<C extends LivemigErrorCode = LivemigErrorCode> extends Error {
  override readonly name: string = 'LivemigError';
  constructor(
    readonly code: C,
    message: string,
    readonly context: Readonly<Record<string, unknown>> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
  toJSON(): LivemigErrorJson<C> {
    return { code: this.code, message: this.message, context: this.context };
  }
}

/** A migration's failure: its code is the report's `error.code` and what an ERROR frame carries. */
export class MigrationError extends LivemigError<MigrationErrorCode> {
  override readonly name = 'MigrationError';
}

/** `err` as a MigrationError: itself if it is one, else INTERNAL with what was going on (`doing`) and its message. */
export function asMigrationError(err: unknown, doing: string): MigrationError {
  if (err instanceof MigrationError) return err;
  return new MigrationError('INTERNAL', `${doing}: ${err instanceof Error ? err.message : String(err)}`);
}

/** A malformed encoded page (XBZRLE, RLE, compressed) or a codec given impossible arguments. */
export class CodecError extends LivemigError<'CODEC'> {
  override readonly name = 'CodecError';
  constructor(
    message: string,
    readonly offset = -1,
  ) {
    super('CODEC', message, offset < 0 ? {} : { offset });
  }
}

/**
 * A command-line flag or configuration value that cannot be accepted. Names the flag and the accepted form. The CLI
 * prints it as one line and exits 2; the control API answers it 400 BAD_ARGUMENT.
 */
export class UsageError extends LivemigError<'BAD_ARGUMENT' | 'TRACE_FORMAT'> {
  override readonly name: string = 'UsageError';
  constructor(
    message: string,
    readonly flag?: string,
    code: 'BAD_ARGUMENT' | 'TRACE_FORMAT' = 'BAD_ARGUMENT',
    context: Readonly<Record<string, unknown>> = flag === undefined ? {} : { flag },
  ) {
    super(code, message, context);
  }
}
