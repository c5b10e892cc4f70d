/** The error a malformed or unreadable trace file gets: names the file, the line and column, and what was expected. */
import { UsageError } from '../errors.js';

export interface TracePlace {
  /** The file (or folder) as the user named it. */
  readonly file: string;
  /** 1-based line number, when the problem is on one line. */
  readonly line?: number;
  /** 1-based column (CSV field) number, with the VM it belongs to when known. */
  readonly column?: number;
  readonly vm?: string;
}

/**
 * A trace that cannot be used. A `UsageError` (exit code 2, one line on stderr, no stack trace) with a stable
 * `code` and the place, so scripts and tests can check where the problem is.
 */
export class TraceFormatError extends UsageError {
  declare readonly code: 'TRACE_FORMAT';
  readonly file: string;
  readonly line: number | undefined;
  readonly column: number | undefined;

  constructor(place: TracePlace, problem: string, flag = '--day') {
    const where = [
      place.line === undefined ? '' : `, line ${place.line}`,
      place.column === undefined ? '' : `, column ${place.column}`,
      place.vm === undefined ? '' : ` (VM "${place.vm}")`,
    ].join('');
    super(`trace ${place.file}${where}: ${problem}`, flag, 'TRACE_FORMAT', { flag, ...place });
    this.file = place.file;
    this.line = place.line;
    this.column = place.column;
  }
}
