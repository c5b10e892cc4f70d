/**
 * The HTTP target of `npm run fuzz` (short run): raw requests against a live in-process agent and its read-only
 * dashboard listener — every one answered with a well-formed 2xx/3xx/4xx, never a 5xx, a hang or a crash, and the
 * agent still serving at the end. Plus the oracle itself: it does catch a 500, a non-JSON error and a silence.
 */
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { Rng } from '../codec/fuzz.js';
import { checkAnswer, exchange, fuzzHttpApi, fuzzRequest } from './http.js';

describe('HTTP control API fuzz target', () => {
  it('every request gets a well-formed 2xx/3xx/4xx answer, and the agent keeps serving', async () => {
    const c = await fuzzHttpApi({ iterations: 1500, seed: 42 });
    expect(c.failures).toEqual([]);
    expect(c.inputs).toBe(1500);
    // Both paths exercised: requests served, requests refused.
    expect(c.accepted).toBeGreaterThan(50);
    expect(c.rejected).toBeGreaterThan(300);
  }, 180_000);

  it('requests vary in method, target, Host, token and body', () => {
    const rng = new Rng(7);
    const reqs = Array.from({ length: 400 }, () =>
      fuzzRequest(rng, '127.0.0.1:7', 'T'.repeat(43)).bytes.toString('latin1'),
    );
    for (const re of [
      /^POST /,
      /^GET /,
      /^DELETE /,
      /Host: evil\.example/,
      /Bearer T{43}/,
      /Origin: /,
      /\/v1\/guests\/g1\/throttle/,
      /\/dashboard\//,
    ])
      expect(
        reqs.some((r) => re.test(r)),
        String(re),
      ).toBe(true);
  });

  it('the oracle refuses a 5xx, an error without a typed body, a non-JSON answer and silence', async () => {
    const x = (status: number, type: string, body: string, request = 'GET / HTTP/1.1') => ({
      request,
      status,
      headers: { 'content-type': type },
      body: Buffer.from(body),
    });
    expect(checkAnswer(x(500, 'application/json', '{"error":{"code":"INTERNAL","message":"boom"}}'))).toMatch(
      /500/,
    );
    expect(checkAnswer(x(400, 'application/json', '{"oops":1}'))).toMatch(/without \{error/);
    expect(checkAnswer(x(400, 'text/html', '<h1>no</h1>'))).toMatch(/content-type/);
    expect(checkAnswer(x(200, 'application/json', '{'))).toMatch(/not JSON/);
    expect(
      checkAnswer(x(403, 'application/json', '{"error":{"code":"FORBIDDEN","message":"no"}}')),
    ).toBeUndefined();
    const page = 'GET /dashboard/app.js HTTP/1.1';
    const notBuilt = 'the dashboard is not built in x';
    expect(checkAnswer(x(503, 'text/plain; charset=utf-8', notBuilt, page))).toBeUndefined();
    expect(checkAnswer(x(503, 'text/plain; charset=utf-8', notBuilt))).toMatch(/503/);
    // Only the page's own files can be "not built": /dashboard/constructor once was, through Object.prototype.
    const proto = 'GET /dashboard/constructor HTTP/1.1';
    expect(checkAnswer(x(503, 'text/plain; charset=utf-8', notBuilt, proto))).toMatch(/503/);
    expect(checkAnswer(x(404, 'text/plain', 'no dashboard file x', page))).toBeUndefined();
    expect(checkAnswer(x(404, 'text/plain', 'no such thing'))).toMatch(/content-type/);
    expect(
      checkAnswer(x(405, 'text/plain', 'read with GET', 'PATCH /dashboard\\x HTTP/1.1')),
    ).toBeUndefined();
    // A server that never answers.
    const mute = createServer(() => undefined);
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', () => r()));
    const port = (mute.address() as { port: number }).port;
    try {
      await expect(exchange(`127.0.0.1:${port}`, Buffer.from('GET / HTTP/1.1\r\n\r\n'), 300)).rejects.toThrow(
        /no complete answer/,
      );
    } finally {
      mute.close();
    }
  });
});
