/**
 * The CLI as a user runs it: `livemig run` starts two agent processes, migrates, verifies and reports; bad flags
 * get one clear line and exit code 2.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { AgentClient } from '../src/agent/index.js';
import { cliCommand, spawnAgent, spawnAgents } from '../src/agent/spawn.js';
import { main } from '../src/cli/main.js';
import { Command, encodeFrame, encodeJson } from '../src/migration/protocol/index.js';
import { runCli as livemig, sleep, waitFor } from './helpers.js';
import { alive, spawnSlowRun } from './processes.js';

/** The CLI in a child process, without blocking this process (which may be serving the other end). */
function livemigAsync(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { file, execArgv } = cliCommand();
  return new Promise((resolve) => {
    execFile(process.execPath, [...execArgv, file, ...args], { timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
    );
  });
}

describe('livemig CLI', () => {
  it('run --json migrates a guest between two processes and verifies it with the oracle', () => {
    const r = livemig([
      'run',
      '--ram',
      '32MiB',
      '--workload',
      'kv',
      '--write-rate',
      '3000',
      '--warmup',
      '300ms',
      '--xbzrle',
      '--oracle',
      '--json',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as {
      status: string;
      verified: boolean;
      strategy: string;
      oracle: { equal: boolean };
      pages: { raw: number };
      perRound: unknown[];
      xbzrle: { enabled: boolean };
    };
    expect(report.status).toBe('completed');
    expect(report.verified).toBe(true);
    expect(report.oracle.equal).toBe(true);
    expect(report.xbzrle.enabled).toBe(true);
    expect(report.perRound.length).toBeGreaterThan(0);
    for (const key of [
      'totalTimeMs',
      'setupTimeMs',
      'downtimeMs',
      'rounds',
      'ramBytes',
      'transferredBytes',
      'dirtyRatePagesPerSec',
      'throughputMbps',
      'postcopy',
      'cap',
    ]) {
      expect(report).toHaveProperty(key);
    }
  });

  it('run prints a readable report table', () => {
    const r = livemig([
      'run',
      '--ram',
      '16MiB',
      '--workload',
      'idle',
      '--warmup',
      '100ms',
      '--strategy',
      'cold',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/status\s+│\s+completed/);
    expect(r.stdout).toMatch(/verified\s+│\s+yes/);
    expect(r.stdout).toMatch(/downtime/);
  });

  it('bad flags get one line naming the flag and the accepted form, exit code 2', () => {
    const r = livemig(['run', '--ram', 'lots']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--ram: cannot read "lots" as a size/);
    const s = livemig(['run', '--strategy', 'teleport']);
    expect(s.code).not.toBe(0);
    expect(s.stderr).toMatch(/teleport/);
    expect(s.stderr).toMatch(/cold, precopy, postcopy, hybrid/);
  });

  it('--help teaches: commands, flags with defaults, examples', () => {
    const r = livemig(['--help']);
    expect(r.code).toBe(0);
    for (const cmd of ['agent', 'migrate', 'run', 'demo', 'guest']) expect(r.stdout).toContain(cmd);
    const run = livemig(['run', '--help']);
    expect(run.stdout).toMatch(/--downtime-limit/);
    expect(run.stdout).toMatch(/--xbzrle-cache/);
    expect(run.stdout).toMatch(/Examples:/);
  });

  it('a failed migration exits 1 (run), with the failed report still printed', () => {
    // --timeout 1ms: the migration gives up during setup, every time.
    const r = livemig([
      'run',
      '--ram',
      '16MiB',
      '--workload',
      'idle',
      '--warmup',
      '50ms',
      '--timeout',
      '1ms',
      '--json',
    ]);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'failed' });
    expect(r.code).toBe(1);
  });

  it('commander refusals (unknown option, bad choice) are usage errors: exit 2; --help lists the exit codes', () => {
    expect(livemig(['run', '--strategy', 'teleport']).code).toBe(2);
    expect(livemig(['run', '--no-such-flag']).code).toBe(2);
    expect(livemig(['--help']).stdout).toMatch(/Exit codes: 0 success.*1 failed.*2 usage error/s);
  });

  it('an agent on a port in use: one line naming the address and what to do, exit 1, no stack trace', async () => {
    const busy = createServer();
    await new Promise<void>((ok) => busy.listen(0, '127.0.0.1', ok));
    const port = (busy.address() as AddressInfo).port;
    try {
      const r = livemig(['agent', '--listen', `127.0.0.1:${port}`]);
      expect(r.code).toBe(1);
      // Its --dashboard PORT taken: the agent it had started is stopped, the command ends (it used to hang).
      const d = livemig(['agent', '--listen', '127.0.0.1:0', '--dashboard', String(port)], 30_000);
      expect(d.code).toBe(1);
      expect(d.stderr).toMatch(new RegExp(`^livemig: listen 127\\.0\\.0\\.1:${port}: EADDRINUSE`));
      expect(r.stderr).toMatch(
        new RegExp(`^livemig: listen 127\\.0\\.0\\.1:${port}: EADDRINUSE: .*--listen`),
      );
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).not.toMatch(/\s+at /);
    } finally {
      busy.close();
    }
  });

  it('every numeric, size and duration flag is strict: junk, 0 and negatives are refused with exit 2, nothing starts', async () => {
    // In-process (main() refuses before starting anything), so the table stays fast.
    const cases: [string[], RegExp][] = [
      [['agent', '--max-incoming', 'abc'], /--max-incoming: "abc" is not an integer from 1 to 1024/],
      [['agent', '--max-incoming', '0'], /--max-incoming: "0"/],
      [['agent', '--max-incoming', '-1'], /--max-incoming: "-1"/],
      [['agent', '--max-ram', '0'], /--max-ram: "0" is out of range; use 1\.00 MiB to/],
      [['agent', '--listen', '127.0.0.1:99999'], /--listen: "127\.0\.0\.1:99999" is not HOST:PORT/],
      [['sim', '--synthetic', '1e12'], /--synthetic: "1e12" is not an integer from 1 to 1000000/],
      [['sim', '--synthetic', '10', '--xbzrle-ratio', 'x'], /--xbzrle-ratio: "x"/],
      [['sim', '--synthetic', '10', '--pricing', 'guess'], /--pricing: use profile or rate \(got "guess"\)/],
      [
        ['sim', '--synthetic', '10', '--dirty-rate', '32MiB'],
        /describe the papers' model: add --pricing rate/,
      ],
      [['sim', '--synthetic', '10', '--zero-fraction', '2'], /--zero-fraction: "2"/],
      [['sim', '--synthetic', '10', '--profiles', '/nonexistent/p.json'], /--profiles: cannot read/],
      [['run', '--vcpus', '0x2'], /--vcpus: "0x2"/],
      [['run', '--seed', ''], /--seed: ""/],
      [['run', '--warmup', '1e9h'], /--warmup: cannot read/],
      [['run', '--downtime-limit', '0'], /--downtime-limit: "0" is out of range/],
      [['run', '--xbzrle-cache', '0'], /--xbzrle-cache: "0" is out of range/],
      [['run', '--max-rounds', '1.5'], /--max-rounds: "1\.5"/],
      [['predict', '--compression', 'NaN'], /--compression: "NaN"/],
      [['trace', 'record', '--pid', '12abc', '--out', 'x'], /--pid: "12abc"/],
      [['certs', '--out', join(tmpdir(), 'livemig-never'), '--days', '99999999'], /--days: "99999999"/],
      [['experiment', 'codecs', '--repetitions', '0', '--dry-run'], /--repetitions: "0"/],
      [
        ['experiment', 'page-order', '--quick', '--cells', 'nope', '--dry-run'],
        /no cell id contains any of: nope/,
      ],
    ];
    const written: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      written.push(String(chunk));
      return true;
    });
    try {
      for (const [args, message] of cases) {
        written.length = 0;
        const code = await main(['node', 'livemig', ...args]);
        expect({ args, code, stderr: written.join('') }).toMatchObject({
          code: 2,
          stderr: expect.stringMatching(message),
        });
      }
    } finally {
      spy.mockRestore();
    }
  });

  it("a peer's ERROR text is escaped in the agent's log and in the CLI's report: no forged line, no escape sequence", async () => {
    const evil = 'no\n[agent 1] guest g1 stopped (forged)\x1b]0;pwned\x07\x1b[2J';
    // A destination that answers the source's HELLO with an ERROR frame carrying a hostile message.
    const fake = createServer((s) => {
      s.on('error', () => undefined);
      s.once('data', () => s.end(encodeFrame(Command.ERROR, encodeJson({ code: 'VERSION', message: evil }))));
    });
    await new Promise<void>((ok) => fake.listen(0, '127.0.0.1', ok));
    const agent = await spawnAgent('127.0.0.1');
    try {
      await new AgentClient(agent.address).startGuest(
        { ramBytes: 1 << 20, pageSize: 4096, vcpus: 1, seed: 1, workload: { name: 'idle', params: {} } },
        'g1',
      );
      const to = `127.0.0.1:${(fake.address() as AddressInfo).port}`;
      // Asynchronously: the fake destination lives in this process.
      const r = await livemigAsync(['migrate', '--from', agent.address, '--guest', 'g1', '--to', to]);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain('\\x0a[agent 1] guest g1 stopped (forged)\\x1b]0;pwned\\x07');
      expect(r.stdout + r.stderr).not.toMatch(/\p{Cc}(?<!\n)/u);
      await waitFor(async () => agent.log.some((l) => l.includes('pwned')), 20_000, 'the failure in the log');
      expect(agent.log.join('')).not.toMatch(/\p{Cc}/u);
      expect(agent.log.some((l) => l.startsWith('[agent 1]'))).toBe(false);
    } finally {
      await agent.stop();
      fake.close();
    }
  });

  it('migrate to an agent that is not there says what to do', () => {
    const r = livemig(['migrate', '--from', '127.0.0.1:1', '--guest', 'g1', '--to', '127.0.0.1:2']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/CONNECTION_REFUSED.*livemig agent/);
  });
});

/** This process's children that run `livemig agent`. */
function agentChildren(): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (Number(fields[1]) === process.pid && fields[0] !== 'Z' && cmd.includes('agent\0--listen'))
        pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

describe('livemig run reaps both agents on every way out', () => {
  it('a pair whose second agent fails to start stops the first (no half pair left behind)', async () => {
    expect.assertions(2);
    await expect(spawnAgents([{ args: ['--quiet'] }, { args: ['--max-incoming', 'abc'] }])).rejects.toThrow(
      /exited with code 2 before listening.*--max-incoming/,
    );
    expect(agentChildren()).toEqual([]);
  }, 60_000);

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`run killed with ${signal} mid-migration leaves no agent it started running`, async () => {
      const { run, agentPids } = spawnSlowRun();
      const exited = new Promise<number | null>((ok) => run.once('exit', (code) => ok(code)));
      const pids = await waitFor(async () => agentPids(), 60_000, "run's agents");
      await sleep(1000); // the migration has started (50 ms of warm-up)
      expect(pids.every(alive)).toBe(true);
      run.kill(signal);
      const code = await exited;
      if (signal === 'SIGTERM') expect(code).toBe(143);
      // SIGTERM: run stops them before it exits; SIGKILL: their stdin closes and they stop themselves.
      await waitFor(async () => !pids.some(alive), 30_000, `run's agents ${pids.join(', ')} to exit`);
      expect(pids.some(alive)).toBe(false);
    }, 120_000);
  }
});
