/**
 * `livemig sim --against DIR`: the simulator side of a saved `livemig cluster --out DIR` run, rerun and printed.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { savedClusterRun } from '../src/cluster/saved-run.fixtures.js';
import { runMain } from './helpers.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const saved = {
  ...savedClusterRun({
    policy: 'LR-MMT-1.2',
    utilisation: (v) => 0.1 + v * 0.05,
    demandMeasured: 900,
    demandTrace: 1000,
    energyKWh: 0.23,
    pdm: 0.0002,
    hostShutdowns: 2,
    migration: { vm: 1, from: 1, to: 0, slowdown: 0.02 },
  }),
  seed: 42,
  migrationLimits: { perHost: 2, perCluster: 5 },
};

describe('livemig sim --against', () => {
  it('reruns the simulator ladder of a saved cluster run: the table, JSON, or the docs’ Markdown', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'livemig-against-'));
    dirs.push(dir);
    await writeFile(join(dir, 'cluster.json'), JSON.stringify(saved));
    const text = await runMain(['sim', '--against', dir]);
    expect(text.code).toBe(0);
    expect(text.out).toContain('Agreement (guests delivered 0.90 × their traced CPU)');
    expect(text.out).toContain('sim: trace samples (CloudSim), model');
    expect(text.out).toContain('sim: measured demand and migrations');
    const json = await runMain(['sim', '--against', dir, '--json']);
    const a = JSON.parse(json.out) as { variants: { key: string }[] };
    expect(a.variants.map((v) => v.key)).toEqual([
      'samples',
      'model',
      'measured-migrations',
      'measured-demand',
    ]);
    const md = await runMain(['sim', '--against', dir, '--markdown']);
    expect(md.out).toMatch(/^\*\*LR-MMT-1\.2, 20110306\*\*/);
    expect(md.out).toContain('| metric | cluster | sim: trace samples (CloudSim), model | Δ |');
    // The switches apply to the ladder's trace runs: CloudSim's sampling makes the model rung the samples rung.
    const instant = await runMain([
      'sim',
      '--against',
      dir,
      '--json',
      '--sampling',
      'instant',
      '--switch-off',
      'instant',
    ]);
    const b = JSON.parse(instant.out) as { variants: { sim: { energyKWh: number } }[] };
    expect(b.variants[1]!.sim.energyKWh).toBe(b.variants[0]!.sim.energyKWh);
  }, 60_000);

  it('says what is wrong with a folder that holds no cluster report, and with a bad switch', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'livemig-against-'));
    dirs.push(dir);
    const missing = await runMain(['sim', '--against', dir]);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/--against: cannot read .*cluster\.json \(ENOENT\)/);
    await writeFile(join(dir, 'cluster.json'), JSON.stringify({ ...saved, vms: 'x' }));
    const bad = await runMain(['sim', '--against', dir]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/not a livemig cluster report \(vms: /);
    const sampling = await runMain(['sim', '--against', dir, '--sampling', 'sometimes']);
    expect(sampling.code).toBe(2);
    expect(sampling.err).toMatch(/--sampling: use mean or instant/);
  });

  it('takes several saved runs of one configuration: the simulator against their median, with their range', async () => {
    const runs: string[] = [];
    for (const migrations of [5, 1, 3]) {
      const dir = await mkdtemp(join(tmpdir(), 'livemig-against-'));
      dirs.push(dir);
      runs.push(dir);
      await writeFile(
        join(dir, 'cluster.json'),
        JSON.stringify({ ...saved, metrics: { ...saved.metrics, migrations } }),
      );
    }
    const md = await runMain(['sim', '--against', ...runs]);
    expect(md.code).toBe(0);
    expect(md.out).toContain('**LR-MMT-1.2, 20110306**, 3 runs of one configuration');
    expect(md.out).toMatch(/\| migrations \| 3 \(1–5\) \| 5, 1, 3 \| \d+ \|/);
    const json = await runMain(['sim', '--against', ...runs, '--json']);
    const j = JSON.parse(json.out) as { repeat: { runs: number }; runs: unknown[] };
    expect(j.repeat.runs).toBe(3);
    expect(j.runs).toHaveLength(3);
  }, 60_000);
});
