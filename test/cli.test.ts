/**
 * The CLI as a user runs it: `livemig run` starts two agent processes, migrates, verifies and reports; bad flags
 * get one clear line and exit code 2.
 */
import { type AddressInfo, createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { runCli as livemig } from './helpers.js';

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
      expect(r.stderr).toMatch(
        new RegExp(`^livemig: listen 127\\.0\\.0\\.1:${port}: EADDRINUSE: .*--listen`),
      );
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).not.toMatch(/\s+at /);
    } finally {
      busy.close();
    }
  });

  it('migrate to an agent that is not there says what to do', () => {
    const r = livemig(['migrate', '--from', '127.0.0.1:1', '--guest', 'g1', '--to', '127.0.0.1:2']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/CONNECTION_REFUSED.*livemig agent/);
  });
});
