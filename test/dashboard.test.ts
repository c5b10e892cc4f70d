/**
 * The dashboard end to end, in a real browser: Debian's Chromium driven by playwright-core (never a browser
 * download). Two agents as child processes; from the page, by keyboard, a guest is started, a migration is started
 * and cancelled, another runs to completion; the charts must have drawn data and the report must say verified.
 * Screenshots go to test-artifacts/ (and docs/dashboard.png when missing or LIVEMIG_UPDATE_SCREENSHOTS=1).
 */
import { existsSync, mkdirSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentClient } from '../src/agent/index.js';
import type { ChildAgent } from '../src/agent/spawn.js';
import { buildDashboard } from '../src/web/build.js';
import { HAVE_CHROMIUM, type HeadlessBrowser, launchHeadless, warnWithoutChromium } from './chromium.js';
import { childAgent } from './helpers.js';

warnWithoutChromium('dashboard browser test');

describe.skipIf(!HAVE_CHROMIUM)('dashboard in headless Chromium', () => {
  let src: { child: ChildAgent; client: AgentClient };
  let dst: { child: ChildAgent; client: AgentClient };
  let browser: HeadlessBrowser;
  let page: Page;

  beforeAll(async () => {
    // The agents serve dist/web/public; build it here so the test does not depend on an earlier `npm run build`.
    await buildDashboard();
    [src, dst] = await Promise.all([childAgent(['--dashboard']), childAgent()]);
    browser = await launchHeadless({ width: 1280, height: 800 });
    page = browser.page;
  });

  afterAll(async () => {
    await browser?.close();
    await Promise.all([src?.child.stop(), dst?.child.stop()]);
  });

  const field = (key: string) => page.locator(`#summary [data-field="${key}"]`);
  const points = async (chart: string) =>
    Number(await page.locator(`figure[data-chart="${chart}"]`).getAttribute('data-points'));

  it('starts a guest, cancels one migration and completes another, all from the page', async () => {
    await page.goto(`http://${src.child.address}/dashboard/?destination=${dst.child.address}`);
    await expect.poll(() => page.locator('#conn').textContent()).toBe('live');

    // Start a guest with the keyboard only: type into the form, Enter submits it.
    await page.locator('#start-form [name="id"]').focus();
    await page.keyboard.type('web');
    await page.locator('#start-form [name="ram"]').fill('64MiB');
    await page.locator('#start-form [name="writeRate"]').fill('3000');
    await page.locator('#start-form [name="ram"]').press('Enter');
    const row = page.locator('#guests tbody tr[data-key="web"]');
    await row.waitFor({ timeout: 20_000 });
    expect(await src.client.guests()).toEqual([expect.objectContaining({ id: 'web', status: 'running' })]);

    // A migration throttled to 1 MiB/s (64 s for 64 MiB) is cancelled from the page; the guest stays here.
    const mig = page.locator('#migrate-form');
    await mig.locator('[name="guest"]').selectOption('web');
    expect(await mig.locator('[name="destination"]').inputValue()).toBe(dst.child.address);
    await mig.locator('[name="bandwidth"]').fill('1MiB');
    await mig.locator('button[type="submit"]').press('Enter');
    await expect.poll(() => field('status').textContent(), { timeout: 20_000 }).toBe('active');
    await expect.poll(() => points('throughput'), { timeout: 20_000 }).toBeGreaterThanOrEqual(3);
    await page.locator('#cancel').press('Enter');
    await expect.poll(() => field('status').textContent(), { timeout: 20_000 }).toBe('cancelled');
    await expect
      .poll(async () => (await src.client.guest('web')).status, { timeout: 20_000 })
      .toBe('running');

    // Now a migration that completes: XBZRLE, 32 MiB/s, so it lasts a few seconds and the charts fill.
    await mig.locator('[name="guest"]').selectOption('web');
    await mig.locator('[name="bandwidth"]').fill('32MiB');
    await mig.locator('[name="xbzrle"]').press('Space');
    expect(await mig.locator('[name="xbzrle"]').isChecked()).toBe(true);
    await mig.locator('[name="cache"]').fill('16MiB');
    await mig.locator('button[type="submit"]').press('Enter');
    await expect.poll(() => field('status').textContent(), { timeout: 90_000 }).toBe('completed');
    await expect.poll(() => field('verified').textContent()).toBe('verified');
    expect((await dst.client.guests()).map((g) => g.id)).toEqual(['web']);

    // The charts received data: time series and per-round rows.
    for (const chart of ['throughput', 'downtime', 'transfer', 'xbzrle', 'guest']) {
      expect(await points(chart), chart).toBeGreaterThanOrEqual(3);
    }
    await expect.poll(() => points('rounds')).toBeGreaterThanOrEqual(1);
    // Host power from the agent's meter, labelled (modelled here: this machine has no RAPL).
    expect(await points('power')).toBeGreaterThanOrEqual(3);
    // Energy per migration, both hosts, once the report's energy is in (it comes with the migration's end event).
    await expect
      .poll(() => page.locator('figure[data-chart="power"] figcaption').textContent(), { timeout: 20_000 })
      .toMatch(
        /^Source host power \((modelled|measured)\) · energy per migration \(modelled, .+\): source \d+ J, \d+ J\/GiB moved; destination (\d+ J, \d+ J\/GiB|not measured)$/,
      );
    // "W now" while migrating; the mean arrives with the migration's end event, which can trail its status.
    await expect
      .poll(() => field('power').textContent(), { timeout: 20_000 })
      .toMatch(/W mean \((modelled|measured)\)/);
    const latest = await page.locator('figure[data-chart="transfer"] .latest').textContent();
    expect(latest).toMatch(/transferred: [1-9][\d.]* MiB/);
    // Units on the axes.
    const axisLabels = await page.locator('figure[data-chart="throughput"] .u-label').allTextContents();
    expect(axisLabels.join(' | ')).toContain('Mbit/s');

    // Compare the two runs side by side (checkboxes ticked with the keyboard).
    const boxes = page.locator('#finished tbody input[type="checkbox"]');
    expect(await boxes.count()).toBe(2);
    for (const b of await boxes.all()) await b.press('Space');
    const compare = page.locator('#compare table[data-compare="2"]');
    await compare.waitFor();
    const text = await compare.textContent();
    expect(text).toContain('cancelled');
    expect(text).toContain('verified');

    // Opened afresh, the page has only the status's summaries of the two: it fetches the reports it shows.
    await page.reload();
    await expect.poll(() => page.locator('#conn').textContent()).toBe('live');
    await expect.poll(() => boxes.count(), { timeout: 20_000 }).toBe(2);
    await expect.poll(() => field('verified').textContent(), { timeout: 20_000 }).toBe('verified');
    await expect
      .poll(() => field('power').textContent(), { timeout: 20_000 })
      .toMatch(/W mean \((modelled|measured)\)/);
    await expect.poll(() => points('rounds'), { timeout: 20_000 }).toBeGreaterThanOrEqual(1);
    for (const b of await boxes.all()) await b.press('Space');
    await compare.waitFor({ timeout: 20_000 });
    expect(await compare.textContent()).toContain('XBZRLE cache hit rate');
    expect(await compare.textContent()).toContain('cancelled');

    mkdirSync('test-artifacts', { recursive: true });
    await page.locator('#live').scrollIntoViewIfNeeded();
    await page.screenshot({ path: 'test-artifacts/dashboard.png', fullPage: true });
    if (!existsSync('docs/dashboard.png') || process.env.LIVEMIG_UPDATE_SCREENSHOTS === '1') {
      await page.screenshot({ path: 'docs/dashboard.png', fullPage: true });
    }

    // A narrow window: everything reflows into one column, nothing scrolls sideways.
    await page.setViewportSize({ width: 390, height: 800 });
    await expect
      .poll(() => page.evaluate('document.documentElement.scrollWidth - window.innerWidth'))
      .toBeLessThanOrEqual(0);
    await page.screenshot({ path: 'test-artifacts/dashboard-narrow.png', fullPage: true });

    expect(browser.errors).toEqual([]);
  }, 180_000);
});
