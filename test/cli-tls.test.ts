/**
 * The CLI against agents that run with mutual TLS: `livemig guest` and `livemig migrate` with
 * `--tls-cert --tls-key --tls-ca` (certificates from `livemig certs`), the same commands refused without them, and
 * flag validation that names the flag and the accepted form.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCerts } from '../src/agent/index.js';
import type { ChildAgent } from '../src/agent/spawn.js';
import { childAgent, runCli as livemig } from './helpers.js';

let dir: string;
let a: ChildAgent;
let b: ChildAgent;
const cert = (name: string) => [
  '--tls-cert',
  join(dir, `${name}.pem`),
  '--tls-key',
  join(dir, `${name}-key.pem`),
  '--tls-ca',
  join(dir, 'ca.pem'),
];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'livemig-cli-tls-'));
  // The certificates come from the command a user runs.
  const made = livemig(['certs', '--out', dir, '--names', 'a,b,admin']);
  expect(made.code).toBe(0);
  // Another CA, and an expired certificate of ours, for the refusals at start.
  makeCerts({ dir: join(dir, 'other'), names: ['x'] });
  makeCerts({ dir, names: ['old'], reuseCa: true, startDate: '20200101000000Z', endDate: '20200102000000Z' });
  [a, b] = await Promise.all([
    childAgent(cert('a')).then((x) => x.child),
    childAgent(cert('b')).then((x) => x.child),
  ]);
}, 60_000);

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('livemig guest / migrate with --tls-*', () => {
  it('starts, lists, migrates and stops a guest on TLS agents', () => {
    const start = livemig([
      'guest',
      'start',
      '--agent',
      a.address,
      '--id',
      'c1',
      '--ram',
      '16MiB',
      '--workload',
      'gap',
      '--write-rate',
      '1000',
      '--json',
      ...cert('admin'),
    ]);
    expect(start.stderr).toBe('');
    expect(start.code).toBe(0);
    expect(JSON.parse(start.stdout)).toMatchObject({ id: 'c1', status: 'running' });

    const list = livemig(['guest', 'list', '--agent', a.address, '--json', ...cert('admin')]);
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as { id: string }[]).map((g) => g.id)).toEqual(['c1']);

    const m = livemig([
      'migrate',
      '--from',
      a.address,
      '--guest',
      'c1',
      '--to',
      b.address,
      '--json',
      ...cert('admin'),
    ]);
    expect(m.stderr).toBe('');
    expect(m.code).toBe(0);
    expect(JSON.parse(m.stdout)).toMatchObject({ status: 'completed', verified: true });

    const stop = livemig(['guest', 'stop', '--agent', b.address, '--guest', 'c1', ...cert('admin')]);
    expect(stop.code).toBe(0);
    expect(stop.stdout).toBe('stop: c1\n');
  }, 120_000);

  it('without the TLS flags a TLS agent refuses the command with AUTH_FAILED', () => {
    const r = livemig(['guest', 'list', '--agent', a.address]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\[AUTH_FAILED\]/);
  });

  it('flags are validated with the flag and the accepted form', () => {
    const partial = livemig(['guest', 'list', '--agent', a.address, '--tls-cert', join(dir, 'admin.pem')]);
    expect(partial.code).toBe(2);
    expect(partial.stderr).toMatch(/--tls-cert FILE --tls-key FILE --tls-ca FILE/);

    const missing = livemig(['guest', 'list', '--agent', a.address, ...cert('nobody')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--tls-cert .*nobody\.pem/);

    const agent = livemig(['guest', 'list', '--agent', 'nope']);
    expect(agent.code).toBe(2);
    expect(agent.stderr).toMatch(/--agent: "nope" is not HOST:PORT of an agent \(e\.g\. 127\.0\.0\.1:7070/);

    const to = livemig(['migrate', '--from', a.address, '--guest', 'c1', '--to', 'host:99999']);
    expect(to.code).toBe(2);
    expect(to.stderr).toMatch(/--to: "host:99999" is not HOST:PORT/);
  });
});

describe('bad TLS files and certs: refused at start, one line naming the file, nothing left behind', () => {
  const agentWith = (files: { cert: string; key: string; ca: string }) =>
    livemig([
      'agent',
      '--listen',
      '127.0.0.1:0',
      '--tls-cert',
      files.cert,
      '--tls-key',
      files.key,
      '--tls-ca',
      files.ca,
    ]);
  const good = () => ({ cert: join(dir, 'a.pem'), key: join(dir, 'a-key.pem'), ca: join(dir, 'ca.pem') });

  it('an agent refuses a key that does not match its certificate, a junk CA, cert or key: exit 2, no stack trace', () => {
    const junk = join(dir, 'junk.pem');
    writeFileSync(junk, 'not a certificate\n');
    const cases: [{ cert: string; key: string; ca: string }, RegExp][] = [
      [
        { ...good(), key: join(dir, 'b-key.pem') },
        /--tls-key .*b-key\.pem does not match the certificate in --tls-cert .*a\.pem/,
      ],
      [{ ...good(), ca: junk }, /--tls-ca .*junk\.pem: no PEM certificate in it/],
      [{ ...good(), cert: junk }, /--tls-cert .*junk\.pem: no PEM certificate in it/],
      [{ ...good(), key: junk }, /--tls-key .*junk\.pem: not a PEM private key/],
      // A key file given as the CA: PEM, but no certificate in it.
      [{ ...good(), ca: join(dir, 'ca-key.pem') }, /--tls-ca .*ca-key\.pem: no PEM certificate in it/],
      // Another cluster's CA: every peer would refuse this agent.
      [
        { ...good(), ca: join(dir, 'other', 'ca.pem') },
        /--tls-cert .*a\.pem is not signed by the CA in --tls-ca/,
      ],
      [
        { cert: join(dir, 'old.pem'), key: join(dir, 'old-key.pem'), ca: join(dir, 'ca.pem') },
        /old\.pem is valid only from .* to /,
      ],
    ];
    for (const [files, message] of cases) {
      const r = agentWith(files);
      expect({ code: r.code, stderr: r.stderr }).toMatchObject({
        code: 2,
        stderr: expect.stringMatching(message),
      });
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it('certs --days 99999999 is refused before anything is written', () => {
    const out = join(dir, 'forever');
    const r = livemig(['certs', '--out', out, '--days', '99999999']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--days: "99999999" is not an integer from 1 to 36500/);
    expect(existsSync(out)).toBe(false);
    // A folder that cannot be made: one line, exit 1 (Node's recursive mkdir used to spin forever under /proc).
    const proc = livemig(['certs', '--out', '/proc/livemig-certs'], 30_000);
    expect(proc.code).toBe(1);
    expect(proc.stderr).toMatch(/^livemig: mkdir \/proc\/livemig-certs: ENOENT/);
  });

  it('certs that fail half-way (a CA that cannot sign) leave the folder as it was', () => {
    const out = join(dir, 'half');
    mkdirSync(out);
    writeFileSync(join(out, 'ca.pem'), 'junk CA\n');
    writeFileSync(join(out, 'ca-key.pem'), 'junk key\n');
    const r = livemig(['certs', '--out', out, '--names', 'x', '--reuse-ca']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/openssl/);
    expect(readdirSync(out).sort()).toEqual(['ca-key.pem', 'ca.pem']);
  });
});
