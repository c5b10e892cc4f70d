/**
 * The page's token handling (docs/dashboard.md): taken from the URL fragment the agent prints, kept in the tab's
 * sessionStorage, removed from the address bar, sent as `authorization: Bearer` with each call. The browser's
 * objects are stood in for (the browser test, test/dashboard.test.ts, needs Chromium).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LivemigError } from '../../errors.js';
import { exampleReport } from '../answer-examples.js';
import { ApiError, api, apiError, takeToken } from './api.js';

const REPORT = { ...exampleReport({ id: 'm1', xbzrle: false }), status: 'cancelled' };

function browser(hash: string, answer: string = JSON.stringify(REPORT)) {
  const store = new Map<string, string>();
  const replaced: string[] = [];
  const calls: { url: string; init: RequestInit }[] = [];
  vi.stubGlobal('location', { hash, pathname: '/dashboard/', search: '?destination=127.0.0.1%3A7071' });
  vi.stubGlobal('sessionStorage', {
    getItem: (k: string) => store.get(k) ?? null,
    setItem: (k: string, v: string) => void store.set(k, v),
  });
  vi.stubGlobal('history', {
    replaceState: (_s: unknown, _t: string, url: string) => void replaced.push(url),
  });
  vi.stubGlobal('fetch', async (url: string, init: RequestInit) => {
    calls.push({ url, init });
    return new Response(answer, { status: 202 });
  });
  return { store, replaced, calls };
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('the dashboard page and the API token', () => {
  it('takes the token from #token=, keeps it for the tab, clears the address bar and sends it', async () => {
    const b = browser('#token=abc%2Bdef_123');
    expect(takeToken()).toBe('abc+def_123');
    expect(b.replaced).toEqual(['/dashboard/?destination=127.0.0.1%3A7071']);
    await api.cancel('m1');
    expect(b.calls).toHaveLength(1);
    const headers = b.calls[0]!.init.headers as Record<string, string>;
    expect(headers.authorization).toBe('Bearer abc+def_123');
    expect(headers['content-type']).toBe('application/json');
  });

  it('without a token in the address or the tab, sends none and leaves the address alone', async () => {
    const b = browser('');
    expect(takeToken()).toBeUndefined();
    expect(b.replaced).toEqual([]);
    await api.cancel('m1');
    expect((b.calls[0]!.init.headers as Record<string, string>).authorization).toBeUndefined();
  });
});

describe("the page's errors", () => {
  it('checks a successful answer: a body of another shape is PROTOCOL naming the field', async () => {
    expect.assertions(4);
    browser('', JSON.stringify({ id: 'm1', status: 'cancelled' }));
    await expect(api.cancel('m1')).rejects.toMatchObject({ code: 'PROTOCOL', context: { field: 'guestId' } });
    browser('', JSON.stringify({ ...REPORT, status: 'gone' }));
    await expect(api.migration('m1')).rejects.toMatchObject({
      code: 'PROTOCOL',
      context: { field: 'status' },
    });
    browser('', JSON.stringify({ id: 'g1', stopped: 'yes' }));
    await expect(api.stopGuest('g1')).rejects.toBeInstanceOf(ApiError);
    browser('', JSON.stringify(REPORT));
    expect(await api.cancel('m1')).toEqual(REPORT);
  });

  it('keeps a documented code and makes anything else PROTOCOL', () => {
    const busy = apiError(409, { error: { code: 'GUEST_BUSY', message: 'migrating' } });
    expect([busy.code, busy.message, busy.context]).toEqual(['GUEST_BUSY', 'migrating', { status: 409 }]);
    for (const json of [{ error: { code: 'NOPE' } }, { error: 'x' }, undefined, null, 'text']) {
      const e = apiError(502, json);
      expect(e).toBeInstanceOf(ApiError);
      expect(e).toBeInstanceOf(LivemigError);
      expect(e.code).toBe('PROTOCOL');
    }
  });
});
