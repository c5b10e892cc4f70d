/**
 * Small guests and ready-made runs for in-process migration tests: a 4 MiB guest (1024 pages of 4 KiB, one vCPU
 * thread) starts in tens of milliseconds and migrates in a few.
 */
import { Guest, type GuestConfig } from '../../guest/index.js';
import type { FrameConnection } from '../connection.js';
import { type MigrationOptions, resolveOptions } from '../options.js';
import { newMigrationId, type SourceRun } from '../source/index.js';
import { emptyReport } from '../stats.js';

const MiB = 1024 * 1024;

/** A guest that writes a few hundred pages a second into its first MiB: RAM that is not all zeros, and dirty pages. */
export const SMALL_GUEST: GuestConfig = {
  ramBytes: 4 * MiB,
  workload: { name: 'zipf', params: { workingSetBytes: MiB, writeRate: 400 } },
};

/** Guests made here, destroyed by `destroyTestGuests` (call it in afterEach). */
const made: Guest[] = [];

export async function testGuest(config: GuestConfig = SMALL_GUEST): Promise<Guest> {
  const g = await Guest.create(config);
  made.push(g);
  return g;
}

export async function destroyTestGuests(): Promise<void> {
  await Promise.all(made.splice(0).map((g) => g.destroy().catch(() => undefined)));
}

/**
 * What the agent hands runSource (src/agent/outgoing.ts), for `guest` over `conn`: options resolved as the agent
 * resolves them, unlimited bandwidth and at most three rounds unless `options` says otherwise.
 */
export function sourceRun(
  guest: Guest,
  conn: FrameConnection,
  options: Partial<MigrationOptions> = {},
  extra: Partial<SourceRun> = {},
): SourceRun & { abort: AbortController } {
  const o = resolveOptions({ maxBandwidth: 0, maxRounds: 3, ...options }, undefined, guest.ram.bytes);
  const abort = new AbortController();
  const report = emptyReport({
    id: newMigrationId(),
    guestId: 'g1',
    strategy: o.strategy,
    source: 'link:a',
    destination: 'link:b',
    verify: o.verify,
    ramBytes: guest.ram.bytes,
    pageSize: guest.ram.pageSize,
    downtimeLimitMs: o.downtimeLimitMs,
    xbzrle: o.xbzrle,
    xbzrleCacheBytes: o.xbzrleCacheBytes,
    cacheWays: o.cacheWays,
    cacheSizing: o.cacheSizing,
    pageOrder: o.pageOrder,
    compress: o.compress,
    maxBandwidth: o.maxBandwidth,
  });
  return { guest, guestId: 'g1', conn, options: o, report, signal: abort.signal, abort, ...extra };
}

/** Pages where two RAM images differ (empty: byte for byte equal). */
export function differingPages(a: Uint8Array, b: Uint8Array, pageSize: number): number[] {
  const out: number[] = [];
  const n = Math.max(a.length, b.length) / pageSize;
  for (let p = 0; p < n; p++) {
    const x = a.subarray(p * pageSize, (p + 1) * pageSize);
    const y = b.subarray(p * pageSize, (p + 1) * pageSize);
    if (Buffer.compare(x, y) !== 0) out.push(p);
  }
  return out;
}

/** A guest's whole RAM as one buffer (a copy). */
export function ramImage(guest: Guest): Buffer {
  const out = Buffer.alloc(guest.ram.bytes);
  for (let p = 0; p < guest.ram.pageCount; p++) out.set(guest.ram.page(p), p * guest.ram.pageSize);
  return out;
}
