/**
 * The HTTP plumbing of the control API: reading a JSON body, answering JSON, and mapping every error to a status
 * and a typed body `{error: {code, message}}` — including requests Node's parser itself refuses, so that no
 * request, however malformed, gets anything but a JSON answer.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { MigrationError, UsageError } from '../errors.js';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code = 'BAD_REQUEST',
  ) {
    super(message);
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
  return [500, { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) }];
}

/**
 * An HTTP server for the control API (the agent's port, the dashboard listener) whose every answer is JSON: Node's
 * own refusals (an HTTP/1.1 request without Host, parse errors, CONNECT) are answered by this module instead.
 */
export function createApiServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Server {
  // Without Host Node answers a bare 400 itself; here it reaches the handler, whose Host check decides.
  const server = createServer({ requireHostHeader: false }, handler);
  answerClientErrors(server);
  return server;
}

/**
 * Answers what Node's HTTP parser refuses (bad request line, bad header, headers too large) with a JSON 4xx
 * instead of its bare 400, and CONNECT with a JSON 405, then closes the connection.
 */
export function answerClientErrors(server: Server): void {
  // CONNECT never reaches the request handler: without this Node closes the connection without a word.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    const body = JSON.stringify({
      error: { code: 'BAD_REQUEST', message: 'CONNECT: this agent is not a proxy (see docs/agent.md)' },
    });
    socket.on('error', () => undefined);
    socket.end(
      `HTTP/1.1 405 Method Not Allowed\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
    const [status, reason] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large']
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'Request Timeout']
          : [400, 'Bad Request'];
    const body = JSON.stringify({
      error: { code: 'BAD_REQUEST', message: `malformed HTTP request (${err.code ?? 'parse error'})` },
    });
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
}
