/**
 * Traces end to end, as a user runs them: record a real program with `livemig trace record`, describe it with
 * `trace info`, and migrate a guest replaying a shipped trace with `livemig run --workload trace:FILE --oracle`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli as livemig } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'livemig-trace-e2e-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('livemig trace', () => {
  it('run --workload trace:traces/sqlite-tpcb.lmtrace migrates the replay and the oracle holds', () => {
    const r = livemig([
      'run',
      '--workload',
      'trace:traces/sqlite-tpcb.lmtrace',
      '--ram',
      '8MiB',
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
      oracle: { equal: boolean; steps: number[] };
      guest: { config: { workload: { name: string; params: { traceFile: string } } } };
    };
    expect(report.status).toBe('completed');
    expect(report.verified).toBe(true);
    expect(report.oracle.equal).toBe(true);
    expect(report.oracle.steps[0]).toBeGreaterThan(0);
  });

  it('--trace-pacing: refused with a mean --write-rate, and for a synthetic workload', () => {
    const both = livemig([
      'run',
      '--workload',
      'trace:traces/sqlite-tpcb.lmtrace',
      '--trace-pacing',
      'recorded',
      '--write-rate',
      '100',
    ]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--write-rate sets a mean rate: use it with --trace-pacing mean/);
    const synthetic = livemig(['run', '--workload', 'gap', '--trace-pacing', 'mean']);
    expect(synthetic.code).toBe(2);
    expect(synthetic.stderr).toMatch(/--trace-pacing: only with --workload trace:FILE/);
  });

  it('record -- COMMAND writes a trace that info reads back; errors name the pid or the file', () => {
    const out = join(dir, 'node.lmtrace');
    const rec = livemig([
      'trace',
      'record',
      '--interval',
      '50ms',
      '--duration',
      '0.5',
      '--freeze',
      '--compression',
      'deflate',
      '--json',
      '--out',
      out,
      '--',
      process.execPath,
      '-e',
      'const b = Buffer.alloc(1 << 20, 7); let i = 0; setInterval(() => { b[(i++ * 4096) % b.length]++; }, 5);',
    ]);
    expect(rec.code).toBe(0);
    const summary = JSON.parse(rec.stdout) as { records: number; pageCount: number; method: string };
    expect(summary.records).toBeGreaterThan(1);
    expect(summary.pageCount).toBeGreaterThan(256);
    expect(['soft-dirty', 'page-compare']).toContain(summary.method);
    const info = livemig(['trace', 'info', '--json', out]);
    expect(info.code).toBe(0);
    const stats = JSON.parse(info.stdout) as {
      records: number;
      dirtyPages: number;
      header: { method: string };
    };
    expect(stats.records).toBe(summary.records);
    expect(stats.dirtyPages).toBeGreaterThan(0);
    expect(stats.header.method).toBe(summary.method);

    // A pid the kernel cannot have is a bad flag (exit 2); a pid that could exist but does not is PROCESS_NOT_FOUND.
    const impossible = livemig(['trace', 'record', '--pid', '999999999', '--out', join(dir, 'x.lmtrace')]);
    expect(impossible.code).toBe(2);
    expect(impossible.stderr).toMatch(/--pid/);
    const exited = spawnSync(process.execPath, ['-e', '0']).pid;
    const gone = livemig(['trace', 'record', '--pid', String(exited), '--out', join(dir, 'x.lmtrace')]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(new RegExp(`PROCESS_NOT_FOUND.*process ${exited}`));
    const missing = livemig(['run', '--workload', `trace:${join(dir, 'missing.lmtrace')}`]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/missing\.lmtrace: cannot read it \(ENOENT\)/);
  }, 180_000); // five CLI processes in a row, one recording for seconds: slow on a loaded 2-core host
});
