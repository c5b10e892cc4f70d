import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UsageError } from '../errors.js';
import type { MigrationReport } from '../migration/stats.js';
import { exampleReport } from './answer-examples.js';
import { EventHub } from './events.js';
import type { HelloEvent, ProgressEvent } from './live-events.js';
import { readEnergy } from './live-events.js';
import { isLoopback, planDashboard } from './static.js';

const report = (id = 'm1'): MigrationReport => exampleReport({ id, maxBandwidth: 1 << 20 });

/** A guest whose step counter the test moves by hand. */
function gauge() {
  const g = { cap: 0, n: 0, steps: () => [g.n] };
  return g;
}

/** Reads server-sent events from a URL until `until` says stop. */
async function readEvents(
  url: string,
  until: (events: { event: string; data: unknown }[]) => boolean,
): Promise<{ event: string; data: unknown }[]> {
  const ac = new AbortController();
  const res = await fetch(url, { signal: ac.signal });
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const events: { event: string; data: unknown }[] = [];
  let buf = '';
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i = buf.indexOf('\n\n');
    while (i >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event && data) events.push({ event, data: JSON.parse(data) });
      i = buf.indexOf('\n\n');
    }
    if (until(events)) break;
  }
  ac.abort();
  return events;
}

describe('EventHub (GET /v1/events)', () => {
  let server: Server | undefined;
  let hub: EventHub | undefined;
  afterEach(async () => {
    hub?.close();
    server?.closeAllConnections();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  });

  async function serve(h: EventHub): Promise<string> {
    server = createServer((req: IncomingMessage, res: ServerResponse) => h.subscribe(req, res));
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  }

  it('samples progress (throughput, progress rate, hit rate inputs) and replays history to late subscribers', async () => {
    hub = new EventHub(() => ({ agent: 'test' }), { minSampleMs: 0, tickMs: 10_000 });
    const r = report();
    const g = gauge();
    hub.progress(r, g);
    r.status = 'active';
    r.phase = 'precopy';
    r.transferredBytes = 1_000_000;
    r.totalTimeMs = 100;
    r.xbzrle.cacheHits = 3;
    r.xbzrle.cacheMisses = 1;
    r.xbzrle.pageBytes = 8192;
    r.xbzrle.encodedBytes = 192;
    g.n = 500;
    g.cap = 40;
    await new Promise((res) => setTimeout(res, 20));
    hub.progress(r, g);
    const s = hub.samples('m1');
    expect(s).toHaveLength(2);
    expect(s[1]!.throughputMbps).toBeGreaterThan(0);
    expect(s[1]!.stepsPerSec).toBeGreaterThan(0);
    expect(s[1]!).toMatchObject({ cap: 40, cacheHits: 3, cacheMisses: 1, xbzrleSavedBytes: 8000, t: 100 });
    expect(s[1]!.limitMbps).toBeCloseTo(((1 << 20) * 8) / 1e6);

    // A subscriber that arrives now gets the status and both samples, then live progress and the end.
    const url = await serve(hub);
    const got = readEvents(url, (ev) => ev.some((e) => e.event === 'end'));
    // Emit only once the subscriber is connected (a fixed sleep races on a loaded machine).
    while (hub.subscribers === 0) await new Promise((res) => setTimeout(res, 5));
    r.transferredBytes = 2_000_000;
    hub.progress(r, g);
    r.status = 'completed';
    r.phase = 'done';
    hub.end(r);
    const events = await got;
    const hello = events[0]!;
    expect(hello.event).toBe('hello');
    expect((hello.data as HelloEvent).status).toEqual({ agent: 'test' });
    expect((hello.data as HelloEvent).series[0]!.samples).toHaveLength(2);
    const progress = events.filter((e) => e.event === 'progress').map((e) => e.data as ProgressEvent);
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress.at(-1)!.report.status).toBe('completed');
    // After switch-over the guest's progress is the destination's to report.
    expect(progress.at(-1)!.sample.stepsPerSec).toBeNull();
    expect(events.some((e) => e.event === 'status')).toBe(true);
  });

  it('takes live watts from the power meter, labelled measured only when they come from RAPL', () => {
    let rapl: number | null = null;
    const power = { series: () => ({ samples: [{ watts: 130.5, raplWatts: rapl }] }) };
    hub = new EventHub(() => ({}), { minSampleMs: 0, power });
    const r = report();
    hub.progress(r, gauge());
    expect(hub.samples('m1')[0]).toMatchObject({ powerW: 130.5, powerLabel: 'modelled' });
    rapl = 97;
    hub.progress(r, gauge(), true);
    expect(hub.samples('m1')[1]).toMatchObject({ powerW: 97, powerLabel: 'measured' });
    // Without a meter: nothing until the report carries energy.
    const bare = new EventHub(() => ({}), { minSampleMs: 0 });
    bare.progress(report('x'), gauge());
    expect(bare.samples('x')[0]).toMatchObject({ powerW: null, powerLabel: null });
    bare.close();
  });

  it('keeps a bounded history: old samples are thinned, old finished migrations forgotten', () => {
    hub = new EventHub(() => ({}), { minSampleMs: 0, maxSamples: 100, keepMigrations: 2 });
    const g = gauge();
    const r = report('a');
    for (let i = 0; i < 1000; i++) {
      r.totalTimeMs = i;
      hub.progress(r, g, true);
    }
    const s = hub.samples('a');
    expect(s.length).toBeLessThanOrEqual(100);
    expect(s[0]!.t).toBe(0);
    expect(s.at(-1)!.t).toBe(999);
    r.status = 'completed';
    hub.end(r);
    hub.progress(report('b'), g);
    hub.progress(report('c'), g);
    expect(hub.samples('a')).toHaveLength(0);
    expect(hub.samples('c')).toHaveLength(1);
  });

  it('refuses subscribers beyond its limit', async () => {
    hub = new EventHub(() => ({}), { maxClients: 1 });
    const url = await serve(hub);
    const ac = new AbortController();
    const held = await fetch(url, { signal: ac.signal });
    expect(held.status).toBe(200);
    const second = await fetch(url);
    expect(second.status).toBe(503);
    expect(((await second.json()) as { error: { code: string } }).error.code).toBe('RESOURCE_LIMIT');
    ac.abort();
  });
});

describe('where the dashboard may be served', () => {
  it('only on loopback: the page and its listener are plain HTTP', () => {
    expect(planDashboard(undefined, '0.0.0.0')).toEqual({ onAgentPort: false });
    expect(planDashboard(true, '127.0.0.1')).toEqual({ onAgentPort: true });
    expect(planDashboard(true, '::1')).toEqual({ onAgentPort: true });
    expect(() => planDashboard(true, '0.0.0.0')).toThrow(UsageError);
    expect(() => planDashboard(true, '10.0.0.5')).toThrow(/not loopback.*--dashboard PORT/);
    expect(planDashboard('8080', '0.0.0.0')).toEqual({
      onAgentPort: false,
      listen: { host: '127.0.0.1', port: 8080 },
    });
    expect(planDashboard('[::1]:9000', '0.0.0.0').listen).toEqual({ host: '::1', port: 9000 });
    expect(() => planDashboard('0.0.0.0:8080', '127.0.0.1')).toThrow(/not loopback/);
    expect(() => planDashboard('eighty', '127.0.0.1')).toThrow(/not PORT or HOST:PORT/);
    expect(isLoopback('127.8.9.10')).toBe(true);
    expect(isLoopback('localhost')).toBe(true);
    expect(isLoopback('192.168.1.1')).toBe(false);
  });
});

describe('readEnergy', () => {
  it('is undefined without an energy field, and labels every figure modelled or measured', () => {
    expect(readEnergy(report())).toBeUndefined();
    const modelled = {
      ...report(),
      energy: { source: { joules: 400, averageWatts: 125, label: 'modelled' }, sourceMeasured: null },
    };
    expect(readEnergy(modelled)).toEqual({ label: 'modelled', watts: 125, joules: 400 });
    const measured = {
      ...report(),
      energy: {
        source: { joules: 400, averageWatts: 125, label: 'modelled' },
        sourceMeasured: { joules: 390, averageWatts: 121, label: 'measured' },
      },
    };
    expect(readEnergy(measured)).toEqual({ label: 'measured', watts: 121, joules: 390 });
    // Joules alone: watts over the migration's duration.
    expect(readEnergy({ totalTimeMs: 2000, energy: { joules: 300, method: 'rapl' } })).toEqual({
      label: 'measured',
      watts: 150,
      joules: 300,
    });
  });
});

describe('serving the built page', () => {
  it('serves only the bundle files, and says how to build it when missing', async () => {
    const { serveDashboard } = await import('./static.js');
    const dir = mkdtempSync(join(tmpdir(), 'livemig-web-'));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'index.html'), '<!doctype html>');
    const srv = createServer((req, res) => {
      serveDashboard(req, res, new URL(req.url ?? '/', 'http://x'), dir).then((served) => {
        if (!served) {
          res.writeHead(418);
          res.end();
        }
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
    try {
      const page = await fetch(`${base}/dashboard/`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
      expect(await page.text()).toBe('<!doctype html>');
      expect((await fetch(`${base}/dashboard`, { redirect: 'manual' })).status).toBe(308);
      expect((await fetch(`${base}/dashboard/secret.txt`)).status).toBe(404);
      expect((await fetch(`${base}/dashboard/%2e%2e%2fpackage.json`)).status).toBe(404);
      // Names of Object.prototype's members are not files either (they were looked up on a plain object).
      for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty'])
        expect((await fetch(`${base}/dashboard/${name}`)).status).toBe(404);
      expect((await fetch(`${base}/v1/status`)).status).toBe(418);
      const missing = await fetch(`${base}/dashboard/app.js`);
      expect(missing.status).toBe(503);
      expect(await missing.text()).toMatch(/npm run build/);
    } finally {
      srv.closeAllConnections();
      srv.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
