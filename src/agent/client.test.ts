/**
 * AgentClient checks every success body before returning it: a fake agent answering 200 with bodies of the wrong
 * shape makes each method throw PROTOCOL (naming the endpoint and the field), and a real agent's bodies all pass.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MigrationError } from '../errors.js';
import type { GuestConfig } from '../guest/index.js';
import { exampleGuest, exampleReport, exampleStatus, exampleSummary } from '../web/answer-examples.js';
import { type Agent, startAgent } from './agent.js';
import { AgentClient } from './client.js';

const REPORT = exampleReport();
const GUEST = exampleGuest();

/** A fake agent: answers 200 with the body `bodies` holds for "METHOD /path" (query stripped). */
let server: Server;
let fake: AgentClient;
const bodies = new Map<string, string>();

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const key = `${req.method} ${(req.url ?? '').replace(/\?.*$/, '')}`;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(bodies.get(key) ?? 'null');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fake = new AgentClient(`127.0.0.1:${(server.address() as AddressInfo).port}`, { token: 't' });
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const M = REPORT.id;

/** [what is asked, the endpoint's key, a wrong body, the field the error must name] */
const WRONG: [string, () => Promise<unknown>, string, unknown, string][] = [
  ['status', () => fake.status(), 'GET /v1/status', { address: 'a', version: 1, guests: [] }, 'version'],
  [
    'status outgoing',
    () => fake.status(),
    'GET /v1/status',
    { ...exampleStatus(), outgoing: [{ ...exampleSummary(), downtimeMs: -1 }] },
    'outgoing.0.downtimeMs',
  ],
  [
    'migrations',
    () => fake.migrations(),
    'GET /v1/migrations',
    [{ ...exampleSummary(), status: 'gone' }],
    '0.status',
  ],
  ['guests', () => fake.guests(), 'GET /v1/guests', [{ ...GUEST, status: 'flying' }], '0.status'],
  ['guest', () => fake.guest('g1'), 'GET /v1/guests/g1', { ...GUEST, steps: 'many' }, 'steps'],
  ['pause', () => fake.pause('g1'), 'POST /v1/guests/g1/pause', { error: 'no' }, 'id'],
  ['stop', () => fake.stopGuest('g1'), 'DELETE /v1/guests/g1', {}, 'id'],
  [
    'dirty log',
    () => fake.dirtyLog('g1'),
    'POST /v1/guests/g1/dirty-log',
    { at: 1, count: -1, pages: '' },
    'count',
  ],
  ['state', () => fake.state('g1'), 'GET /v1/guests/g1/state', { config: {}, vcpus: [] }, 'config.ramBytes'],
  ['snapshot', () => fake.snapshot('g1', 'f'), 'POST /v1/guests/g1/snapshot', { file: 'f' }, 'fileBytes'],
  ['restore', () => fake.restore('f'), 'POST /v1/snapshots/restore', { guest: {}, restoreMs: 1 }, 'guest.id'],
  [
    'migrate',
    () => fake.migrate('g1', '127.0.0.1:2'),
    'POST /v1/migrations',
    { ...REPORT, status: 'done' },
    'status',
  ],
  ['migration', () => fake.migration(M), `GET /v1/migrations/${M}`, { ...REPORT, rounds: '3' }, 'rounds'],
  ['wait', () => fake.waitMigration(M), `GET /v1/migrations/${M}`, null, '(body)'],
  ['cancel', () => fake.cancel(M), `POST /v1/migrations/${M}/cancel`, { ...REPORT, id: undefined }, 'id'],
  [
    'error code',
    () => fake.reconcile(M),
    `POST /v1/migrations/${M}/reconcile`,
    { ...REPORT, status: 'failed', error: { code: 'NOT_A_CODE', message: 'x' } },
    'error.code',
  ],
  [
    'owner',
    () => fake.incomingOwner(M),
    `GET /v1/migrations/incoming/${M}`,
    { migrationId: M, guestId: 'g1', state: 'lost' },
    'state',
  ],
  [
    'evacuate',
    () => fake.evacuate({ to: ['x:1'] }),
    'POST /v1/evacuate',
    { order: 'smart', moves: 3 },
    'maxParallel',
  ],
];

describe('AgentClient: success bodies are checked', () => {
  it.each(WRONG)(
    '%s: a body of the wrong shape is PROTOCOL naming the endpoint and the field',
    async (_, ask, key, body, field) => {
      expect.assertions(4);
      bodies.set(key, JSON.stringify(body));
      try {
        await ask();
      } catch (err) {
        expect(err).toBeInstanceOf(MigrationError);
        expect((err as MigrationError).code).toBe('PROTOCOL');
        expect((err as MigrationError).message).toContain(key.replace(/^\S+ /, ''));
        expect((err as MigrationError).context.field).toBe(field);
      }
    },
  );

  it("GET /v1/power: a body that is not a power series is PROTOCOL (the power meter's own schema)", async () => {
    bodies.set('GET /v1/power', JSON.stringify({ model: 'cubic', samples: 'none' }));
    await expect(fake.power()).rejects.toMatchObject({ code: 'PROTOCOL' });
  });

  it('follow() stops on a malformed status instead of polling garbage forever', async () => {
    bodies.set(`GET /v1/migrations/${M}`, JSON.stringify({ ...REPORT, status: undefined }));
    await expect(fake.follow(M, undefined, 1)).rejects.toMatchObject({ code: 'PROTOCOL' });
  });

  it('returns a well-formed body as it came, fields the schema does not list included', async () => {
    const report = { ...REPORT, status: 'completed', futureField: { x: 1 } };
    bodies.set(`GET /v1/migrations/${M}`, JSON.stringify(report));
    expect(await fake.migration(M)).toEqual(report);
    bodies.set('GET /v1/guests', JSON.stringify([GUEST]));
    expect(await fake.guests()).toEqual([GUEST]);
  });
});

describe("AgentClient: a real agent's bodies pass the checks", () => {
  let a: Agent;
  let b: Agent;
  beforeAll(async () => {
    [a, b] = await Promise.all([
      startAgent({ host: '127.0.0.1', port: 0 }),
      startAgent({ host: '127.0.0.1', port: 0 }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  it('every guest, migration and ownership call', { timeout: 120_000 }, async () => {
    const ca = new AgentClient(a.address);
    const cb = new AgentClient(b.address);
    const config: GuestConfig = {
      ramBytes: 1 << 20,
      vcpus: 1,
      seed: 3,
      workload: { name: 'gap', params: { writeRate: 100 } },
    };
    const g = await ca.startGuest(config, 'g1');
    expect(g.id).toBe('g1');
    expect((await ca.guests()).map((x) => x.id)).toEqual(['g1']);
    expect((await ca.pause('g1')).status).toBe('paused');
    expect((await ca.state('g1')).vcpus).toHaveLength(1);
    expect((await ca.dirtyLog('g1')).count).toBeGreaterThanOrEqual(0);
    expect((await ca.resume('g1')).status).toBe('running');
    expect((await ca.throttle('g1', { cap: 80 })).cap).toBe(80);
    expect((await ca.power()).samples).toBeInstanceOf(Array);
    const started = await ca.migrate('g1', b.address, { xbzrle: true });
    const done = await ca.waitMigration(started.id);
    expect(done.status).toBe('completed');
    expect((await ca.migration(started.id)).id).toBe(started.id);
    const status = await ca.status();
    expect(status.guests).toEqual([]);
    expect(status.outgoing).toEqual([expect.objectContaining({ id: started.id, status: 'completed' })]);
    expect(await ca.migrations()).toEqual(status.outgoing);
    expect((await cb.incomingOwner(started.id)).state).toBe('resumed');
    expect((await cb.guest('g1')).origin).toBe('migrated-in');
    expect(await cb.stopGuest('g1')).toEqual({ id: 'g1', stopped: true });
  });
});
