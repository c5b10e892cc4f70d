import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MigrationError } from '../errors.js';
import { migrateQemu } from './migrate.js';
import { QmpClient, type QmpMigrationInfo } from './qmp.js';

const GREETING = {
  QMP: { version: { qemu: { major: 10, minor: 0, micro: 2 }, package: '' }, capabilities: [] },
};
const servers: Server[] = [];
const clients: QmpClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const s of servers.splice(0)) s.close();
});

/** A scripted QEMU: records every command, answers query-migrate from `script` (the last entry repeats). */
async function fakeQemu(
  script: QmpMigrationInfo[],
): Promise<{ client: QmpClient; log: { execute: string; arguments?: unknown }[] }> {
  const path = join(mkdtempSync(join(tmpdir(), 'fakeqemu-')), 'qmp.sock');
  const log: { execute: string; arguments?: unknown }[] = [];
  let step = 0;
  const server = createServer((sock) => {
    sock.write(`${JSON.stringify(GREETING)}\r\n`);
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const msg = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        log.push({ execute: msg.execute, arguments: msg.arguments });
        let ret: unknown = {};
        if (msg.execute === 'query-migrate') ret = script[Math.min(step++, script.length - 1)];
        if (msg.execute === 'query-migrate-parameters')
          ret = { 'downtime-limit': 300, 'max-bandwidth': 134217728, 'xbzrle-cache-size': 67108864 };
        sock.write(`${JSON.stringify({ return: ret, id: msg.id })}\r\n`);
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  servers.push(server);
  const client = await QmpClient.connect({ path });
  clients.push(client);
  return { client, log };
}

const MiB = 2 ** 20;
function ram(sync: number, transferredMiB: number, remainingMiB: number) {
  return {
    transferred: transferredMiB * MiB,
    remaining: remainingMiB * MiB,
    total: 256 * MiB,
    duplicate: 0,
    normal: (transferredMiB * MiB) / 4096,
    'normal-bytes': transferredMiB * MiB,
    'dirty-pages-rate': 2000,
    mbps: 268,
    'dirty-sync-count': sync,
    'postcopy-requests': 0,
    'page-size': 4096,
  };
}

describe('migrateQemu', () => {
  it('sets capabilities and parameters, polls to completion and maps query-migrate into the report', async () => {
    const src = await fakeQemu([
      { status: 'active', ram: ram(1, 10, 200) },
      { status: 'active', ram: ram(2, 120, 20) },
      { status: 'active', ram: ram(3, 140, 2) },
      {
        status: 'completed',
        ram: ram(4, 150, 0),
        'total-time': 4321,
        downtime: 12,
        'setup-time': 3,
        'xbzrle-cache': {
          'cache-size': 32 * MiB,
          bytes: 1000,
          pages: 50,
          'cache-miss': 7,
          'cache-miss-rate': 0.1,
          overflow: 1,
        },
      },
    ]);
    const dst = await fakeQemu([{ status: 'active' }]);
    const r = await migrateQemu(src.client, dst.client, {
      uri: 'tcp:127.0.0.1:1',
      xbzrle: true,
      xbzrleCacheBytes: 32 * MiB,
      downtimeLimitMs: 50,
      maxBandwidth: 32 * MiB,
      pollMs: 1,
    });
    const caps = src.log.find((m) => m.execute === 'migrate-set-capabilities')?.arguments;
    expect(caps).toEqual({
      capabilities: [
        { capability: 'xbzrle', state: true },
        { capability: 'auto-converge', state: false },
        { capability: 'postcopy-ram', state: false },
      ],
    });
    expect(src.log.find((m) => m.execute === 'migrate-set-parameters')?.arguments).toEqual({
      'downtime-limit': 50,
      'max-bandwidth': 32 * MiB,
      'xbzrle-cache-size': 32 * MiB,
    });
    expect(src.log.find((m) => m.execute === 'migrate')?.arguments).toEqual({ uri: 'tcp:127.0.0.1:1' });
    expect(dst.log.some((m) => m.execute === 'migrate-set-capabilities')).toBe(false);
    expect(r.status).toBe('completed');
    expect(r.totalTimeMs).toBe(4321);
    expect(r.downtimeMs).toBe(12);
    expect(r.rounds).toBe(4);
    expect(r.transferredBytes).toBe(150 * MiB);
    expect(r.xbzrle).toMatchObject({
      enabled: true,
      pages: 50,
      encodedBytes: 1000,
      cacheMisses: 7,
      overflows: 1,
    });
    expect(r.roundSamples.map((s) => [s.round, s.bytesSent / MiB, s.dirtyPages])).toEqual([
      [1, 110, 5120],
      [2, 20, 512],
      [3, 10, 0],
    ]);
    expect(r.stalled).toBe(false);
  });

  it('post-copy: postcopy-ram on both sides, migrate-start-postcopy once active', async () => {
    const src = await fakeQemu([
      { status: 'setup' },
      { status: 'active', ram: ram(1, 1, 250) },
      { status: 'postcopy-active', ram: ram(2, 100, 100) },
      { status: 'completed', ram: ram(2, 200, 0) },
    ]);
    const dst = await fakeQemu([{ status: 'active' }]);
    const r = await migrateQemu(src.client, dst.client, { uri: 'tcp:x:1', strategy: 'post-copy', pollMs: 1 });
    expect(dst.log.find((m) => m.execute === 'migrate-set-capabilities')?.arguments).toEqual({
      capabilities: [{ capability: 'postcopy-ram', state: true }],
    });
    expect(src.log.filter((m) => m.execute === 'migrate-start-postcopy')).toHaveLength(1);
    expect(r.switchedToPostcopy).toBe(true);
    expect(r.postcopyReason).toBe('strategy');
  });

  it('stall detection: a dirty set that stops shrinking is cancelled with STALLED', async () => {
    const script: QmpMigrationInfo[] = [{ status: 'active', ram: ram(1, 10, 200) }];
    for (let i = 2; i < 12; i++) script.push({ status: 'active', ram: ram(i, 100 + 10 * i, 60 + (i % 2)) });
    const src = await fakeQemu(script);
    const dst = await fakeQemu([{ status: 'active' }]);
    const err = await migrateQemu(src.client, dst.client, {
      uri: 'tcp:x:1',
      stallRounds: 3,
      onStall: 'cancel',
      pollMs: 1,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as MigrationError).code).toBe('STALLED');
    expect(src.log.some((m) => m.execute === 'migrate_cancel')).toBe(true);
  });

  it('stall detection with onStall postcopy switches instead', async () => {
    const script: QmpMigrationInfo[] = [{ status: 'active', ram: ram(1, 10, 200) }];
    for (let i = 2; i < 8; i++) script.push({ status: 'active', ram: ram(i, 100 + 10 * i, 60) });
    script.push({ status: 'completed', ram: ram(8, 300, 0) });
    const src = await fakeQemu(script);
    const dst = await fakeQemu([{ status: 'active' }]);
    const r = await migrateQemu(src.client, dst.client, {
      uri: 'tcp:x:1',
      stallRounds: 2,
      onStall: 'postcopy',
      pollMs: 1,
    });
    expect(r.stalled).toBe(true);
    expect(r.switchedToPostcopy).toBe(true);
    expect(r.postcopyReason).toBe('stalled');
    expect(dst.log.some((m) => m.execute === 'migrate-set-capabilities')).toBe(true);
  });

  it('times out: cancels before switch-over and fails with TIMEOUT', async () => {
    const src = await fakeQemu([{ status: 'active', ram: ram(1, 1, 250) }]);
    const dst = await fakeQemu([{ status: 'active' }]);
    const err = await migrateQemu(src.client, dst.client, { uri: 'tcp:x:1', timeoutMs: 30, pollMs: 5 }).catch(
      (e: unknown) => e,
    );
    expect((err as MigrationError).code).toBe('TIMEOUT');
    expect(src.log.some((m) => m.execute === 'migrate_cancel')).toBe(true);
  });
});
