/**
 * The HTTP plumbing of the control API: reading a JSON body, answering JSON, and mapping every error to a status
 * and a typed body `{error: {code, message}}` — including requests Node's parser itself refuses, so that no
 * request, however malformed, gets anything but a JSON answer.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LivemigError, type LivemigErrorCode, MigrationError, UsageError } from '../errors.js';

// The server itself is shared with the dashboard's own listener (web/static.ts), which must not import the agent.
export { answerClientErrors, createApiServer } from '../http-server.js';

/** A control-API request refused with an HTTP status; the body is `{error: {code, message}}`. */
export class HttpError extends LivemigError {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
    code: LivemigErrorCode = 'BAD_REQUEST',
  ) {
    super(code, message, { status });
  }
}

export const MAX_BODY = 1 << 20;

/** The request's body as JSON; an empty body reads as `{}`. */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > MAX_BODY) throw new HttpError(413, `request body larger than ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  if (n === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'request body is not valid JSON');
  }
}

/** The request target as a URL; only origin-form targets (`/path?query`) are accepted. */
export function requestUrl(req: IncomingMessage): URL {
  const target = req.url ?? '/';
  if (!target.startsWith('/')) {
    throw new HttpError(400, 'the request target must be a path starting with "/" (e.g. /v1/status)');
  }
  try {
    // Prefixed rather than resolved, so that "//x" stays a path instead of becoming a host.
    return new URL(`http://agent${target}`);
  } catch {
    throw new HttpError(400, 'the request target is not a valid path');
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const [status, body] = errorBody(err);
  sendJson(res, status, { error: body });
}

export function errorBody(err: unknown): [number, Record<string, unknown>] {
  if (err instanceof HttpError) return [err.status, { code: err.code, message: err.message }];
  if (err instanceof UsageError) return [400, { code: 'BAD_ARGUMENT', message: err.message, flag: err.flag }];
  if (err instanceof MigrationError) {
    const status =
      err.code === 'GUEST_NOT_FOUND' ? 404 : err.code === 'GUEST_BUSY' || err.code === 'TOO_LATE' ? 409 : 400;
    return [status, { code: err.code, message: err.message }];
  }
  // The other codes of the family (a snapshot file refused, …): the request could not be carried out as asked.
  if (err instanceof LivemigError) return [400, { code: err.code, message: err.message }];
  return [500, { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) }];
}
