/**
 * Parallel channels (--multifd-channels, QEMU's multifd) end to end between two agents on loopback: N = 2 and 4, with
 * XBZRLE, zstd, the rate limit and TLS, each checked by the switch-over digest and the determinism oracle; a channel
 * cut in the middle of a round fails the migration with the guest still running on the source; a CHANNEL that names
 * no migration here, or the wrong token, is refused.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Agent, AgentClient, makeCerts, startAgent, type TlsMaterial } from '../src/agent/index.js';
import { MigrationError } from '../src/errors.js';
import type { GuestConfig } from '../src/guest/index.js';
import { FrameConnection } from '../src/migration/connection.js';
import type { MigrationOptions, MigrationReport } from '../src/migration/index.js';
import { Command, encodeChannelHello, PREAMBLE } from '../src/migration/protocol/index.js';
import { agentPairForFile, expectOracle, isAdvancing, MiB, sleep, waitFor } from './helpers.js';

const agents = agentPairForFile();
let n = 0;

const gap = (): GuestConfig => ({
  ramBytes: 32 * MiB,
  seed: 5,
  workload: { name: 'gap', params: { workingSetBytes: 24 * MiB, writeRate: 4000 } },
});

async function migrateOnce(
  src: { client: AgentClient },
  dst: { client: AgentClient; address: string },
  config: GuestConfig,
  options: Partial<MigrationOptions>,
): Promise<{ report: MigrationReport; id: string }> {
  const id = `m${++n}`;
  await src.client.startGuest(config, id);
  await sleep(300);
  const started = await src.client.migrate(id, dst.address, options);
  const report = await src.client.follow(started.id, undefined, 50);
  return { report, id };
}

describe.each([
  ['2 channels', { multifdChannels: 2 }],
  ['4 channels + xbzrle', { multifdChannels: 4, xbzrle: true, xbzrleCacheBytes: 8 * MiB }],
  ['2 channels + zstd, rate limit', { multifdChannels: 2, compress: 'zstd', maxBandwidth: 64 * MiB }],
  ['4 channels + lz4, full digest', { multifdChannels: 4, compress: 'lz4', verify: 'full' }],
  ['3 channels, cold', { multifdChannels: 3, strategy: 'cold' }],
] as [string, Partial<MigrationOptions>][])('%s', (_name, options) => {
  it('migrates a running guest; the destination continues it exactly', { timeout: 120_000 }, async () => {
    const config = gap();
    const { report, id } = await migrateOnce(
      agents.a,
      { client: agents.b.client, address: agents.b.agent.address },
      config,
      { maxBandwidth: 0, maxRounds: 8, ...options },
    );
    expect(report.error).toBeUndefined();
    expect(report.status).toBe('completed');
    expect(report.verified).toBe(true);
    expect(report.events.some((e) => e.includes(`multifd: ${options.multifdChannels} channels open`))).toBe(
      true,
    );
    // Every channel carried its share of the pages (the main connection only control frames).
    expect(report.multifd?.channels).toBe(options.multifdChannels);
    for (const bytes of report.multifd?.bytes ?? []) expect(bytes).toBeGreaterThan(MiB);
    if (options.xbzrle) expect(report.pages.xbzrle).toBeGreaterThan(0);
    await expect(agents.a.client.guest(id)).rejects.toThrow(/no guest/);
    expect(await isAdvancing(agents.b.client, id)).toBe(true);
    await expectOracle(agents.b.client, id, config);
    await agents.b.client.stopGuest(id);
  });
});

describe('refused channels', () => {
  async function channelHello(address: string, migrationId: string, token: string): Promise<MigrationError> {
    const [host, port] = address.split(':') as [string, string];
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ host, port: Number(port) }, () => resolve(s));
      s.once('error', reject);
    });
    const conn = new FrameConnection(socket);
    conn.writeRaw(PREAMBLE);
    await conn.sendFrame(Command.CHANNEL, encodeChannelHello({ migrationId, token, channel: 0 }));
    const err = await conn.receive(10_000).then(
      () => undefined,
      (e: unknown) => e,
    );
    conn.destroy();
    expect(err).toBeInstanceOf(MigrationError);
    return err as MigrationError;
  }

  it('a CHANNEL for no migration here is refused (AUTH_FAILED) and the agent serves on', async () => {
    const err = await channelHello(agents.b.agent.address, 'ab'.repeat(16), 'cd'.repeat(16));
    expect(err.code).toBe('AUTH_FAILED');
    expect(err.message).toMatch(/no migration with that id and token/);
    expect(await agents.b.client.status()).toBeDefined();
  });

  it('a CHANNEL naming a live migration with the wrong token is refused; the migration completes', {
    timeout: 120_000,
  }, async () => {
    expect.assertions(4);
    const config = gap();
    const id = `m${++n}`;
    await agents.a.client.startGuest(config, id);
    // Slow enough that the migration is still receiving when the foreign channel arrives.
    const started = await agents.a.client.migrate(id, agents.b.agent.address, {
      multifdChannels: 2,
      maxBandwidth: 16 * MiB,
    });
    await waitFor(async () => (await agents.a.client.migration(started.id)).status === 'active', 20_000);
    const err = await channelHello(agents.b.agent.address, started.id, '00'.repeat(16));
    expect(err.code).toBe('AUTH_FAILED');
    const report = await agents.a.client.follow(started.id, undefined, 50);
    expect(report.status).toBe('completed');
    expect(report.verified).toBe(true);
    await expectOracle(agents.b.client, id, config);
    await agents.b.client.stopGuest(id);
  });
});

describe('a channel lost', () => {
  let proxy: Server;
  const links: Socket[][] = [];

  beforeAll(async () => {
    // Every connection through here is recorded, so that the test can cut one of a migration's channels.
    const [host, port] = agents.b.agent.address.split(':') as [string, string];
    proxy = createServer((inbound) => {
      const outbound = connect({ host, port: Number(port) });
      links.push([inbound, outbound]);
      inbound.pipe(outbound);
      outbound.pipe(inbound);
      const close = () => {
        inbound.destroy();
        outbound.destroy();
      };
      inbound.on('error', close).on('close', close);
      outbound.on('error', close).on('close', close);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => new Promise<void>((resolve) => proxy.close(() => resolve())));

  it('cut in the middle of a round: the migration fails, the guest runs on the source, none on the destination', {
    timeout: 120_000,
  }, async () => {
    const config = gap();
    const id = `m${++n}`;
    await agents.a.client.startGuest(config, id);
    const address = `127.0.0.1:${(proxy.address() as { port: number }).port}`;
    // 24 MiB of data at 8 MiB/s: round 1 takes about 3 s.
    const started = await agents.a.client.migrate(id, address, { multifdChannels: 2, maxBandwidth: 8 * MiB });
    await waitFor(
      async () => links.length >= 3 && (await agents.a.client.migration(started.id)).status === 'active',
    );
    await sleep(500);
    expect((await agents.a.client.migration(started.id)).perRound.length).toBe(0); // still in round 1
    links[2]![1].destroy(); // the second channel (the first link is the main connection)
    const report = await agents.a.client.follow(started.id, undefined, 50);
    expect(report.status).toBe('failed');
    expect(report.error?.code).toMatch(/CONNECTION_LOST|PEER_CLOSED/);
    expect((await agents.a.client.guest(id)).status).toBe('running');
    expect(await isAdvancing(agents.a.client, id)).toBe(true);
    await waitFor(
      async () => (await agents.b.client.guests()).length === 0,
      20_000,
      'the partial guest discarded',
    );
    await agents.a.client.stopGuest(id);
  });
});

describe('over TLS', () => {
  let dir: string;
  let src: Agent;
  let dst: Agent;
  let client: TlsMaterial;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'livemig-multifd-'));
    const files = makeCerts({ dir, names: ['a', 'b', 'c'] });
    const material = (name: string): TlsMaterial => ({
      cert: readFileSync(files.agents[name]!.cert),
      key: readFileSync(files.agents[name]!.key),
      ca: readFileSync(files.ca),
    });
    client = material('c');
    [src, dst] = await Promise.all([
      startAgent({ host: '127.0.0.1', port: 0, tls: material('a') }),
      startAgent({ host: '127.0.0.1', port: 0, tls: material('b') }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([src?.close(), dst?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('4 channels + XBZRLE over mutual TLS: verified, the destination continues the guest exactly', {
    timeout: 120_000,
  }, async () => {
    const config = gap();
    await src.startGuest(config, 'tls1');
    await sleep(300);
    const m = await src.migrate('tls1', dst.address, {
      multifdChannels: 4,
      xbzrle: true,
      maxBandwidth: 0,
      maxRounds: 8,
    });
    const report = await src.waitMigration(m.id);
    expect(report.error).toBeUndefined();
    expect(report.status).toBe('completed');
    expect(report.verified).toBe(true);
    expect(dst.guestInfo('tls1').status).toBe('running');
    await expectOracle(new AgentClient(dst.address, { tls: client }), 'tls1', config);
    await dst.stopGuest('tls1');
  });
});
