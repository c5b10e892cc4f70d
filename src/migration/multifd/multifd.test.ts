/**
 * Parallel channels at the engine level: the page → channel map, and the capability refusal a source gets from a
 * destination that does not grant MULTIFD (an older peer, or one without a channel registry): a clear CAPABILITY
 * error saying to use --multifd-channels 1, with the guest running on the source as before.
 */
import { connect, createServer, type Socket } from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Guest } from '../../guest/index.js';
import { FrameConnection } from '../connection.js';
import { DEFAULT_DESTINATION_LIMITS, runDestination } from '../destination.js';
import { type MigrationOptions, resolveOptions } from '../options.js';
import { MAX_HELLO_PAYLOAD } from '../protocol/index.js';
import { TokenBucket } from '../ratelimit.js';
import { newMigrationId, runSource } from '../source/index.js';
import { emptyReport } from '../stats.js';
import { ChannelRegistry } from './registry.js';
import { channelOf, SHARD_PAGES, shardPages } from './shard.js';

const MiB = 1 << 20;

describe('shard: the channel a page travels on', () => {
  it('splits any ascending page list into ascending per-channel lists, each page on its own channel', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 100_000 }), { maxLength: 500 }),
        fc.integer({ min: 2, max: 16 }),
        (raw, n) => {
          const pages = Uint32Array.from(raw.sort((a, b) => a - b));
          const shares = shardPages(pages, n);
          expect(shares).toHaveLength(n);
          expect(shares.reduce((a, s) => a + s.length, 0)).toBe(pages.length);
          shares.forEach((share, c) => {
            for (let i = 0; i < share.length; i++) {
              expect(channelOf(share[i]!, n)).toBe(c);
              if (i > 0) expect(share[i]!).toBeGreaterThan(share[i - 1]!);
            }
          });
        },
      ),
    );
  });

  it('keeps runs of SHARD_PAGES pages together and spreads runs round-robin', () => {
    expect(channelOf(0, 4)).toBe(0);
    expect(channelOf(SHARD_PAGES - 1, 4)).toBe(0);
    expect(channelOf(SHARD_PAGES, 4)).toBe(1);
    expect(channelOf(4 * SHARD_PAGES, 4)).toBe(0);
  });
});

const guests: Guest[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const g of guests.splice(0)) await g.destroy();
});

async function dial(port: number): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port });
  sockets.push(socket);
  await new Promise((resolve) => socket.once('connect', resolve));
  return socket;
}

function newReport(options: MigrationOptions, ramBytes: number, port: number) {
  return emptyReport({
    id: newMigrationId(),
    guestId: 'g',
    strategy: options.strategy,
    source: 'test',
    destination: `127.0.0.1:${port}`,
    verify: options.verify,
    ramBytes,
    pageSize: 4096,
    downtimeLimitMs: options.downtimeLimitMs,
    xbzrle: options.xbzrle,
    xbzrleCacheBytes: options.xbzrleCacheBytes,
    cacheWays: options.cacheWays,
    cacheSizing: options.cacheSizing,
    pageOrder: options.pageOrder,
    compress: options.compress,
    maxBandwidth: options.maxBandwidth,
  });
}

describe('a long round on the channels', () => {
  it('the silent main connection is not idle while channels carry pages (destination idle timeout 4 s, round 1 ≈ 10 s)', async () => {
    const config = {
      ramBytes: 32 * MiB,
      seed: 2,
      workload: { name: 'gap' as const, params: { workingSetBytes: 24 * MiB, writeRate: 200 } },
    };
    const guest = await Guest.create(config);
    guests.push(guest);
    guest.resume();
    const channels = new ChannelRegistry();
    let incoming: Guest | undefined;
    const server = createServer((socket) => {
      sockets.push(socket);
      void runDestination(
        new FrameConnection(socket, { expectPreamble: true, maxPayload: MAX_HELLO_PAYLOAD }),
        {
          onGuestResumed: (_id, g) => {
            incoming = g;
            guests.push(g);
          },
          channels,
        },
        { ...DEFAULT_DESTINATION_LIMITS, idleTimeoutMs: 4000 },
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    // 24 MiB of data at 2.5 MiB/s (about 10 s), one budget for the main connection and both channels.
    const options = resolveOptions(
      { multifdChannels: 2, maxBandwidth: 2.5 * MiB, maxRounds: 3 },
      undefined,
      config.ramBytes,
    );
    const bucket = new TokenBucket(options.maxBandwidth);
    const r = await runSource({
      guest,
      guestId: 'g',
      conn: new FrameConnection(await dial(port), { pacer: bucket }),
      options,
      report: newReport(options, config.ramBytes, port),
      signal: new AbortController().signal,
      openChannel: async () => new FrameConnection(await dial(port), { pacer: bucket }),
    });
    server.close();
    expect(r.error).toBeUndefined();
    expect(r.status).toBe('completed');
    expect(r.verified).toBe(true);
    expect(r.perRound[0]!.durationMs).toBeGreaterThan(4000);
    // One budget for all connections: round 1's wire rate stays at the limit (two budgets would allow twice it).
    const r1 = r.perRound[0]!;
    expect((r1.bytes * 1000) / r1.durationMs).toBeLessThan(options.maxBandwidth * 1.2);
    expect(r.multifd?.bytes.every((b) => b > 4 * MiB)).toBe(true);
    // The destination adopts the guest a timer turn after RESUMED (src/paused-window.ts, yieldCore), so after the
    // source's runSource may have returned.
    await vi.waitFor(() => expect(incoming?.running).toBe(true));
  }, 120_000);
});

describe('capability negotiation', () => {
  it('a destination that does not grant MULTIFD: CAPABILITY, "use --multifd-channels 1", the guest runs on', async () => {
    const config = {
      ramBytes: 4 * MiB,
      seed: 1,
      workload: { name: 'gap' as const, params: { workingSetBytes: 2 * MiB, writeRate: 500 } },
    };
    const guest = await Guest.create(config);
    guests.push(guest);
    guest.resume();
    // A destination without a channel registry (as an older agent): it does not grant the capability.
    const server = createServer((socket) => {
      sockets.push(socket);
      void runDestination(new FrameConnection(socket, { expectPreamble: true }), {
        onGuestResumed: () => undefined,
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const socket = await dial(port);
    const options = resolveOptions({ multifdChannels: 2, maxBandwidth: 0 }, undefined, config.ramBytes);
    let dialled = 0;
    const report = await runSource({
      guest,
      guestId: 'g',
      conn: new FrameConnection(socket),
      options,
      report: newReport(options, config.ramBytes, port),
      signal: new AbortController().signal,
      openChannel: () => {
        dialled++;
        throw new Error('no channel may be dialled when the destination refused the capability');
      },
    });
    server.close();
    expect(report.status).toBe('failed');
    expect(report.error?.code).toBe('CAPABILITY');
    expect(report.error?.message).toMatch(/--multifd-channels 1/);
    expect(dialled).toBe(0);
    expect(guest.running).toBe(true);
  }, 60_000);
});
