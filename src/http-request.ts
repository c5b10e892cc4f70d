/**
 * One HTTP(S) request on a connection of its own, the body read whole: the agent's client and the power meter's
 * read of another agent's series both use it. A leaf (Node only), so that agent/ and power/ share it without
 * importing each other, and through node:http rather than fetch, whose first use in a process loads and compiles
 * undici (about 20 ms of an agent's main thread).
 *
 * No keep-alive: the agent's HTTP server closes a connection idle for 5 s, and when its event loop stalls for longer
 * than that (an in-process agent during a CPU-heavy migration on a loaded host: stalls of 6 s measured) it closes a
 * kept-alive connection that already carries the client's next request, which then fails with ECONNRESET. A fresh
 * connection per call costs well under a millisecond on the loopback.
 */
import { request as httpRequestRaw } from 'node:http';
import { type Agent as HttpsAgent, request as httpsRequestRaw } from 'node:https';

export interface NodeRequest {
  method: string;
  body?: string;
  /** Sent as `authorization: Bearer`. */
  token?: string;
  /** HTTPS with this agent (its client certificate); plain HTTP without one, unless the URL says https. */
  https?: HttpsAgent;
  /** Abort after this long without an answer; the request fails with `onTimeout()`'s error. */
  timeoutMs?: number;
  onTimeout?: () => Error;
}

export async function nodeRequest(
  url: string,
  r: NodeRequest,
): Promise<{ status: number; ok: boolean; bytes: Buffer }> {
  const auth: Record<string, string> = r.token === undefined ? {} : { authorization: `Bearer ${r.token}` };
  const secure = r.https !== undefined || url.startsWith('https:');
  return new Promise((resolve, reject) => {
    const req = (secure ? httpsRequestRaw : httpRequestRaw)(
      url,
      {
        method: r.method,
        agent: r.https ?? false,
        // Every non-GET request declares JSON (the agent requires it).
        headers:
          r.method === 'GET'
            ? auth
            : {
                ...auth,
                'content-type': 'application/json',
                'content-length': Buffer.byteLength(r.body ?? ''),
              },
        ...(r.timeoutMs === undefined ? {} : { timeout: r.timeoutMs }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          resolve({ status, ok: status >= 200 && status < 300, bytes: Buffer.concat(chunks) });
        });
        res.on('error', reject);
      },
    );
    if (r.timeoutMs !== undefined) {
      req.on('timeout', () =>
        req.destroy(r.onTimeout?.() ?? new Error(`no answer from ${url} in ${r.timeoutMs} ms`)),
      );
    }
    req.on('error', reject);
    req.end(r.body);
  });
}
