/**
 * Debian's headless Chromium for the browser tests, driven by playwright-core (never a browser download): where it
 * is, whether it is there, and a persistent context with a fresh profile that collects the page's errors.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';

export const CHROMIUM = process.env.LIVEMIG_CHROMIUM ?? '/usr/bin/chromium';
export const HAVE_CHROMIUM = existsSync(CHROMIUM);

// Why these flags (docs/machine.md): no sandbox (root in a container), no GPU, nothing that phones home.
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Says once, at collection, that a browser test is skipped and how to run it. */
export function warnWithoutChromium(what: string): void {
  if (HAVE_CHROMIUM) return;
  console.warn(
    `${what} SKIPPED: no Chromium at ${CHROMIUM}. Install Debian's package ` +
      '(apt-get install -y --no-install-recommends chromium; .ci/run does this) or set LIVEMIG_CHROMIUM.',
  );
}

export interface HeadlessBrowser {
  ctx: BrowserContext;
  page: Page;
  /** Uncaught exceptions and console errors of the page, with their source where Chromium gives one. */
  errors: string[];
  close(): Promise<void>;
}

export async function launchHeadless(viewport: { width: number; height: number }): Promise<HeadlessBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'livemig-chromium-'));
  let ctx: BrowserContext;
  try {
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport,
    });
  } catch (e) {
    rmSync(profile, { recursive: true, force: true });
    throw e;
  }
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`${m.text()} (${m.location().url})`);
  });
  return {
    ctx,
    page,
    errors,
    async close() {
      await ctx.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
