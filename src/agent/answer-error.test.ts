import { describe, expect, it } from 'vitest';
import { MigrationError, UsageError } from '../errors.js';
import { answerError } from './answer-error.js';
import { HttpError } from './http.js';

const body = (v: unknown) => Buffer.from(JSON.stringify(v));
const base = 'http://127.0.0.1:7070';

describe("an agent's error answer, as its client sees it", () => {
  it('turns each documented code into the class that handles it', () => {
    const usage = answerError(
      400,
      body({ error: { code: 'BAD_ARGUMENT', message: 'ram: too big', flag: 'ram' } }),
      base,
    );
    expect(usage).toBeInstanceOf(UsageError);
    expect((usage as UsageError).flag).toBe('ram');
    const busy = answerError(409, body({ error: { code: 'GUEST_BUSY', message: 'migrating' } }), base);
    expect(busy).toBeInstanceOf(MigrationError);
    expect([busy.code, busy.message]).toEqual(['GUEST_BUSY', 'migrating']);
    // The API's own code, outside a migration's: no longer cast into MigrationErrorCode.
    const bad = answerError(415, body({ error: { code: 'BAD_REQUEST', message: 'not JSON' } }), base);
    expect(bad).toBeInstanceOf(HttpError);
    expect([bad.code, (bad as HttpError).status]).toEqual(['BAD_REQUEST', 415]);
  });

  it('makes an unknown code, a body of another shape or non-JSON a PROTOCOL error', () => {
    const bodies: Buffer[] = [
      body({ error: { code: 'NOT_A_CODE', message: 'x' } }),
      body({ error: { code: 7 } }),
      body({ error: 'GUEST_BUSY' }),
      body({ code: 'GUEST_BUSY' }),
      body(null),
      body(['GUEST_BUSY']),
      Buffer.from('<html>502</html>'),
      Buffer.alloc(0),
    ];
    for (const b of bodies) {
      const e = answerError(502, b, base);
      expect(e).toBeInstanceOf(MigrationError);
      expect(e.code).toBe('PROTOCOL');
      expect(e.message).toContain(base);
    }
  });
});
