/**
 * Mutual TLS on the agent's port, across real processes: a full migration over TLS checked by the determinism
 * oracle, and every way a peer can fail authentication — no certificate, another CA's certificate, an expired
 * one, plain TCP (HTTP or a migration stream) to a TLS port, TLS to a plain port — refused with AUTH_FAILED while
 * the agent keeps serving authenticated peers.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Agent, AgentClient, makeCerts, startAgent, type TlsMaterial } from '../src/agent/index.js';
import type { ChildAgent } from '../src/agent/spawn.js';
import { MigrationError, UsageError } from '../src/errors.js';
import type { GuestConfig } from '../src/guest/index.js';
import { childAgent, expectOracle, isAdvancing, MiB, tlsFlags } from './helpers.js';

const config: GuestConfig = {
  ramBytes: 16 * MiB,
  seed: 7,
  workload: { name: 'gap', params: { workingSetBytes: 8 * MiB, writeRate: 2000 } },
};

let dir: string;
let good: { a: TlsMaterial; b: TlsMaterial; c: TlsMaterial };
let evil: TlsMaterial;
let expired: TlsMaterial;
let files: ReturnType<typeof makeCerts>;
let src: { child: ChildAgent; client: AgentClient };
let dst: { child: ChildAgent; client: AgentClient };

const material = (f: { cert: string; key: string }, ca: string): TlsMaterial => ({
  cert: readFileSync(f.cert),
  key: readFileSync(f.key),
  ca: readFileSync(ca),
});
const tlsArgs = (name: string) => tlsFlags(files, name);

async function rejected(p: Promise<unknown>): Promise<MigrationError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(MigrationError);
  return err as MigrationError;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'livemig-tls-'));
  files = makeCerts({ dir, names: ['a', 'b', 'c'] });
  const old = makeCerts({
    dir,
    names: ['old'],
    reuseCa: true,
    startDate: '20200101000000Z',
    endDate: '20200102000000Z',
  });
  const other = makeCerts({ dir: join(dir, 'other'), names: ['evil'] });
  good = {
    a: material(files.agents.a!, files.ca),
    b: material(files.agents.b!, files.ca),
    c: material(files.agents.c!, files.ca),
  };
  expired = material(old.agents.old!, files.ca);
  evil = material(other.agents.evil!, files.ca);
  // Spawned through the CLI flags, so `livemig agent --tls-*` is what is tested.
  const [s, d] = await Promise.all([childAgent(tlsArgs('a')), childAgent(tlsArgs('b'))]);
  src = { child: s.child, client: new AgentClient(s.child.address, { tls: good.c }) };
  dst = { child: d.child, client: new AgentClient(d.child.address, { tls: good.c }) };
}, 60_000);

afterAll(async () => {
  await Promise.all([src?.child.stop(), dst?.child.stop()]);
  src?.client.close();
  dst?.client.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('mutual TLS', () => {
  it('migrates a guest over TLS; the oracle verifies its RAM', async () => {
    await src.client.startGuest(config, 't1');
    const m = await src.client.migrate('t1', dst.child.address, { maxBandwidth: 0 });
    const r = await src.client.waitMigration(m.id);
    expect(r.error).toBeUndefined();
    expect(r.status).toBe('completed');
    await expectOracle(dst.client, 't1', config);
    await dst.client.stopGuest('t1');
  }, 60_000);

  it('control API: no client certificate, another CA, an expired certificate, plain HTTP — each AUTH_FAILED', async () => {
    const noCert = await new Promise<Error>((resolve) => {
      const req = request(
        `https://${dst.child.address}/v1/status`,
        { ca: good.a.ca, rejectUnauthorized: true },
        (res) => {
          res.resume();
          res.on('end', () => resolve(new Error(`answered ${res.statusCode}`)));
          res.on('error', resolve);
        },
      );
      req.on('error', resolve);
      req.end();
    });
    expect(noCert.message).toBe('answered 403');

    const wrongCa = await rejected(new AgentClient(dst.child.address, { tls: evil }).status());
    expect(wrongCa.code).toBe('AUTH_FAILED');
    expect(wrongCa.message).toMatch(/does not accept your certificate \(UNABLE_TO_VERIFY/);

    const old = await rejected(new AgentClient(dst.child.address, { tls: expired }).status());
    expect(old.code).toBe('AUTH_FAILED');
    expect(old.message).toMatch(/CERT_HAS_EXPIRED/);

    const plain = await rejected(new AgentClient(dst.child.address).status());
    expect(plain.code).toBe('AUTH_FAILED');
    expect(plain.message).toMatch(/requires TLS/);

    // The agent still serves authenticated clients.
    expect((await dst.client.status()).address).toBe(dst.child.address);
  });

  it('migration stream: a source with another CA, an expired certificate or no TLS is refused; the guest stays on the source', async () => {
    const cases: { name: string; agent: Agent; expect: RegExp }[] = [];
    for (const [name, tls] of [
      ['evil', evil],
      ['expired', expired],
      ['plain', undefined],
    ] as const) {
      const agent = await startAgent({ host: '127.0.0.1', port: 0, tls });
      cases.push({
        name,
        agent,
        expect:
          name === 'plain' ? /requires TLS/ : name === 'expired' ? /CERT_HAS_EXPIRED/ : /UNABLE_TO_VERIFY/,
      });
    }
    try {
      for (const c of cases) {
        await c.agent.startGuest(config, `x-${c.name}`);
        const m = await c.agent.migrate(`x-${c.name}`, dst.child.address, { maxBandwidth: 0 });
        const r = await c.agent.waitMigration(m.id);
        expect(r.status, c.name).toBe('failed');
        expect(r.error?.code, c.name).toBe('AUTH_FAILED');
        expect(r.error?.message, c.name).toMatch(c.expect);
        expect(c.agent.guestInfo(`x-${c.name}`).status).toBe('running');
      }
      expect((await dst.client.guests()).length).toBe(0);
    } finally {
      for (const c of cases) await c.agent.close();
    }
    // And the destination still accepts an authenticated migration.
    await src.client.startGuest(config, 't2');
    const m = await src.client.migrate('t2', dst.child.address, { maxBandwidth: 0 });
    expect((await src.client.waitMigration(m.id)).status).toBe('completed');
    expect(await isAdvancing(dst.client, 't2')).toBe(true);
    await dst.client.stopGuest('t2');
  }, 60_000);

  it('a TLS source dialling a plain agent: AUTH_FAILED, it does not speak TLS', async () => {
    const plain = await startAgent({ host: '127.0.0.1', port: 0 });
    try {
      await src.client.startGuest(config, 't3');
      const m = await src.client.migrate('t3', plain.address, { maxBandwidth: 0 });
      const r = await src.client.waitMigration(m.id);
      expect(r.error?.code).toBe('AUTH_FAILED');
      expect(r.error?.message).toMatch(/does not speak TLS/);
      expect(await isAdvancing(src.client, 't3')).toBe(true);
      await src.client.stopGuest('t3');
    } finally {
      await plain.close();
    }
  }, 30_000);

  it('refuses to listen on a non-loopback address without TLS unless --insecure', async () => {
    await expect(startAgent({ host: '0.0.0.0', port: 0 })).rejects.toThrow(UsageError);
    await expect(startAgent({ host: '0.0.0.0', port: 0 })).rejects.toThrow(/--insecure/);
    const a = await startAgent({ host: '0.0.0.0', port: 0, insecure: true });
    await a.close();
    const t = await startAgent({ host: '0.0.0.0', port: 0, tls: good.a });
    await t.close();
  });
});
