/**
 * The exit codes of `livemig` (documented in `livemig --help` and docs/guide.md), so scripts can tell a migration
 * that failed from a command line that was wrong.
 */
import type { MigrationReport } from '../migration/index.js';

export const EXIT = {
  /** Done: the migration completed and was verified (and the oracle, if asked for, agreed). */
  ok: 0,
  /** It ran and failed: the migration failed, was cancelled or not verified; an agent refused or was unreachable;
   * the system refused (port in use, permission denied, disk full). */
  failed: 1,
  /** The command line or an input file cannot be accepted (a flag, a PEM file, a trace). Nothing was started. */
  usage: 2,
  /** A bug in livemig: the message carries a stack trace to report. */
  internal: 70,
  /** Stopped by Ctrl-C (SIGINT) or SIGTERM, after stopping what it had started. */
  sigint: 130,
  sigterm: 143,
} as const;

export const EXIT_CODES_HELP =
  '\nExit codes: 0 success (migration completed and verified); 1 failed (migration failed, cancelled or not ' +
  'verified, an agent refused or was unreachable, port in use, disk full); 2 usage error (a flag or input file ' +
  'refused, nothing started); 70 internal error (a bug: report it); 130/143 interrupted by SIGINT/SIGTERM.\n';

/** Whether a finished migration counts as a success for the exit code. */
export function migrationSucceeded(r: MigrationReport, oracle?: { equal: boolean }): boolean {
  // --verify none asks for no digest: completed is then all there is to check.
  const verified = r.verified || r.verify === 'none';
  return r.status === 'completed' && verified && (oracle === undefined || oracle.equal);
}
