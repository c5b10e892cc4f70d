import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/main.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function run(args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  const errSpy = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const code = await main(['node', 'livemig', ...args]);
    return { code, out };
  } finally {
    spy.mockRestore();
    errSpy.mockRestore();
  }
}

describe('livemig sim', () => {
  it('runs policies in both modes and writes JSON, CSV and a self-contained HTML report', async () => {
    const out = await mkdtemp(join(tmpdir(), 'livemig-sim-'));
    dirs.push(out);
    const r = await run([
      'sim',
      '--synthetic',
      '60',
      '--hosts',
      '30',
      '--policy',
      'thr-mmt,lr-mmt',
      '--compare',
      '--out',
      out,
      '--no-progress',
    ]);
    expect(r.code).toBe(0);
    expect(r.out).toContain('THR-MMT-0.8');
    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as { mode: string }[];
    expect(results.map((x) => x.mode)).toEqual(['cloudsim', 'cloudsim', 'livemig', 'livemig']);
    const csv = await readFile(join(out, 'results.csv'), 'utf8');
    expect(csv.split('\n')[0]).toContain('energy_kwh');
    expect((await readFile(join(out, 'series.csv'), 'utf8')).split('\n').length).toBeGreaterThan(4 * 280);
    const html = await readFile(join(out, 'report.html'), 'utf8');
    expect(html.match(/<svg/g)!.length).toBeGreaterThanOrEqual(5);
  });

  it('prints JSON with --json and rejects unknown policies with a usage error', async () => {
    const r = await run([
      'sim',
      '--synthetic',
      '20',
      '--hosts',
      '10',
      '--policy',
      'mad-mc',
      '--compat',
      'cloudsim',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const parsed = JSON.parse(r.out) as { policy: string; mode: string }[];
    expect(parsed[0]).toMatchObject({ policy: 'MAD-MC-2.5', mode: 'cloudsim' });
    const bad = await run(['sim', '--synthetic', '20', '--policy', 'foo-bar']);
    expect(bad.code).toBe(2);
  });
});
