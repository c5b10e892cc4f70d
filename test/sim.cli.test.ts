import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runMain } from './helpers.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('livemig sim', () => {
  it('runs policies in both modes and writes JSON, CSV and a self-contained HTML report', async () => {
    const out = await mkdtemp(join(tmpdir(), 'livemig-sim-'));
    dirs.push(out);
    const r = await runMain([
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
    const r = await runMain([
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
    const bad = await runMain(['sim', '--synthetic', '20', '--policy', 'foo-bar']);
    expect(bad.code).toBe(2);
  });

  it('runs a bundled day by name with the CloudSim figures of 20110303 (LR-MMT: 163.48 kWh, 27 859 migrations)', async () => {
    const r = await runMain([
      'sim',
      '--day',
      '20110303',
      '--policy',
      'lr-mmt',
      '--compat',
      'cloudsim',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const [x] = JSON.parse(r.out) as Record<string, number | string>[];
    // Recorded from the original text files of that day (the per-day table in docs/simulator.md).
    expect(x).toMatchObject({
      policy: 'LR-MMT-1.2',
      mode: 'cloudsim',
      workload: '20110303',
      vms: 1052,
      migrations: 27859,
      vmsDeleted: 532,
      hostShutdowns: 5053,
      duplicateMigrations: 2759,
    });
    expect(x!.energyKWh).toBeCloseTo(163.4772170983686, 9);
    expect(x!.slatah).toBeCloseTo(0.05857947786182211, 12);
    expect(x!.pdm).toBeCloseTo(0.0007927465737772619, 12);
  });

  it('--days all runs the ten bundled days (NPA: 2410.8028 kWh each as in CloudSim 3.0.3)', async () => {
    const r = await runMain(['sim', '--days', 'all', '--policy', 'npa', '--compat', 'cloudsim', '--json']);
    expect(r.code).toBe(0);
    const results = JSON.parse(r.out) as { workload: string; energyKWh: number }[];
    expect(results.map((x) => x.workload)).toEqual([
      '20110303',
      '20110306',
      '20110309',
      '20110322',
      '20110325',
      '20110403',
      '20110409',
      '20110411',
      '20110412',
      '20110420',
    ]);
    for (const x of results) expect(x.energyKWh).toBeCloseTo(2410.8028, 6);
  });

  it("still reads a user's folder in CloudSim's format and a CSV file", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'livemig-sim-traces-'));
    dirs.push(dir);
    const day = join(dir, 'myday');
    await mkdir(day);
    for (const [vm, u] of [
      ['a', 30],
      ['b', 60],
      ['c', 10],
    ] as const) {
      await writeFile(join(day, vm), `${Array.from({ length: 288 }, () => u).join('\n')}\n`);
    }
    const r = await runMain(['sim', '--day', day, '--hosts', '4', '--policy', 'thr-mmt', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)[0]).toMatchObject({ workload: 'myday', vms: 3, hosts: 4 });
    const csv = join(dir, 'cluster.csv');
    const rows = Array.from({ length: 24 * 60 }, (_, i) => `${i * 60},${20 + (i % 7)},${i % 50}`);
    await writeFile(csv, `timestamp,web,batch\n${rows.join('\n')}\n`);
    const c = await runMain([
      'sim',
      '--day',
      csv,
      '--interval',
      '1m',
      '--hosts',
      '2',
      '--policy',
      'mad-mmt',
      '--json',
    ]);
    expect(c.code).toBe(0);
    expect(JSON.parse(c.out)[0]).toMatchObject({ workload: 'cluster', vms: 2 });
  });

  it('a bad trace file is one line naming file, line and column, exit code 2, no stack trace', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'livemig-sim-bad-'));
    dirs.push(dir);
    const csv = join(dir, 'bad.csv');
    await writeFile(csv, 'web,db\n10,20\n11,lots\n');
    const r = await runMain(['sim', '--day', csv, '--policy', 'thr-mmt', '--jobs', '2']);
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      `livemig: trace ${csv}, line 3, column 2 (VM "db"): "lots" is not a number; expected CPU utilisation in ` +
        'percent, 0–100\n',
    );
    const unknown = await runMain(['sim', '--day', '20110304']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(
      /^livemig: --day: no bundled PlanetLab day "20110304"; the bundled days are /,
    );
  });
});
