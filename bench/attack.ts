/**
 * `npm run attack`: replays every case of the adversarial trial (docs/security.md, "Attack replay") against live
 * agents on loopback and prints a table — case, expected (refused / survived), observed, PASS or FAIL — and then
 * checks that nothing was lost: the agent still answers, and a guest started before the attack still runs, migrates
 * and equals, byte for byte, a guest that never moved.
 *
 *   npm run attack              every case, with the trial's own durations (a 62 s stall at GO: ~3 minutes)
 *   npm run attack -- --quick   the fault cells with 3 s stalls instead (about a minute)
 *   npm run attack -- --json    the table as JSON on stdout
 *   npm run attack -- --only 3,9   only these points of the issue (then the final checks)
 *
 * Each case is bounded in time (CASE_MS) and traffic (a few hundred MiB at most, loopback only). A case whose fix
 * is not in this build reports FAIL; the exit code is 1 when any case fails.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Table from 'cli-table3';
import { makeCerts } from '../src/agent/index.js';
import { type ChildAgent, cliCommand, spawnAgent, stopSpawnedAgents } from '../src/agent/spawn.js';
import { type Cell, type CellResult, PHASES, type PhaseName, runCell } from '../src/faults/index.js';
import { type GuestConfig, referenceRam } from '../src/guest/index.js';
import {
  Command,
  decodeJson,
  encodeFrame,
  encodeHello,
  encodeJson,
  FRAME_HEADER_BYTES,
  PREAMBLE,
  PROTOCOL_VERSION,
  StrategyCode,
} from '../src/migration/protocol/index.js';
import { alive, spawnSlowRun } from '../test/processes.js';

const args = new Set(process.argv.slice(2));
const QUICK = args.has('--quick');
const JSON_OUT = args.has('--json');
/** --only 3,9: just these points of the issue (and the final checks). */
const onlyAt = process.argv.indexOf('--only');
const ONLY = onlyAt > 0 ? new Set((process.argv[onlyAt + 1] ?? '').split(',').map(Number)) : undefined;
const CASE_MS = 120_000;
const MiB = 1024 * 1024;

const say = (line: string) => {
  if (!JSON_OUT) process.stderr.write(`${line}\n`);
};
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------------------------
// Talking to agents: raw HTTP (full control of Host, Origin and the token) and raw migration sockets.

interface Reply {
  status: number;
  body: string;
  ms: number;
}

interface Api {
  address: string;
  token?: string;
}

function http(
  a: Api,
  method: string,
  path: string,
  body?: unknown,
  o: { headers?: Record<string, string>; token?: boolean; raw?: string } = {},
): Promise<Reply> {
  const [host, port] = [
    a.address.slice(0, a.address.lastIndexOf(':')),
    a.address.slice(a.address.lastIndexOf(':') + 1),
  ];
  // A POST without a body still says JSON ({}), as the CLI's client does: the agent refuses other content types.
  const data = o.raw ?? (body === undefined ? (method === 'POST' ? '{}' : undefined) : JSON.stringify(body));
  const headers: Record<string, string> = {
    ...(data !== undefined ? { 'content-type': 'application/json' } : {}),
    ...(a.token && o.token !== false ? { authorization: `Bearer ${a.token}` } : {}),
    ...o.headers,
  };
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = request(
      { host: host.replace(/^\[|\]$/g, ''), port: Number(port), method, path, headers, timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString(),
            ms: performance.now() - t0,
          }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer in 10 s')));
    req.on('error', (err) => resolve({ status: 0, body: err.message, ms: performance.now() - t0 }));
    if (data !== undefined) req.write(data);
    req.end();
  });
}

const ok = (r: Reply) => r.status >= 200 && r.status < 300;
const json = <T>(r: Reply): T => JSON.parse(r.body) as T;
const short = (s: string, n = 70) => (s.length > n ? `${s.slice(0, n - 1)}…` : s).replace(/\s+/g, ' ');

function hostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) };
}

function openSocket(address: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(hostPort(address));
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Sockets the agent has closed (ended, reset) so far. */
function watchClosed(sockets: Socket[]): () => number {
  const closed = new Set<Socket>();
  for (const s of sockets) {
    s.on('error', () => undefined);
    s.on('data', () => undefined);
    s.once('close', () => closed.add(s));
    s.once('end', () => closed.add(s));
  }
  return () => closed.size;
}

/** Sends a HELLO and returns the first frame the agent answers: HELLO_ACK, or ERROR with its code and message. */
async function sendHello(address: string, guest: unknown, vcpus: number, pages: number): Promise<string> {
  const s = await openSocket(address);
  const hello = encodeHello({
    versionMin: 1,
    versionMax: PROTOCOL_VERSION,
    migrationId: randomBytes(16).toString('hex'),
    strategy: StrategyCode.PRECOPY,
    pageSize: 4096,
    capabilities: 0,
    blocks: [pages],
    vcpus,
    guest,
  });
  s.write(Buffer.concat([PREAMBLE, encodeFrame(Command.HELLO, hello)]));
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const done = (what: string) => {
      s.destroy();
      resolve(what);
    };
    const timer = setTimeout(() => done('no answer in 10 s'), 10_000);
    s.on('error', () => undefined);
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (buf.length < FRAME_HEADER_BYTES) return;
      const len = buf.readUInt32BE(0);
      const command = buf[4]!;
      if (command !== Command.ERROR) {
        clearTimeout(timer);
        return done(Command[command] ?? `command ${command}`);
      }
      if (buf.length < FRAME_HEADER_BYTES + len) return;
      clearTimeout(timer);
      try {
        const e = decodeJson(buf.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + len), 'ERROR') as {
          code?: string;
          message?: string;
        };
        done(`ERROR ${e.code}: ${e.message}`);
      } catch {
        done('ERROR (unreadable)');
      }
    });
    s.once('close', () => {
      clearTimeout(timer);
      done(buf.length ? 'closed after a partial answer' : 'closed without an answer');
    });
  });
}

function procStatus(pid: number, field: 'VmRSS' | 'Threads'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * (field === 'VmRSS' ? 1024 : 1) : Number.NaN;
}

async function until(f: () => boolean | Promise<boolean>, ms: number, step = 100): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await f()) return true;
    if (Date.now() > end) return false;
    await sleep(step);
  }
}

function cli(
  argv: string[],
  timeoutMs = 60_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { file, execArgv } = cliCommand();
  return new Promise((resolve) => {
    execFile(process.execPath, [...execArgv, file, ...argv], { timeout: timeoutMs }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
    );
  });
}

/** One line on stderr, no stack trace. */
const oneLine = (stderr: string) => stderr.trim().split('\n').length === 1 && !/\n\s+at /.test(stderr);

// ---------------------------------------------------------------------------------------------------------------
// The agents under attack. Flags the fixes add are used when this build has them (read from `agent --help`).

interface Lab {
  dir: string;
  flags: Set<string>;
  target: ChildAgent & Api;
  dest: ChildAgent & Api;
  certs: ReturnType<typeof makeCerts>;
  tokenFile: string | undefined;
  limits: { maxIncoming: number; firstByteMs: number };
}

async function agentFlags(): Promise<Set<string>> {
  const help = await cli(['agent', '--help']);
  return new Set(help.stdout.match(/--[a-z][a-z-]+/g) ?? []);
}

async function startLabAgent(
  lab: Pick<Lab, 'dir' | 'flags'>,
  name: string,
  extra: string[],
): Promise<ChildAgent & Api> {
  const args = [...extra];
  let tokenFile: string | undefined;
  if (lab.flags.has('--api-token-file')) {
    tokenFile = join(lab.dir, `${name}.token`);
    args.push('--api-token-file', tokenFile);
  }
  const a = await spawnAgent('127.0.0.1', args);
  const token = tokenFile && existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : undefined;
  return Object.assign(a, { token });
}

/** A quiet agent of its own with the lab's mTLS certificates of agent a; the caller stops it. */
function startTlsAgent(lab: Lab, extra: string[] = []): Promise<ChildAgent> {
  const a = lab.certs.agents.a!;
  return spawnAgent('127.0.0.1', [
    '--quiet',
    '--tls-cert',
    a.cert,
    '--tls-key',
    a.key,
    '--tls-ca',
    lab.certs.ca,
    ...extra,
  ]);
}

const WITNESS: GuestConfig = {
  ramBytes: 16 * MiB,
  pageSize: 4096,
  vcpus: 1,
  seed: 7,
  workload: { name: 'gap', params: { writeRate: 2000 } },
};

async function guestSteps(a: Api, id: string): Promise<number | undefined> {
  const r = await http(a, 'GET', `/v1/guests/${id}`);
  if (!ok(r)) return undefined;
  return (json<{ steps: number[] }>(r).steps ?? []).reduce((x, y) => x + y, 0);
}

async function startGuest(a: Api, id: string, config: GuestConfig, run = true): Promise<Reply> {
  return http(a, 'POST', '/v1/guests', { config, id, run });
}

/** Starts a migration and waits (bounded) until it ends; returns its final report (or what went wrong). */
async function migrate(
  src: Api,
  guest: string,
  destination: string,
  options: Record<string, unknown> = {},
  waitMs = 60_000,
): Promise<{ status: string; code?: string; message?: string; verified?: boolean; ms: number; id?: string }> {
  const t0 = performance.now();
  const r = await http(src, 'POST', '/v1/migrations', { guest, destination, options });
  if (!ok(r)) return { status: `HTTP ${r.status}`, message: short(r.body), ms: 0 };
  const { id } = json<{ id: string }>(r);
  let last: { status: string; verified?: boolean; error?: { code: string; message: string } } = {
    status: '?',
  };
  await until(async () => {
    const m = await http(src, 'GET', `/v1/migrations/${id}`);
    if (ok(m)) last = json(m);
    return ['completed', 'failed', 'cancelled'].includes(last.status);
  }, waitMs);
  return {
    status: last.status,
    code: last.error?.code,
    message: last.error?.message,
    verified: last.verified,
    ms: performance.now() - t0,
    id,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The cases, numbered as in the issue.

interface Outcome {
  pass: boolean;
  observed: string;
}

interface Case {
  point: number;
  name: string;
  expected: 'refused' | 'survived';
  run(lab: Lab): Promise<Outcome>;
}

const CASES: Case[] = [
  {
    point: 1,
    name: 'plain HTTP on the --dashboard port of an mTLS agent creates a guest',
    expected: 'refused',
    async run(lab) {
      const probe = createServer();
      await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
      const port = (probe.address() as AddressInfo).port;
      await new Promise<void>((r) => probe.close(() => r()));
      const tlsAgent = await startTlsAgent(lab, ['--dashboard', String(port)]);
      try {
        const r = await http({ address: `127.0.0.1:${port}` }, 'POST', '/v1/guests', {
          config: { ...WITNESS, ramBytes: MiB },
          id: 'attack-dash',
        });
        return {
          pass: !ok(r),
          observed: r.status ? `HTTP ${r.status}` : `no HTTP answer (${short(r.body, 40)})`,
        };
      } finally {
        await tlsAgent.stop('SIGKILL');
      }
    },
  },
  {
    point: 2,
    name: 'DNS rebinding: Host/Origin evil.example pause a guest, read status',
    expected: 'refused',
    async run(lab) {
      const evil = { host: 'evil.example', origin: 'http://evil.example' };
      const status = await http(lab.target, 'GET', '/v1/status', undefined, { headers: evil });
      const pause = await http(lab.target, 'POST', '/v1/guests/witness/pause', undefined, { headers: evil });
      if (ok(pause)) await http(lab.target, 'POST', '/v1/guests/witness/resume');
      return {
        pass: !ok(status) && !ok(pause),
        observed: `status HTTP ${status.status}, pause HTTP ${pause.status}`,
      };
    },
  },
  {
    point: 2,
    name: 'read guest RAM and migrate to anywhere without the API token',
    expected: 'refused',
    async run(lab) {
      // Paused first (with the token), so that only the missing token can refuse the read.
      await http(lab.target, 'POST', '/v1/guests/bait/pause');
      const ram = await http(lab.target, 'GET', '/v1/guests/bait/ram', undefined, { token: false });
      await http(lab.target, 'POST', '/v1/guests/bait/resume');
      const away = await http(
        lab.target,
        'POST',
        '/v1/migrations',
        { guest: 'bait', destination: '127.0.0.1:9' },
        { token: false },
      );
      const token = lab.tokenFile ? 'token file used' : 'agent has no --api-token-file';
      return {
        pass: !ok(ram) && !ok(away),
        observed: `RAM HTTP ${ram.status}, migrate HTTP ${away.status} (${token})`,
      };
    },
  },
  {
    point: 3,
    name: `migration connections beyond --max-incoming held before HELLO`,
    expected: 'refused',
    async run(lab) {
      const sockets = await Promise.all(Array.from({ length: 10 }, () => openSocket(lab.target.address)));
      const closed = watchClosed(sockets);
      for (const s of sockets) s.write(PREAMBLE);
      await sleep(1500);
      const open = sockets.length - closed();
      for (const s of sockets) s.destroy();
      return {
        pass: open <= lab.limits.maxIncoming,
        observed: `${open} of 10 held open (limit ${lab.limits.maxIncoming})`,
      };
    },
  },
  {
    point: 3,
    name: 'a HELLO asking 64 vCPUs for a 256 KiB guest',
    expected: 'refused',
    async run(lab) {
      const before = procStatus(lab.target.pid, 'Threads');
      const answer = await sendHello(
        lab.target.address,
        {
          id: 'attack-vcpus',
          config: { ramBytes: 256 * 1024, pageSize: 4096, vcpus: 64, seed: 1, workload: { name: 'gap' } },
        },
        64,
        64,
      );
      const after = procStatus(lab.target.pid, 'Threads');
      return {
        pass: answer.startsWith('ERROR'),
        observed: `${short(answer, 48)}; threads ${before}→${after}`,
      };
    },
  },
  {
    point: 3,
    name: '30 connections each assembling a 4 MiB frame (3 MiB sent, held)',
    expected: 'refused',
    async run(lab) {
      const rss0 = procStatus(lab.target.pid, 'VmRSS');
      const sockets = await Promise.all(Array.from({ length: 30 }, () => openSocket(lab.target.address)));
      const closed = watchClosed(sockets);
      const header = Buffer.alloc(FRAME_HEADER_BYTES);
      header.writeUInt32BE(4 * MiB - 64, 0);
      header[4] = Command.HELLO;
      const junk = Buffer.alloc(3 * MiB, 0x5a);
      for (const s of sockets) s.write(Buffer.concat([PREAMBLE, header, junk]));
      await sleep(2500);
      const rss1 = procStatus(lab.target.pid, 'VmRSS');
      const open = sockets.length - closed();
      for (const s of sockets) s.destroy();
      const grew = (rss1 - rss0) / MiB;
      return { pass: grew < 45, observed: `RSS +${grew.toFixed(0)} MiB, ${open} of 30 still open` };
    },
  },
  {
    point: 3,
    name: 'guests adding up past the agent RAM budget (--max-ram-total)',
    expected: 'refused',
    async run(lab) {
      const codes: number[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await startGuest(lab.target, `attack-ram-${i}`, { ...WITNESS, ramBytes: 32 * MiB }, false);
        codes.push(r.status);
      }
      for (let i = 0; i < 4; i++) await http(lab.target, 'DELETE', `/v1/guests/attack-ram-${i}`);
      const budget = lab.flags.has('--max-ram-total')
        ? '--max-ram-total 96MiB'
        : 'no --max-ram-total in this build';
      return {
        pass: codes.some((c) => !(c >= 200 && c < 300)),
        observed: `HTTP ${codes.join(',')} (${budget})`,
      };
    },
  },
  {
    point: 4,
    name: 'connections that never send a byte (20 plain, 10 TLS)',
    expected: 'refused',
    async run(lab) {
      const tlsAgent = await startTlsAgent(lab);
      try {
        const plain = await Promise.all(Array.from({ length: 20 }, () => openSocket(lab.target.address)));
        const tls = await Promise.all(Array.from({ length: 10 }, () => openSocket(tlsAgent.address)));
        const closedPlain = watchClosed(plain);
        const closedTls = watchClosed(tls);
        const api = await http(lab.target, 'GET', '/v1/status');
        const waitMs = lab.limits.firstByteMs + 12_000;
        await until(() => closedPlain() === plain.length && closedTls() === tls.length, waitMs, 250);
        const result = {
          pass: closedPlain() === plain.length && closedTls() === tls.length && ok(api),
          observed: `closed ${closedPlain()}/20 plain, ${closedTls()}/10 TLS in ${(waitMs / 1000).toFixed(0)} s; API HTTP ${api.status}`,
        };
        for (const s of [...plain, ...tls]) s.destroy();
        return result;
      } finally {
        await tlsAgent.stop('SIGKILL');
      }
    },
  },
  {
    point: 5,
    name: 'HELLO workload trace:/etc/passwd, trace:/root, trace:/nonexistent',
    expected: 'refused',
    async run(lab) {
      const answers: string[] = [];
      for (const path of ['/etc/passwd', '/root', '/nonexistent']) {
        const a = await sendHello(
          lab.target.address,
          {
            id: `attack-trace-${answers.length}`,
            config: { ramBytes: MiB, pageSize: 4096, vcpus: 1, seed: 1, workload: { name: `trace:${path}` } },
          },
          1,
          256,
        );
        answers.push(a.split(path).join('PATH'));
      }
      const same = answers.every((a) => a === answers[0]);
      return {
        pass: answers.every((a) => a.startsWith('ERROR')) && same,
        observed: same
          ? `all three: ${short(answers[0]!, 50)}`
          : `differ: ${answers.map((a) => short(a, 22)).join(' | ')}`,
      };
    },
  },
  {
    point: 6,
    name: 'faults at GO: stall, kill the destination, stop the source',
    expected: 'survived',
    async run() {
      // The trial's cells; a build whose matrix has a phase at GO itself uses it.
      const atGo = (PHASES as readonly string[]).find((p) => /(^|-)go$/.test(p)) as PhaseName | undefined;
      const phase: PhaseName = atGo ?? 'switchover';
      const pauseMs = QUICK ? 3000 : 62_000;
      const cells: Cell[] = [
        { strategy: 'precopy', phase, fault: 'stall' },
        { strategy: 'precopy', phase, fault: 'kill-destination' },
        { strategy: 'precopy', phase: 'switchover', fault: 'stop-source' },
      ];
      const results: CellResult[] = await Promise.all(cells.map((c) => runCell(c, { pauseMs })));
      const one = (r: CellResult) => r.holder === 'source' || r.holder === 'destination';
      return {
        pass: results.every((r) => one(r) && r.ok),
        observed: results.map((r) => `${r.fault}: ${r.status} ${r.code ?? ''} on ${r.holder}`).join('; '),
      };
    },
  },
  {
    point: 7,
    name: '--max-bandwidth 1: timeout 3 s, cancel, SIGTERM end it promptly',
    expected: 'survived',
    async run(lab) {
      const src = await startLabAgent(lab, 'slow', ['--quiet']);
      try {
        const g = { ...WITNESS, ramBytes: 4 * MiB };
        await startGuest(src, 'slow-1', g);
        const timed = await migrate(
          src,
          'slow-1',
          lab.dest.address,
          { maxBandwidth: 1, timeoutMs: 3000 },
          20_000,
        );
        await startGuest(src, 'slow-2', g);
        const started = await http(src, 'POST', '/v1/migrations', {
          guest: 'slow-2',
          destination: lab.dest.address,
          options: { maxBandwidth: 1 },
        });
        const id = ok(started) ? json<{ id: string }>(started).id : '';
        await sleep(1000);
        const t0 = performance.now();
        const cancel = await http(src, 'POST', `/v1/migrations/${id}/cancel`);
        let cancelled = '?';
        await until(
          async () => {
            const m = await http(src, 'GET', `/v1/migrations/${id}`);
            cancelled = ok(m) ? json<{ status: string }>(m).status : `HTTP ${m.status}`;
            return ['failed', 'cancelled', 'completed'].includes(cancelled);
          },
          10_000,
          50,
        );
        const cancelMs = performance.now() - t0;
        await startGuest(src, 'slow-3', g);
        await http(src, 'POST', '/v1/migrations', {
          guest: 'slow-3',
          destination: lab.dest.address,
          options: { maxBandwidth: 1 },
        });
        await sleep(1000);
        const t1 = performance.now();
        src.process.kill('SIGTERM');
        const exited = await until(() => !alive(src.pid), 10_000, 50);
        const termMs = performance.now() - t1;
        const timeoutOk = timed.status !== 'completed' && timed.ms < 3000 + 1500;
        return {
          pass: timeoutOk && cancelMs < 1500 && cancelled !== 'completed' && exited && termMs < 3000,
          observed:
            `timeout: ${timed.status} in ${(timed.ms / 1000).toFixed(1)} s; cancel HTTP ${cancel.status} → ${cancelled} ` +
            `in ${(cancelMs / 1000).toFixed(1)} s; SIGTERM: ${exited ? `exited in ${(termMs / 1000).toFixed(1)} s` : 'still running after 10 s'}`,
        };
      } finally {
        await src.stop('SIGKILL');
      }
    },
  },
  {
    point: 8,
    name: 'operator errors: failed migrate exit code, 1e12 VMs, bad flags, port in use, bad PEM, certs --days',
    expected: 'refused',
    async run(lab) {
      const problems: string[] = [];
      const tokenArgs =
        lab.tokenFile && (await cli(['migrate', '--help'])).stdout.includes('--api-token-file')
          ? ['--api-token-file', join(lab.dir, 'target.token')]
          : [];
      await startGuest(lab.target, 'attack-exit', { ...WITNESS, ramBytes: MiB });
      const m = await cli([
        'migrate',
        '--from',
        lab.target.address,
        '--guest',
        'attack-exit',
        '--to',
        lab.dest.address,
        '--timeout',
        '1ms',
        '--json',
        ...tokenArgs,
      ]);
      await http(lab.target, 'DELETE', '/v1/guests/attack-exit');
      if (m.code !== 1 || !/"status": "failed"/.test(m.stdout))
        problems.push(`failed migrate exit ${m.code}`);
      const sim = await cli(['sim', '--synthetic', '1e12']);
      if (sim.code !== 2 || !oneLine(sim.stderr)) problems.push(`sim 1e12 exit ${sim.code}`);
      for (const v of ['abc', '0', '-1']) {
        const r = await cli(['agent', '--listen', '127.0.0.1:0', '--max-incoming', v]);
        if (r.code !== 2) problems.push(`--max-incoming ${v} exit ${r.code}`);
      }
      const ram0 = await cli(['agent', '--listen', '127.0.0.1:0', '--max-ram', '0']);
      if (ram0.code !== 2) problems.push(`--max-ram 0 exit ${ram0.code}`);
      const busy = await cli(['agent', '--listen', lab.target.address]);
      if (busy.code !== 1 || !oneLine(busy.stderr)) problems.push(`port in use exit ${busy.code}`);
      const c = lab.certs;
      const junk = join(lab.dir, 'junk.pem');
      writeFileSync(junk, 'junk\n');
      const tls = (cert: string, key: string, ca: string) =>
        cli(['agent', '--listen', '127.0.0.1:0', '--tls-cert', cert, '--tls-key', key, '--tls-ca', ca]);
      const mismatch = await tls(c.agents.a!.cert, c.agents.b!.key, c.ca);
      if (mismatch.code !== 2 || !oneLine(mismatch.stderr))
        problems.push(`mismatched key exit ${mismatch.code}`);
      const badCa = await tls(c.agents.a!.cert, c.agents.a!.key, junk);
      if (badCa.code !== 2) problems.push(`junk --tls-ca exit ${badCa.code}`);
      const forever = join(lab.dir, 'forever');
      const days = await cli(['certs', '--out', forever, '--days', '99999999']);
      if (days.code !== 2 || existsSync(join(forever, 'ca.pem')))
        problems.push(`certs --days exit ${days.code}`);
      return {
        pass: problems.length === 0,
        observed: problems.length ? problems.join('; ') : '11 checks: exit codes 1/2, one line each',
      };
    },
  },
  {
    point: 9,
    name: "a peer's ERROR text with a newline and ANSI/OSC escapes",
    expected: 'refused',
    async run(lab) {
      const evil = 'no\n[agent 1] guest witness stopped (forged)\x1b]0;pwned\x07\x1b[2J';
      const fake = createServer((s) => {
        s.on('error', () => undefined);
        s.once('data', () =>
          s.end(encodeFrame(Command.ERROR, encodeJson({ code: 'VERSION', message: evil }))),
        );
      });
      await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
      try {
        await startGuest(lab.target, 'attack-peer', { ...WITNESS, ramBytes: MiB });
        const to = `127.0.0.1:${(fake.address() as AddressInfo).port}`;
        const r = await migrate(lab.target, 'attack-peer', to, {}, 10_000);
        await http(lab.target, 'DELETE', '/v1/guests/attack-peer');
        await until(() => lab.target.log.some((l) => l.includes('pwned')), 5000);
        const raw = lab.target.log.filter((l) => /\p{Cc}/u.test(l)).length;
        const forged = lab.target.log.filter((l) => l.startsWith('[agent 1]')).length;
        const inReport = /\p{Cc}/u.test(r.message ?? '');
        return {
          pass: raw === 0 && forged === 0 && !inReport,
          observed: `${raw} log lines with raw escapes, ${forged} forged lines, report ${inReport ? 'raw' : 'escaped'}`,
        };
      } finally {
        fake.close();
      }
    },
  },
  {
    point: 10,
    name: 'throttle body null, {"cap":"50"}; /dashboard/constructor',
    expected: 'refused',
    async run(lab) {
      const nul = await http(lab.target, 'POST', '/v1/guests/witness/throttle', undefined, { raw: 'null' });
      const str = await http(lab.target, 'POST', '/v1/guests/witness/throttle', undefined, {
        raw: '{"cap":"50"}',
      });
      if (ok(str)) await http(lab.target, 'POST', '/v1/guests/witness/throttle', { cap: 0 });
      const proto = await http(lab.target, 'GET', '/dashboard/constructor');
      return {
        pass: nul.status === 400 && str.status === 400 && proto.status === 404,
        observed: `HTTP ${nul.status}, ${str.status}, ${proto.status} (want 400, 400, 404)`,
      };
    },
  },
  {
    point: 11,
    name: '`livemig run` killed with SIGTERM mid-migration leaves an agent running',
    expected: 'refused',
    async run() {
      const { run, agentPids } = spawnSlowRun();
      const pids: number[] = [];
      await until(() => {
        const p = agentPids();
        if (p) pids.push(...p);
        return p !== undefined;
      }, 60_000);
      await sleep(1000);
      run.kill('SIGTERM');
      const gone = await until(() => pids.length === 2 && !pids.some(alive), 20_000);
      for (const p of pids) if (alive(p)) process.kill(p, 'SIGKILL');
      return {
        pass: gone,
        observed: gone
          ? `both agents (${pids.join(', ')}) gone`
          : `left running: ${pids.filter(alive).join(', ') || '?'}`,
      };
    },
  },
  {
    point: 12,
    name: '300 failed migrations: history pruned; a 5,120-block guest',
    expected: 'survived',
    async run(lab) {
      const before = (await http(lab.target, 'GET', '/v1/status')).body.length;
      // Each fails at once (nothing listens on port 9); a request that finds bait still busy is retried.
      let accepted = 0;
      for (let i = 0; i < 600 && accepted < 300; i++) {
        const r = await http(lab.target, 'POST', '/v1/migrations', {
          guest: 'bait',
          destination: '127.0.0.1:9',
        });
        if (ok(r)) accepted++;
        else await sleep(5);
      }
      await sleep(500);
      const status = await http(lab.target, 'GET', '/v1/status');
      const kept = ok(status) ? json<{ outgoing: unknown[] }>(status).outgoing.length : -1;
      // 20 MiB in 4 KiB blocks: more blocks than a HELLO may carry.
      let worst = 0;
      let creating = true;
      const probe = (async () => {
        while (creating) {
          worst = Math.max(worst, (await http(lab.target, 'GET', '/v1/status')).ms);
          await sleep(20);
        }
      })();
      const made = await startGuest(lab.target, 'attack-blocks', {
        ...WITNESS,
        ramBytes: 20 * MiB,
        blockBytes: 4096,
      } as GuestConfig);
      creating = false;
      await probe;
      let blocks = `creation HTTP ${made.status}`;
      let blocksOk = !ok(made);
      if (ok(made)) {
        const m = await migrate(lab.target, 'attack-blocks', lab.dest.address, {}, 30_000);
        blocks += `, migration ${m.status} ${m.code ?? ''}`;
        blocksOk = m.status === 'completed';
        await http(m.status === 'completed' ? lab.dest : lab.target, 'DELETE', '/v1/guests/attack-blocks');
      }
      return {
        pass: kept >= 0 && kept < accepted && blocksOk && worst < 1000,
        observed: `kept ${kept} of ${accepted} failures, status ${(before / 1024).toFixed(0)}→${(status.body.length / 1024).toFixed(0)} KiB; ${blocks}; API ≤ ${worst.toFixed(0)} ms`,
      };
    },
  },
];

// ---------------------------------------------------------------------------------------------------------------

interface Row {
  point: number;
  name: string;
  expected: string;
  observed: string;
  result: 'PASS' | 'FAIL';
  ms: number;
}

async function runCase(c: Case, lab: Lab): Promise<Row> {
  const t0 = performance.now();
  say(`[${c.point}] ${c.name}...`);
  let outcome: Outcome;
  try {
    let timer: NodeJS.Timeout | undefined;
    outcome = await Promise.race([
      c.run(lab),
      new Promise<Outcome>((resolve) => {
        timer = setTimeout(
          () => resolve({ pass: false, observed: `did not finish in ${CASE_MS / 1000} s` }),
          CASE_MS,
        );
      }),
    ]).finally(() => clearTimeout(timer));
  } catch (err) {
    outcome = { pass: false, observed: `error: ${short(err instanceof Error ? err.message : String(err))}` };
  }
  return {
    point: c.point,
    name: c.name,
    expected: c.expected,
    observed: outcome.observed,
    result: outcome.pass ? 'PASS' : 'FAIL',
    ms: performance.now() - t0,
  };
}

/** After the attack: the agent answers, the witness still runs, migrates, and equals a guest that never moved. */
async function nothingLost(lab: Lab, stepsBefore: number): Promise<Row[]> {
  const rows: Row[] = [];
  const row = (name: string, pass: boolean, observed: string) =>
    rows.push({ point: 0, name, expected: 'survived', observed, result: pass ? 'PASS' : 'FAIL', ms: 0 });
  const status = await http(lab.target, 'GET', '/v1/status');
  row(
    'the agent still serves its API',
    ok(status) && alive(lab.target.pid),
    `HTTP ${status.status} in ${status.ms.toFixed(0)} ms`,
  );
  const s1 = (await guestSteps(lab.target, 'witness')) ?? -1;
  await sleep(500);
  const s2 = (await guestSteps(lab.target, 'witness')) ?? -1;
  row('the witness guest still runs', s2 > s1 && s1 > stepsBefore, `steps ${stepsBefore} → ${s1} → ${s2}`);
  const m = await migrate(lab.target, 'witness', lab.dest.address, {}, 60_000);
  row(
    'the witness migrates, verified',
    m.status === 'completed' && m.verified === true,
    `${m.status} ${m.code ?? ''}`,
  );
  if (m.status !== 'completed') return rows;
  const paused = await http(lab.dest, 'POST', '/v1/guests/witness/pause');
  const state = await http(lab.dest, 'GET', '/v1/guests/witness/state');
  if (!ok(paused) || !ok(state)) {
    row(
      'the witness equals a guest that never moved (oracle)',
      false,
      `pause HTTP ${paused.status}, state HTTP ${state.status}: ${short(state.body, 40)}`,
    );
    return rows;
  }
  const steps = json<{ vcpus: { step: number }[] }>(state).vcpus.map((v) => v.step);
  const ram = await new Promise<Buffer>((resolve) => {
    const { host, port } = hostPort(lab.dest.address);
    const req = request(
      {
        host,
        port,
        path: '/v1/guests/witness/ram',
        headers: lab.dest.token ? { authorization: `Bearer ${lab.dest.token}` } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(res.statusCode === 200 ? Buffer.concat(chunks) : Buffer.alloc(0)));
      },
    );
    req.on('error', () => resolve(Buffer.alloc(0)));
    req.end();
  });
  const ref = await referenceRam(WITNESS, steps);
  let first = ram.length === ref.bytes ? -1 : 0;
  for (let p = 0; first < 0 && p < ref.pageCount; p++) {
    const off = p * ref.pageSize;
    if (Buffer.compare(ram.subarray(off, off + ref.pageSize), ref.page(p)) !== 0) first = p;
  }
  row(
    'the witness equals a guest that never moved (oracle)',
    first < 0,
    first < 0
      ? `${ram.length / MiB} MiB equal at steps ${steps.join('/')}`
      : `differs at page ${first} (${ram.length} B read)`,
  );
  return rows;
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'livemig-attack-'));
  try {
    const flags = await agentFlags();
    const certs = makeCerts({ dir: join(dir, 'certs'), names: ['a', 'b'] });
    const maxIncoming = 2;
    const timeoutFlag = [...flags].find((f) => /^--(first-byte|idle|hello)[a-z-]*timeout$/.test(f));
    const firstByteMs = timeoutFlag ? 2000 : 0;
    const base = ['--max-incoming', String(maxIncoming), '--max-ram', '64MiB', '--dashboard'];
    const budget = flags.has('--max-ram-total') ? ['--max-ram-total', '96MiB'] : [];
    const partial = { dir, flags };
    // The timeout flag's value as a duration, else as seconds; without the extras if this build refuses both.
    const tries = [
      [...base, ...budget, ...(timeoutFlag ? [timeoutFlag, '2s'] : [])],
      ...(timeoutFlag ? [[...base, ...budget, timeoutFlag, '2']] : []),
      base,
    ];
    let target: (ChildAgent & Api) | undefined;
    let targetArgs: string[] = base;
    for (const t of tries) {
      targetArgs = t;
      target = await startLabAgent(partial, 'target', t).catch((err: Error) => {
        say(`agent ${t.join(' ')}: ${short(err.message, 120)}`);
        return undefined;
      });
      if (target) break;
    }
    if (!target) throw new Error('the target agent does not start');
    const dest = await startLabAgent(partial, 'dest', ['--quiet']);
    const lab: Lab = {
      ...partial,
      target,
      dest,
      certs,
      tokenFile: target.token ? join(dir, 'target.token') : undefined,
      limits: { maxIncoming, firstByteMs: targetArgs.includes(timeoutFlag ?? '-') ? firstByteMs : 0 },
    };
    say(
      `target agent ${target.address} (pid ${target.pid}) ${targetArgs.join(' ')}; destination ${dest.address}`,
    );
    const w = await startGuest(target, 'witness', WITNESS);
    const b = await startGuest(target, 'bait', { ...WITNESS, ramBytes: MiB });
    if (!ok(w) || !ok(b))
      throw new Error(`cannot start the witness guest: HTTP ${w.status} ${short(w.body)}`);
    await sleep(300);
    const stepsBefore = (await guestSteps(target, 'witness')) ?? 0;

    const rows: Row[] = [];
    for (const c of CASES) if (!ONLY || ONLY.has(c.point)) rows.push(await runCase(c, lab));
    rows.push(...(await nothingLost(lab, stepsBefore)));

    const failed = rows.filter((r) => r.result === 'FAIL').length;
    if (JSON_OUT) process.stdout.write(`${JSON.stringify({ quick: QUICK, rows, failed }, null, 2)}\n`);
    else {
      const t = new Table({
        head: ['#', 'case', 'expected', 'observed', 'result'],
        colWidths: [4, 44, 10, 62, 8],
        wordWrap: true,
        style: { head: [], border: [] },
      });
      for (const r of rows) t.push([r.point || '', r.name, r.expected, r.observed, r.result]);
      process.stdout.write(
        `${t.toString()}\n${rows.length - failed} of ${rows.length} PASS${failed ? `, ${failed} FAIL` : ''}\n`,
      );
    }
    return failed ? 1 : 0;
  } finally {
    await stopSpawnedAgents(3000);
    rmSync(dir, { recursive: true, force: true });
  }
}

// Exit explicitly: a case that timed out may still hold a socket or a timer.
main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`attack: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
