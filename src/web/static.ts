/**
 * Serving the dashboard: the bundle `npm run build:web` writes (index.html, app.js, app.css) from a fixed list of
 * files — no paths from the request reach the file system — and, for `livemig agent --dashboard PORT`, a second
 * loopback listener that serves the page and the agent's read-only requests (the agent refuses the others there).
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../errors.js';
// The listener answers malformed requests in JSON, as the agent's port does.
import { createApiServer } from '../http-server.js';

/** Where the dashboard lives on an agent's HTTP port. */
export const DASHBOARD_PATH = '/dashboard/';

// A Map, not an object literal: a request for /dashboard/constructor must not find Object.prototype's.
const FILES = new Map<string, string>([
  ['', 'text/html; charset=utf-8'],
  ['index.html', 'text/html; charset=utf-8'],
  ['app.js', 'text/javascript; charset=utf-8'],
  ['app.css', 'text/css; charset=utf-8'],
]);

// Everything comes from the agent itself: the page works offline and cannot be framed or pull in other code.
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The folder holding the built dashboard: dist/web/public, whether livemig runs from dist/ or from src/ (tsx). */
export function dashboardDir(): string {
  const fromSource = import.meta.url.endsWith('.ts');
  return fileURLToPath(new URL(fromSource ? '../../dist/web/public/' : './public/', import.meta.url));
}

/** Answers GET requests under /dashboard/; returns false for every other path so the API can handle it. */
export async function serveDashboard(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  dir = dashboardDir(),
): Promise<boolean> {
  if (url.pathname === '/dashboard') {
    res.writeHead(308, { location: DASHBOARD_PATH });
    res.end();
    return true;
  }
  if (!url.pathname.startsWith(DASHBOARD_PATH)) return false;
  const name = url.pathname.slice(DASHBOARD_PATH.length);
  const type = FILES.get(name);
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendText(res, 405, 'the dashboard is read with GET');
    return true;
  }
  if (type === undefined) {
    sendText(res, 404, `no dashboard file ${name}`);
    return true;
  }
  let body: Buffer;
  try {
    body = await readFile(join(dir, name || 'index.html'));
  } catch {
    sendText(
      res,
      503,
      `the dashboard is not built in ${dir}: run \`npm run build\` (or \`npm run build:web\`)`,
    );
    return true;
  }
  res.writeHead(200, {
    'content-type': type,
    'content-length': body.length,
    'cache-control': 'no-cache',
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
  return true;
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(`${text}\n`);
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::ffff:127.0.0.1';
}

/** Where `--dashboard [PORT|HOST:PORT]` puts the dashboard. */
export interface DashboardPlan {
  /** Serve /dashboard/ on the agent's own port. */
  onAgentPort: boolean;
  /** A listener of its own, on loopback. */
  listen?: { host: string; port: number };
}

/**
 * Decides where the dashboard goes, refusing addresses other machines can reach: the page is served over plain
 * HTTP (a browser has no client certificate), so it stays on loopback. An SSH tunnel
 * (`ssh -L 8080:127.0.0.1:8080 host`) reaches it from elsewhere.
 */
export function planDashboard(flag: string | boolean | undefined, agentHost: string): DashboardPlan {
  if (flag === undefined || flag === false) return { onAgentPort: false };
  const why =
    'the dashboard is only served on loopback (it is plain HTTP, without client certificates); reach it from ' +
    'another machine through an SSH tunnel';
  if (flag === true) {
    if (!isLoopback(agentHost)) {
      throw new UsageError(
        `--dashboard: the agent listens on ${agentHost}, which is not loopback; ${why}, or give --dashboard PORT to serve it on 127.0.0.1:PORT`,
        '--dashboard',
      );
    }
    return { onAgentPort: true };
  }
  const m = /^(?:(?:\[([^\]]+)\]|([^:]+)):)?(\d{1,5})$/.exec(flag.trim());
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) {
    throw new UsageError(
      `--dashboard: "${flag}" is not PORT or HOST:PORT (e.g. 8080, 127.0.0.1:8080)`,
      '--dashboard',
    );
  }
  const host = m[1] ?? m[2] ?? '127.0.0.1';
  if (!isLoopback(host)) throw new UsageError(`--dashboard: ${host} is not loopback; ${why}`, '--dashboard');
  return { onAgentPort: false, listen: { host, port } };
}

export interface DashboardListener {
  address: string;
  url: string;
  close(): Promise<void>;
}

/**
 * A second HTTP listener for `--dashboard PORT`: `/` leads to the page; everything else goes to `handler`, the
 * agent's read-only handler (Agent.handleDashboardHttp), which serves the page and the GET requests it needs
 * (status, the event stream) and refuses every command — this listener is plain HTTP, whatever the agent's TLS.
 */
export async function listenDashboard(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  host: string,
  port: number,
): Promise<DashboardListener> {
  const server = createApiServer((req, res) => {
    if ((req.url ?? '/') === '/') {
      res.writeHead(302, { location: DASHBOARD_PATH });
      res.end();
      return;
    }
    handler(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  const address = `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  return {
    address,
    url: `http://${address}${DASHBOARD_PATH}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
