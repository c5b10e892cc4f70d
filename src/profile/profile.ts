/**
 * Measuring a guest's profile (schema.ts): sync its dirty log every few milliseconds for a few seconds, then derive
 * the working-set curve, the hot set, the zero pages and XBZRLE's compression on resent pages. Two sources: a guest
 * run here, in this process (its RAM is readable: zero pages and XBZRLE are measured), or a guest already running
 * on an agent (only its dirty log is synced, through POST /v1/guests/:id/dirty-log).
 */

import { encodeXbzrleInto, isZeroPage } from '../codec/index.js';
import { UsageError } from '../errors.js';
import { type DirtyLogSync, dirtyPagesOf } from '../guest/dirty-log-sync.js';
import { Guest, type GuestConfig } from '../guest/index.js';
import { measureCacheHits } from './cache-hit.js';
import { type GuestProfile, PROFILE_VERSION } from './schema.js';
import { byPage, distinctPagesPerWindow, hotSet, logSpacedWindows } from './working-set.js';

export interface ProfileOptions {
  /** How long to watch, ms (default 3000). */
  durationMs?: number;
  /** Step between dirty-log syncs, ms (default 5). */
  tickMs?: number;
  /** Let the guest run this long before watching, ms (default 200). */
  warmupMs?: number;
  /** Pages sampled for XBZRLE (default 2048). */
  xbzrleSample?: number;
}

/** Where the dirty log and (optionally) the pages come from. */
interface Subject {
  readonly pages: number;
  readonly pageSize: number;
  sync(): Promise<{ at: number; pages: Uint32Array }>;
  /** A copy of page p's current contents (in-process only). */
  readPage?(p: number): Uint8Array;
  /** Fraction of RAM pages that are zero now (in-process only). */
  zeroFraction?(): number;
  /** The non-zero pages now, ascending (in-process only). */
  nonZeroPages?(): Uint32Array;
}

const LAGS_MS = [20, 100, 500, 2000, 10000];

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function checked(o: ProfileOptions): Required<ProfileOptions> {
  const full = { durationMs: 3000, tickMs: 5, warmupMs: 200, xbzrleSample: 2048, ...o };
  if (!(full.durationMs >= 100 && full.durationMs <= 600_000)) {
    throw new UsageError(
      `profile duration must be from 100 ms to 10 min (got ${full.durationMs} ms)`,
      '--duration',
    );
  }
  if (!(full.tickMs >= 1 && full.tickMs <= full.durationMs / 10)) {
    throw new UsageError(
      `profile tick must be from 1 ms to a tenth of the duration (got ${full.tickMs} ms)`,
      '--tick',
    );
  }
  return full;
}

async function watch(
  s: Subject,
  o: Required<ProfileOptions>,
  source: GuestProfile['source'],
): Promise<GuestProfile> {
  await s.sync(); // start clean: what was written before the watch is not in the first tick
  // Zero pages at the start and at the end of the watch: a program that allocates or frees memory changes them.
  const zeroAtStart = s.zeroFraction?.();
  const nonZeroAtStart = s.nonZeroPages?.();
  const ticks: Uint32Array[] = [];
  const t0 = (await s.sync()).at;
  // XBZRLE on resent pages as the engine meets them: a sample of the non-zero pages (every k-th, so every region of
  // RAM is in it) is copied at a moment t, as round 1 caches them; at t + lag, each sampled page dirtied since t is
  // encoded against its copy (a cache hit after a round of that length). Pages dirtied once (an allocation frontier)
  // count as much as hot ones, as they do in a round's dirty set. Then new copies, and again while the watch runs.
  const acc = LAGS_MS.map(() => ({ n: 0, unchanged: 0, overflow: 0, encoded: 0 }));
  const lags = LAGS_MS.filter((l) => l <= o.durationMs / 2);
  const sample = s.readPage && nonZeroAtStart ? everyKth(nonZeroAtStart, o.xbzrleSample) : new Uint32Array(0);
  const slot = new Map<number, number>();
  sample.forEach((p, i) => {
    slot.set(p, i);
  });
  let cycle: { at: number; copies: Uint8Array[]; dirty: Uint8Array; next: number } | undefined;
  let last = t0;
  const out = new Uint8Array(s.pageSize * 2 + 16);
  while (last - t0 < o.durationMs) {
    await sleep(o.tickMs);
    const { at, pages } = await s.sync();
    ticks.push(pages);
    last = at;
    if (!s.readPage || sample.length === 0 || lags.length === 0) continue;
    if (!cycle) {
      const read = s.readPage;
      cycle = {
        at,
        copies: Array.from(sample, (p) => read(p)),
        dirty: new Uint8Array(sample.length),
        next: 0,
      };
      continue;
    }
    for (let i = 0; i < pages.length; i++) {
      const k = slot.get(pages[i]!);
      if (k !== undefined) cycle.dirty[k] = 1;
    }
    while (cycle.next < lags.length && at - cycle.at >= lags[cycle.next]!) {
      const a = acc[cycle.next]!;
      for (let k = 0; k < sample.length; k++) {
        if (!cycle.dirty[k]) continue;
        const len = encodeXbzrleInto(cycle.copies[k]!, s.readPage(sample[k]!), out, s.pageSize);
        a.n++;
        if (len === 0) a.unchanged++;
        else if (len < 0) a.overflow++;
        else a.encoded += len;
      }
      cycle.next++;
    }
    if (cycle.next === lags.length) cycle = undefined;
  }
  const xbz: GuestProfile['xbzrle'] = [];
  lags.forEach((lagMs, i) => {
    const a = acc[i]!;
    const sent = a.n - a.unchanged - a.overflow;
    if (a.n > 0) {
      xbz.push({
        lagMs,
        pages: a.n,
        unchanged: a.unchanged / a.n,
        overflow: a.overflow / a.n,
        ratio: sent > 0 ? Math.min(1, a.encoded / (sent * s.pageSize)) : 0,
      });
    }
  });
  const tickMs = (last - t0) / ticks.length;
  const pt = byPage({ ticks, pages: s.pages });
  const ks = logSpacedWindows(ticks.length);
  const w = distinctPagesPerWindow(pt, ticks.length, ks);
  let events = 0;
  const written = new Map<number, number>();
  for (const t of ticks) {
    events += t.length;
    if (nonZeroAtStart) for (const p of t) written.set(p, (written.get(p) ?? 0) + 1);
  }
  return {
    kind: 'livemig-profile',
    version: PROFILE_VERSION,
    source,
    measuredAt: new Date().toISOString(),
    pageSize: s.pageSize,
    ramPages: s.pages,
    durationMs: last - t0,
    tickMs,
    workingSet: ks.map((k, i) => ({ ms: k * tickMs, pages: w[i]! })),
    pagesWritten: pt.start.length - 1 - countEmpty(pt.start),
    dirtyPagesPerSec: (events * 1000) / (last - t0),
    hotSet: hotSet(pt, [0.5, 0.9, 0.99]),
    zeroFraction: s.zeroFraction && zeroAtStart !== undefined ? (zeroAtStart + s.zeroFraction()) / 2 : null,
    ...(zeroAtStart !== undefined ? { zeroFractionStart: zeroAtStart } : {}),
    xbzrle: xbz,
    ...(nonZeroAtStart ? { cacheHit: measureCacheHits(nonZeroAtStart, written) } : {}),
  };
}

/** At most `n` of `pages`, evenly spaced. */
function everyKth(pages: Uint32Array, n: number): Uint32Array {
  if (pages.length <= n) return pages;
  const step = pages.length / n;
  return Uint32Array.from({ length: n }, (_, i) => pages[Math.floor(i * step)]!);
}

function countEmpty(start: Uint32Array): number {
  let n = 0;
  for (let p = 0; p + 1 < start.length; p++) if (start[p + 1] === start[p]) n++;
  return n;
}

/** Starts `config` here, lets it warm up, profiles it and destroys it. */
export async function profileGuest(config: GuestConfig, opts: ProfileOptions = {}): Promise<GuestProfile> {
  const o = checked(opts);
  const guest = await Guest.create(config);
  try {
    guest.resume();
    await sleep(o.warmupMs);
    const ram = guest.ram;
    const subject: Subject = {
      pages: ram.pageCount,
      pageSize: ram.pageSize,
      sync: async () => ({ pages: guest.dirtyLog.sync(), at: performance.now() }),
      readPage: (p) => ram.page(p).slice(),
      zeroFraction: () => {
        let z = 0;
        for (let p = 0; p < ram.pageCount; p++) if (isZeroPage(ram.page(p))) z++;
        return z / ram.pageCount;
      },
      nonZeroPages: () => {
        const out: number[] = [];
        for (let p = 0; p < ram.pageCount; p++) if (!isZeroPage(ram.page(p))) out.push(p);
        return Uint32Array.from(out);
      },
    };
    const name = guest.config.workload.name;
    const file = guest.config.workload.params.traceFile;
    const profile = await watch(subject, o, { workload: name === 'trace' && file ? `trace:${file}` : name });
    const carried = guest.trace?.length ?? 0;
    return {
      ...profile,
      incomingMs: await incomingMs(config),
      ...(carried > 0 ? { carriedBytes: carried } : {}),
    };
  } finally {
    await guest.destroy();
  }
}

/**
 * Time for a destination's copy of this guest to be ready (Guest.beginIncoming): the fastest of three, since an
 * agent that has started guests before has its worker code loaded and compiled (the first start in a process pays
 * for that once).
 */
async function incomingMs(config: GuestConfig): Promise<number> {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    const { guest, ready } = Guest.beginIncoming(config);
    try {
      await ready;
      best = Math.min(best, performance.now() - t);
    } finally {
      await guest.destroy();
    }
  }
  return best;
}

/**
 * What profileAgentGuest needs of an agent's client (livemig/agent's AgentClient): the guest's config and its
 * dirty-log sync. Declared here so that profile/ does not import agent/ (docs/architecture.md).
 */
export interface DirtyLogClient {
  readonly base: string;
  guest(id: string): Promise<{ config: GuestConfig }>;
  dirtyLog(id: string): Promise<DirtyLogSync>;
}

/** Profiles guest `id` running on the agent behind `client`: syncs its dirty log, reads nothing else. */
export async function profileAgentGuest(
  client: DirtyLogClient,
  id: string,
  opts: ProfileOptions = {},
): Promise<GuestProfile> {
  const o = checked({ warmupMs: 0, ...opts });
  const info = await client.guest(id);
  const pageSize = info.config.pageSize ?? 4096;
  const pages = Math.floor(info.config.ramBytes / pageSize);
  const subject: Subject = {
    pages,
    pageSize,
    sync: async () => {
      const s = await client.dirtyLog(id);
      return { at: s.at, pages: dirtyPagesOf(s, pages) };
    },
  };
  const name = info.config.workload.name;
  return watch(subject, o, { workload: String(name), agent: client.base, guest: id });
}
