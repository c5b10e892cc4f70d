import { describe, expect, it } from 'vitest';
import {
  asMigrationError,
  isLivemigErrorCode,
  isMigrationErrorCode,
  LIVEMIG_ERROR_CODES,
  MIGRATION_ERROR_CODES,
  MigrationError,
} from './errors.js';

describe('asMigrationError', () => {
  it('keeps a MigrationError as it is', () => {
    const e = new MigrationError('TIMEOUT', 'no GO in 30 s');
    expect(asMigrationError(e, 'waiting for GO')).toBe(e);
  });

  it('makes anything else INTERNAL, saying what was going on and its message', () => {
    const fromError = asMigrationError(new TypeError('x is undefined'), 'migration failed');
    expect(fromError).toBeInstanceOf(MigrationError);
    expect(fromError.code).toBe('INTERNAL');
    expect(fromError.message).toBe('migration failed: x is undefined');
    expect(asMigrationError('socket gone', 'waiting for GO').message).toBe('waiting for GO: socket gone');
  });
});

describe('error codes', () => {
  it('checks a code from a peer against the lists instead of believing it', () => {
    expect(isLivemigErrorCode('BAD_REQUEST')).toBe(true);
    expect(isMigrationErrorCode('BAD_REQUEST')).toBe(false);
    expect(isMigrationErrorCode('OWNER_UNKNOWN')).toBe(true);
    for (const c of ['', 'bad_request', 'toString', '__proto__', 7, null, undefined]) {
      expect(isLivemigErrorCode(c)).toBe(false);
    }
    // The migration codes are a subset of the one list, each listed once.
    expect(MIGRATION_ERROR_CODES.every((c) => isLivemigErrorCode(c))).toBe(true);
    expect(new Set(LIVEMIG_ERROR_CODES).size).toBe(LIVEMIG_ERROR_CODES.length);
  });
});
