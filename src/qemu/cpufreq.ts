/**
 * DVFS on a real host through Linux cpufreq: cap every core's `scaling_max_freq` at a frequency for the length of a
 * migration and put the old values back afterwards. The seed lowered all cores to 1.7 GHz; here the chosen value is
 * the highest available frequency not above the one asked for (`scaling_available_frequencies` when the driver
 * lists them, else the request clamped to `cpuinfo_min_freq`..`cpuinfo_max_freq`). Values in sysfs are kHz.
 * Machines without cpufreq (VMs, this project's CI) fail with RESOURCE_LIMIT saying so.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MigrationError } from '../errors.js';

export interface CpufreqControl {
  /** The frequency every core is now capped at, kHz. */
  readonly khz: number;
  readonly cpus: number;
  /** Write back every core's previous `scaling_max_freq`. */
  restore(): Promise<void>;
}

async function readKhz(path: string): Promise<number | undefined> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  const n = Number(text?.trim());
  return text !== undefined && Number.isFinite(n) && n > 0 ? n : undefined;
}

/** The frequency (kHz) a request of `ghz` becomes on a core offering `available` (or the min..max range). */
export function chooseKhz(ghz: number, available: number[], min: number, max: number): number {
  const want = Math.round(ghz * 1e6);
  if (available.length > 0) {
    const below = available.filter((f) => f <= want).sort((a, b) => b - a);
    return below[0] ?? Math.min(...available);
  }
  return Math.max(min, Math.min(max, want));
}

export async function setCpufreq(ghz: number, root = '/sys/devices/system/cpu'): Promise<CpufreqControl> {
  const entries = await readdir(root).catch(() => [] as string[]);
  const dirs: string[] = [];
  for (const e of entries.filter((x) => /^cpu\d+$/.test(x)).sort()) {
    const dir = join(root, e, 'cpufreq');
    if ((await readKhz(join(dir, 'scaling_max_freq'))) !== undefined) dirs.push(dir);
  }
  if (dirs.length === 0)
    throw new MigrationError(
      'RESOURCE_LIMIT',
      `no cpufreq under ${root} (no cpu*/cpufreq/scaling_max_freq): this host cannot change its cores' frequency; use CAP`,
    );
  const saved: { dir: string; khz: number }[] = [];
  let khz = 0;
  const restore = async () => {
    for (const s of saved)
      await writeFile(join(s.dir, 'scaling_max_freq'), String(s.khz)).catch(() => undefined);
  };
  try {
    for (const dir of dirs) {
      const old = (await readKhz(join(dir, 'scaling_max_freq')))!;
      const min = (await readKhz(join(dir, 'cpuinfo_min_freq'))) ?? 0;
      const max = (await readKhz(join(dir, 'cpuinfo_max_freq'))) ?? old;
      const list = await readFile(join(dir, 'scaling_available_frequencies'), 'utf8').catch(() => '');
      const available = list
        .trim()
        .split(/\s+/)
        .map(Number)
        .filter((n) => Number.isFinite(n) && n > 0);
      khz = chooseKhz(ghz, available, min, max);
      await writeFile(join(dir, 'scaling_max_freq'), String(khz));
      saved.push({ dir, khz: old });
    }
  } catch (err) {
    await restore();
    throw new MigrationError(
      'RESOURCE_LIMIT',
      `cpufreq: cannot write scaling_max_freq: ${(err as Error).message}`,
      {},
      { cause: err },
    );
  }
  return { khz, cpus: dirs.length, restore };
}
