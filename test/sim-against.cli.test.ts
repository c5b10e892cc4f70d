/**
 * `livemig sim --against DIR`: the simulator side of a saved `livemig cluster --out DIR` run, rerun and printed.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runMain } from './helpers.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const K = 12;
/** A saved run, the fields the agreement reads: 4 hosts, 8 VMs, the first hour of 20110306, one migration. */
const saved = {
  policy: 'LR-MMT-1.2',
  day: '20110306',
  window: { startSec: 0, durationSec: K * 300, intervals: K },
  speed: 120,
  hosts: [0, 1, 2, 3].map((index) => ({ index })),
  vms: Array.from({ length: 8 }, (_, v) => ({ ramMiB: 32, utilisation: new Array(K).fill(0.1 + v * 0.05) })),
  intervals: Array.from({ length: K }, () => ({
    activeHosts: 2,
    started: 0,
    demandMeasured: 900,
    demandTrace: 1000,
    gain: 0.65,
  })),
  migrations: [
    {
      vm: 1,
      guest: 'vm1',
      from: 1,
      to: 0,
      interval: 2,
      status: 'completed',
      totalTimeMs: 700,
      downtimeMs: 40,
      transferredBytes: 40 * 2 ** 20,
      verified: true,
      traceTime: 84,
      traceDowntime: 4.8,
      modelTimeMs: 260,
      slowdown: 0.02,
    },
  ],
  metrics: {
    energyKWh: 0.23,
    migrations: 1,
    slatah: 0,
    pdm: 0.0002,
    slav: 0,
    esv: 0,
    hostShutdowns: 2,
    meanMigrationTime: 84,
    meanDowntime: 4.8,
    migrationBytes: 40 * 2 ** 20,
  },
  deferred: 0,
  seed: 42,
  migrationLimits: { perHost: 2, perCluster: 5 },
  wallMs: 35_000,
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
});
