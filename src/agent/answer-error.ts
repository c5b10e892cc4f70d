/**
 * What an agent's error answer means to its client: the body `{error: {code, message, flag?}}` checked by a schema
 * and its code against livemig's list (never cast), turned into the error class a caller handles.
 */
import { z } from 'zod';
import {
  isLivemigErrorCode,
  isMigrationErrorCode,
  type LivemigError,
  MigrationError,
  UsageError,
} from '../errors.js';
import { HttpError } from './http.js';

const errorAnswer = z.object({
  error: z.object({
    code: z.string().max(64),
    message: z
      .string()
      .max(64 * 1024)
      .optional(),
    flag: z.string().max(256).optional(),
  }),
});

/**
 * The error for an answer with HTTP `status` and body `bytes` from the agent at `base`: a UsageError for
 * BAD_ARGUMENT (it names the flag), a MigrationError for a migration's code, an HttpError for the API's own codes
 * (BAD_REQUEST), and PROTOCOL for a body that is not an error body or a code livemig does not know.
 */
export function answerError(status: number, bytes: Buffer, base: string): LivemigError {
  let json: unknown;
  try {
    json = bytes.length === 0 ? undefined : JSON.parse(bytes.toString('utf8'));
  } catch {
    return new MigrationError('PROTOCOL', `the agent at ${base} answered ${status} with non-JSON`, {
      status,
    });
  }
  const r = errorAnswer.safeParse(json);
  if (!r.success) {
    return new MigrationError(
      'PROTOCOL',
      `the agent at ${base} answered HTTP ${status} without an error body {error: {code, message}}`,
      { status },
    );
  }
  const { code, message = `HTTP ${status}`, flag } = r.data.error;
  if (code === 'BAD_ARGUMENT') return new UsageError(message, flag);
  if (isMigrationErrorCode(code)) return new MigrationError(code, message, { status });
  if (isLivemigErrorCode(code)) return new HttpError(status, message, code);
  return new MigrationError(
    'PROTOCOL',
    `the agent at ${base} answered HTTP ${status} with an unknown error code (${JSON.stringify(code.slice(0, 40))}): ${message}`,
    { status },
  );
}
