/**
 * An HTTP server whose every answer is JSON, for the agent's control API and the dashboard's own listener: Node's
 * own refusals of malformed requests are answered here in JSON too. A leaf (Node only), so that agent/ and web/
 * both use it without importing each other.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { LivemigErrorCode } from './errors.js';

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
      error: {
        code: 'BAD_REQUEST' satisfies LivemigErrorCode,
        message: 'CONNECT: this agent is not a proxy (see docs/agent.md)',
      },
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
      error: {
        code: 'BAD_REQUEST' satisfies LivemigErrorCode,
        message: `malformed HTTP request (${err.code ?? 'parse error'})`,
      },
    });
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
}
