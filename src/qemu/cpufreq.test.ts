import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MigrationError } from '../errors.js';
import { chooseKhz, setCpufreq } from './cpufreq.js';

/** A fake /sys/devices/system/cpu with `n` cores at 2.67 GHz, the i7-920's DVFS states listed. */
function fakeSysfs(n: number, available = '2667000 2400000 2133000 1867000 1733000 1600000'): string {
  const root = mkdtempSync(join(tmpdir(), 'cpufreq-'));
  for (let i = 0; i < n; i++) {
    const dir = join(root, `cpu${i}`, 'cpufreq');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'scaling_max_freq'), '2667000\n');
    writeFileSync(join(dir, 'cpuinfo_max_freq'), '2667000\n');
    writeFileSync(join(dir, 'cpuinfo_min_freq'), '1600000\n');
    if (available) writeFileSync(join(dir, 'scaling_available_frequencies'), `${available} \n`);
  }
  mkdirSync(join(root, 'cpufreq')); // the policy directory is not a core
  return root;
}

describe('cpufreq DVFS', () => {
  it('caps every core at the highest listed frequency not above the request, and restores it', async () => {
    const root = fakeSysfs(2);
    const c = await setCpufreq(1.7, root);
    expect(c.khz).toBe(1_600_000);
    expect(c.cpus).toBe(2);
    const c2 = await setCpufreq(1.75, root);
    expect(c2.khz).toBe(1_733_000);
    expect(readFileSync(join(root, 'cpu1', 'cpufreq', 'scaling_max_freq'), 'utf8')).toBe('1733000');
    await c2.restore();
    await c.restore();
    expect(readFileSync(join(root, 'cpu0', 'cpufreq', 'scaling_max_freq'), 'utf8')).toBe('2667000');
  });

  it('without a frequency list, clamps to cpuinfo min..max', () => {
    expect(chooseKhz(1.2, [], 1_600_000, 2_667_000)).toBe(1_600_000);
    expect(chooseKhz(2, [], 1_600_000, 2_667_000)).toBe(2_000_000);
    expect(chooseKhz(1, [2_000_000, 3_000_000], 0, 0)).toBe(2_000_000);
  });

  it('a host without cpufreq fails with RESOURCE_LIMIT saying so', async () => {
    const err = await setCpufreq(1.7, mkdtempSync(join(tmpdir(), 'nocpufreq-'))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as MigrationError).code).toBe('RESOURCE_LIMIT');
    expect((err as Error).message).toMatch(/no cpufreq/);
  });
});
