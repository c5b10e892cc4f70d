/**
 * One error family (src/errors.ts): every error class of livemig is a LivemigError with a code from the one list,
 * and docs/errors.md lists every code and no other (a new code without its row fails here). Here rather than next
 * to errors.ts because it imports a class from each folder, and errors.ts is a leaf.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HttpError } from '../src/agent/http.js';
import {
  CodecError,
  LIVEMIG_ERROR_CODES,
  LivemigError,
  MIGRATION_ERROR_CODES,
  MigrationError,
  UsageError,
} from '../src/errors.js';
import { StopSignal } from '../src/guest/memory.js';
import { QmpClosedError, QmpError, QmpProtocolError, QmpTimeoutError } from '../src/qemu/qmp.js';
import { TraceFormatError } from '../src/sim/trace-error.js';
import { SnapshotError } from '../src/snapshot/index.js';
import { ROOT } from './markdown.js';

describe('one error family', () => {
  // ApiError (the page's, web/app/api.ts) is checked in its own test: it is compiled with the browser's types.
  it('every error class of livemig is a LivemigError with a code from the one list', () => {
    const all: [LivemigError, string, string][] = [
      [new MigrationError('TIMEOUT', 'x'), 'MigrationError', 'TIMEOUT'],
      [new CodecError('bad run', 7), 'CodecError', 'CODEC'],
      [new UsageError('--ram: too big', 'ram'), 'UsageError', 'BAD_ARGUMENT'],
      [new TraceFormatError({ file: 'day.csv', line: 3 }, 'not a number'), 'UsageError', 'TRACE_FORMAT'],
      [new HttpError(400, 'not JSON'), 'HttpError', 'BAD_REQUEST'],
      [new HttpError(403, 'Host', 'FORBIDDEN'), 'HttpError', 'FORBIDDEN'],
      [new QmpError('GenericError', 'no', 'migrate'), 'QmpError', 'QMP_ERROR'],
      [new QmpTimeoutError('migrate', 5), 'QmpTimeoutError', 'TIMEOUT'],
      [new QmpProtocolError('bad JSON'), 'QmpProtocolError', 'PROTOCOL'],
      [new QmpClosedError('closed'), 'QmpClosedError', 'PEER_CLOSED'],
      [new StopSignal(), 'StopSignal', 'GUEST_STOPPED'],
      [new SnapshotError('SNAPSHOT_CORRUPT', 'page 5'), 'SnapshotError', 'SNAPSHOT_CORRUPT'],
    ];
    for (const [e, name, code] of all) {
      expect(e).toBeInstanceOf(LivemigError);
      expect(e).toBeInstanceOf(Error);
      expect([e.name, e.code]).toEqual([name, code]);
      expect(LIVEMIG_ERROR_CODES).toContain(e.code);
    }
    expect(new TraceFormatError({ file: 'f' }, 'x')).toBeInstanceOf(UsageError);
  });

  it('toJSON is {code, message, context}, the shape a report and an API body carry', () => {
    const e = new MigrationError('DIGEST_MISMATCH', 'RAM differs', { page: 3 }, { cause: new Error('why') });
    expect(JSON.parse(JSON.stringify(e))).toEqual({
      code: 'DIGEST_MISMATCH',
      message: 'RAM differs',
      context: { page: 3 },
    });
    expect(new UsageError('--ram: too big', 'ram').toJSON()).toEqual({
      code: 'BAD_ARGUMENT',
      message: '--ram: too big',
      context: { flag: 'ram' },
    });
    expect(new CodecError('truncated', 12).context).toEqual({ offset: 12 });
    expect(new HttpError(413, 'too large').context).toEqual({ status: 413 });
    const t = new TraceFormatError({ file: 'day.csv', line: 3, column: 2 }, 'x');
    expect([t.file, t.line, t.column, t.flag]).toEqual(['day.csv', 3, 2, '--day']);
  });
});

const text = readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8');
const section = text.slice(text.indexOf('## The codes'));
/** The codes of the table's rows, in order: "| `CODE` | meaning | what to do |". */
const rows = [...section.matchAll(/^\| `([A-Z_]+)` \|[^|\n]+\|[^|\n]+\|$/gm)].map((m) => m[1]);

describe('docs/errors.md', () => {
  it('has one row with a meaning and what to do for every code, and none for a code that does not exist', () => {
    expect([...rows].sort()).toEqual([...LIVEMIG_ERROR_CODES].sort());
  });

  it('lists the migration codes first, as it says', () => {
    expect(rows.slice(0, MIGRATION_ERROR_CODES.length).sort()).toEqual([...MIGRATION_ERROR_CODES].sort());
  });

  it('is linked from docs/README.md', () => {
    expect(readFileSync(join(ROOT, 'docs', 'README.md'), 'utf8')).toContain('(errors.md)');
  });
});
