/**
 * `livemig cluster --dashboard`: the manager's listener (the page, `GET /v1/cluster`, the `view` event stream, read
 * only, loopback only) and the page itself in Debian's headless Chromium during a tiny real run in which a host is
 * killed: host cards with their guests, the dead host, the power curve, the migration timeline, all matching the
 * run's report. Screenshot: test-artifacts/cluster-dashboard.png (and docs/cluster-dashboard.png when missing or
 * LIVEMIG_UPDATE_SCREENSHOTS=1). Without Chromium the browser part is skipped with a message.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { type ClusterView, QUICK_CLUSTER, runCluster, startClusterDashboard } from '../src/cluster/index.js';
import { buildDashboard } from '../src/web/build.js';
import { HAVE_CHROMIUM, launchHeadless, warnWithoutChromium } from './chromium.js';

warnWithoutChromium('cluster dashboard browser test');

function get(
  address: string,
  path: string,
  opts: { method?: string; host?: string } = {},
): Promise<{ status: number; type: string; body: string }> {
  const [host, port] = [
    address.slice(0, address.lastIndexOf(':')),
    Number(address.slice(address.lastIndexOf(':') + 1)),
  ];
  return new Promise((resolve, reject) => {
    const req = request(
      { host, port, path, method: opts.method ?? 'GET', headers: { host: opts.host ?? address } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
          // An event stream never ends: its first view event is enough.
          const at = body.indexOf('event: view');
          if (res.headers['content-type'] === 'text/event-stream' && at >= 0 && body.includes('\n\n', at)) {
            res.destroy();
            resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body });
          }
        });
        res.on('end', () =>
          resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function view(over: Partial<ClusterView> = {}): ClusterView {
  return {
    policy: 'THR-MMT-0.8',
    day: '20110306',
    speed: 300,
    interval: 1,
    intervals: 4,
    periodMs: 1000,
    phase: 'running',
    hosts: [],
    inFlight: [],
    migrations: [],
    power: [],
    killed: [],
    totals: { migrations: 0, completed: 0, failed: 0, lost: 0, running: 0 },
    ...over,
  };
}

describe('the cluster view listener', () => {
  it('serves the latest view and a stream of views, read-only, for its own Host only', async () => {
    await buildDashboard();
    const dash = await startClusterDashboard('127.0.0.1', 0);
    try {
      expect((await get(dash.address, '/v1/cluster')).status).toBe(503);
      dash.publish(view({ interval: 2 }));
      const now = await get(dash.address, '/v1/cluster');
      expect(now.status).toBe(200);
      expect((JSON.parse(now.body) as ClusterView).interval).toBe(2);
      const stream = await get(dash.address, '/v1/cluster/events');
      expect(stream.type).toBe('text/event-stream');
      expect(stream.body).toMatch(/event: view\ndata: \{.*"interval":2/);
      const page = await get(dash.address, '/cluster/');
      expect(page.status).toBe(200);
      expect(page.body).toContain('cluster.js');
      expect((await get(dash.address, '/cluster/../../package.json')).status).toBe(404);
      expect((await get(dash.address, '/v1/cluster', { method: 'POST' })).status).toBe(405);
      // Another Host (a DNS-rebinding page) is refused.
      expect((await get(dash.address, '/v1/cluster', { host: 'evil.example:80' })).status).toBe(403);
    } finally {
      await dash.close();
    }
    await expect(startClusterDashboard('0.0.0.0', 0)).rejects.toThrow(/--dashboard: 0.0.0.0 is not loopback/);
  });
});

describe.skipIf(!HAVE_CHROMIUM)('the cluster view in headless Chromium', () => {
  it('shows hosts, guests, power, migrations and a killed host, as the run reports them', async () => {
    await buildDashboard();
    const dash = await startClusterDashboard('127.0.0.1', 0);
    const browser = await launchHeadless({ width: 1280, height: 900 });
    const { page, errors } = browser;
    try {
      await page.goto(dash.url);
      await expect.poll(() => page.locator('#conn').textContent()).toBe('live');
      let sawRunning = false;
      const r = await runCluster(
        {
          ...QUICK_CLUSTER,
          hosts: 3,
          vms: 8,
          ramMiB: [16, 16],
          durationSec: 30 * 60,
          speed: 300,
          // PABFD leaves host 2 empty at t = 0 (hosts 1 and 0 hold the guests): the run goes on without it.
          killHost: { host: 2, atInterval: 3 },
        },
        (e) => {
          if (e.view) dash.publish(e.view);
          if (e.kind === 'interval' && e.interval?.interval === 2) {
            // Mid-run the page follows: three host cards, the guests on them, an interval under way.
            void page
              .locator('body[data-phase="running"] .host')
              .count()
              .then((n) => {
                sawRunning = n === 3;
              });
          }
        },
      );
      await expect
        .poll(() => page.locator('body').getAttribute('data-phase'), { timeout: 30_000 })
        .toBe('finished');
      expect(sawRunning).toBe(true);
      await expect
        .poll(() => page.locator('body').getAttribute('data-interval'))
        .toBe(String(r.window.intervals));
      // Host cards: one per host; the killed one marked dead and listed with its lost guests.
      expect(await page.locator('.host').count()).toBe(3);
      expect(await page.locator('.host[data-host="2"]').getAttribute('data-state')).toBe('dead');
      expect(await page.locator('#killed li').first().textContent()).toMatch(/^host 2 died at interval 3/);
      expect(r.killed.map((k) => k.host)).toEqual([2]);
      // Each running guest on the card of the host the report says it ended on.
      for (const vm of r.vms.filter((v) => v.state === 'running')) {
        expect(
          await page.locator(`.host[data-host="${vm.finalHost}"] li[data-guest="${vm.guest}"]`).count(),
          vm.guest,
        ).toBe(1);
      }
      expect(await page.locator('.host li').count()).toBe(r.vms.filter((v) => v.state === 'running').length);
      // The power curve has every interval; the timeline and the table every migration.
      expect(
        Number(await page.locator('figure[data-chart="cluster-power"]').getAttribute('data-points')),
      ).toBe(r.intervals.length);
      expect(Number(await page.locator('#timeline svg').getAttribute('data-bars'))).toBe(r.migrations.length);
      expect(await page.locator('#done tbody tr').count()).toBe(r.migrations.length);
      expect(await page.locator('#summary').textContent()).toMatch(
        /^THR-MMT-0\.8 on 20110306 at 300× · interval 6\/6/,
      );
      mkdirSync('test-artifacts', { recursive: true });
      await page.screenshot({ path: 'test-artifacts/cluster-dashboard.png', fullPage: true });
      if (!existsSync('docs/cluster-dashboard.png') || process.env.LIVEMIG_UPDATE_SCREENSHOTS === '1') {
        await page.screenshot({ path: 'docs/cluster-dashboard.png', fullPage: true });
      }
      // Narrow window: one column, nothing scrolls sideways.
      await page.setViewportSize({ width: 390, height: 800 });
      await expect
        .poll(() => page.evaluate('document.documentElement.scrollWidth - window.innerWidth'))
        .toBeLessThanOrEqual(0);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
      await dash.close();
    }
  }, 300_000);
});
