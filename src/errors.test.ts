import { describe, expect, it } from 'vitest';
import { asMigrationError, MigrationError } from './errors.js';

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
