/**
 * `livemig cluster --dashboard [PORT]`: the manager serves the live cluster view on loopback — the page
 * (`/cluster/`, bundled with the agents' dashboard by `npm run build:web`), the latest view as JSON
 * (`GET /v1/cluster`) and a server-sent event stream of views (`GET /v1/cluster/events`, one `view` event on
 * connecting and one after each event of the run). Read-only: there is nothing to command, so no token; plain HTTP,
 * so loopback only (as an agent's `--dashboard PORT`), and requests whose Host is not this listener are refused
 * (a page on another site cannot read it through DNS rebinding).
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { createApiServer } from '../http-server.js';
import type { ClusterView } from '../web/index.js';
import { dashboardDir, isLoopback } from '../web/index.js';

export const CLUSTER_PATH = '/cluster/';

// A fixed list: no path from the request reaches the file system.
const FILES = new Map<string, [string, string]>([
  ['', ['cluster.html', 'text/html; charset=utf-8']],
  ['index.html', ['cluster.html', 'text/html; charset=utf-8']],
  ['cluster.js', ['cluster.js', 'text/javascript; charset=utf-8']],
  ['cluster.css', ['cluster.css', 'text/css; charset=utf-8']],
]);

const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const MAX_SUBSCRIBERS = 32;

export interface ClusterDashboard {
  /** host:port it listens on. */
  address: string;
  /** The page's address. */
  url: string;
  /** The latest view, to every subscriber. */
  publish(view: ClusterView): void;
  /** Subscribers right now (for tests). */
  subscribers(): number;
  close(): Promise<void>;
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(`${body}\n`);
}

/** Starts the listener on a loopback `host:port` (port 0: any free port). */
export async function startClusterDashboard(
  host: string,
  port: number,
  dir = dashboardDir(),
): Promise<ClusterDashboard> {
  if (!isLoopback(host)) {
    throw new UsageError(
      `--dashboard: ${host} is not loopback; the cluster view is plain HTTP and only served on loopback (reach it through an SSH tunnel)`,
      '--dashboard',
    );
  }
  let latest: ClusterView | undefined;
  const streams = new Set<ServerResponse>();
  let address = '';
  const send = (res: ServerResponse, view: ClusterView): void => {
    // A subscriber that stops reading is dropped rather than buffered without bound.
    if (res.writableLength > 4 * 1024 * 1024) {
      streams.delete(res);
      res.destroy();
      return;
    }
    res.write(`event: view\ndata: ${JSON.stringify(view)}\n\n`);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const hostHeader = (req.headers.host ?? '').toLowerCase();
    const [, port] = /:(\d+)$/.exec(address) ?? [];
    if (hostHeader !== address && hostHeader !== `localhost:${port}`) {
      return text(res, 403, `this listener answers requests for ${address} only`);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(res, 405, 'the cluster view is read-only');
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/' || url.pathname === '/cluster') {
      res.writeHead(302, { location: CLUSTER_PATH });
      res.end();
      return;
    }
    if (url.pathname === '/v1/cluster') {
      if (!latest) return text(res, 503, 'the cluster is starting; try again in a moment');
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(latest));
      return;
    }
    if (url.pathname === '/v1/cluster/events') {
      if (streams.size >= MAX_SUBSCRIBERS) return text(res, 503, `at most ${MAX_SUBSCRIBERS} subscribers`);
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-store',
        connection: 'keep-alive',
      });
      res.write('retry: 1000\n\n');
      streams.add(res);
      res.on('close', () => streams.delete(res));
      if (latest) send(res, latest);
      return;
    }
    if (!url.pathname.startsWith(CLUSTER_PATH))
      return text(res, 404, `no ${url.pathname} here; the view is at ${CLUSTER_PATH}`);
    const file = FILES.get(url.pathname.slice(CLUSTER_PATH.length));
    if (!file) return text(res, 404, 'no such file of the cluster view');
    let body: Buffer;
    try {
      body = await readFile(join(dir, file[0]));
    } catch {
      return text(
        res,
        503,
        `the dashboard is not built in ${dir}: run \`npm run build\` (or \`npm run build:web\`)`,
      );
    }
    res.writeHead(200, {
      'content-type': file[1],
      'content-length': body.length,
      'cache-control': 'no-cache',
      'content-security-policy': CSP,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };

  const server = createApiServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) text(res, 500, 'internal error');
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new UsageError(`--dashboard: ${host}:${port} is in use; give another port or 0`, '--dashboard')
          : err,
      ),
    );
    server.listen(port, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  address = `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  return {
    address,
    url: `http://${address}${CLUSTER_PATH}`,
    publish(view) {
      latest = view;
      for (const res of streams) send(res, view);
    },
    subscribers: () => streams.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of streams) res.end();
        streams.clear();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
