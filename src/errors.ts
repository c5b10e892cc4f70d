/**
 * Typed errors. Every failure a user can see carries a stable `code` (for scripts and the JSON report)
 * and a message that says what went wrong and what to do about it.
 */

/** Error codes of a migration, as they appear in the report's `error.code`. */
export type MigrationErrorCode =
  | 'BAD_ARGUMENT'
  | 'CONNECTION_LOST'
  | 'CONNECTION_REFUSED'
  | 'AUTH_FAILED'
  | 'FORBIDDEN'
  | 'PEER_CLOSED'
  | 'TIMEOUT'
  | 'PROTOCOL'
  | 'CHECKSUM'
  | 'FOREIGN_FRAME'
  | 'VERSION'
  | 'CAPABILITY'
  | 'DIGEST_MISMATCH'
  | 'CANCELLED'
  | 'NOT_CONVERGED'
  | 'STALLED'
  | 'GUEST_NOT_FOUND'
  | 'GUEST_BUSY'
  | 'RESOURCE_LIMIT'
  | 'POSTCOPY_LINK_LOST'
  | 'DISK_FULL'
  | 'RECOVER_REFUSED'
  /** A cancel that came after GO: the guest already belongs to the destination. */
  | 'TOO_LATE'
  /** A fault after GO and no answer from the destination: the guest is paused on the source, owner unknown. */
  | 'OWNER_UNKNOWN'
  | 'PROCESS_NOT_FOUND'
  | 'PROCESS_ACCESS'
  | 'INTERNAL';

/** Every MigrationErrorCode, for checking a code that arrives from a peer (an ERROR frame) before it is believed. */
export const MIGRATION_ERROR_CODES = [
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
] as const satisfies readonly MigrationErrorCode[];
// Fails to compile if a code is added to MigrationErrorCode but not to the list above.
const everyCodeListed: Exclude<MigrationErrorCode, (typeof MIGRATION_ERROR_CODES)[number]> extends never
  ? true
  : false = true;
void everyCodeListed;

export class MigrationError extends Error {
  override readonly name = 'MigrationError';
  constructor(
    readonly code: MigrationErrorCode,
    message: string,
    readonly context: Readonly<Record<string, unknown>> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
  toJSON(): { code: MigrationErrorCode; message: string; context: Readonly<Record<string, unknown>> } {
    return { code: this.code, message: this.message, context: this.context };
  }
}

/** A malformed encoded page (XBZRLE, RLE, compressed) or a codec given impossible arguments. */
/** `err` as a MigrationError: itself if it is one, else INTERNAL with what was going on (`doing`) and its message. */
export function asMigrationError(err: unknown, doing: string): MigrationError {
  if (err instanceof MigrationError) return err;
  return new MigrationError('INTERNAL', `${doing}: ${err instanceof Error ? err.message : String(err)}`);
}

export class CodecError extends Error {
  override readonly name = 'CodecError';
  constructor(
    message: string,
    readonly offset = -1,
  ) {
    super(message);
  }
}

/** A command-line flag or configuration value that cannot be accepted. Names the flag and the accepted form. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    readonly flag?: string,
  ) {
    super(message);
  }
}
