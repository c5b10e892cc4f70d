/**
 * Workloads: CPU-utilisation traces, one per VM, one integer percentage per scheduling interval.
 * The PlanetLab loader reads any folder of that format (one file per VM, one value per line), mapping VMs to files
 * in byte-order of their names (CloudSim uses the unsorted directory listing, quirk Q3). Synthetic workloads are
 * seeded and have the same shape.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { Rng } from './stats.js';

export interface Workload {
  /** Name of the workload (day folder name or synthetic description). */
  readonly name: string;
  /** One name per VM (trace file names for PlanetLab). */
  readonly vmNames: readonly string[];
  readonly vms: number;
  /** Values per VM (288 for a PlanetLab day). */
  readonly samplesPerVm: number;
  /** Utilisation in percent, VM-major: samples[vm · samplesPerVm + k]. */
  readonly samples: Uint8Array;
}

function byteOrder(a: string, b: string): number {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return Buffer.compare(x, y);
}

/** Loads a folder of traces. Every file must hold the same number of lines, each an integer 0–100. */
export async function loadTraceDir(dir: string, samplesPerVm = 288): Promise<Workload> {
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true })).filter((d) => d.isFile()).map((d) => d.name);
  } catch (err) {
    throw new UsageError(`cannot read trace folder ${dir}: ${(err as Error).message}`, '--day');
  }
  names = names.filter((n) => !n.startsWith('.')).sort(byteOrder);
  if (names.length === 0) throw new UsageError(`trace folder ${dir} has no files`, '--day');
  const samples = new Uint8Array(names.length * samplesPerVm);
  await Promise.all(
    names.map(async (name, vm) => {
      const text = await readFile(join(dir, name), 'latin1');
      let k = 0;
      let value = -1;
      const base = vm * samplesPerVm;
      for (let i = 0; i <= text.length; i++) {
        const c = i < text.length ? text.charCodeAt(i) : 10;
        if (c >= 48 && c <= 57) {
          value = (value < 0 ? 0 : value * 10) + (c - 48);
        } else if (c === 10 || c === 13) {
          if (value >= 0) {
            if (k < samplesPerVm) samples[base + k] = Math.min(value, 100);
            k++;
            value = -1;
          }
        } else if (c !== 32 && c !== 9) {
          throw new UsageError(`trace ${join(dir, name)} has a non-numeric line ${k + 1}`, '--day');
        }
      }
      if (k < samplesPerVm) {
        throw new UsageError(`trace ${join(dir, name)} has ${k} values, expected ${samplesPerVm}`, '--day');
      }
    }),
  );
  const parts = dir.split(/[\\/]/).filter(Boolean);
  return { name: parts[parts.length - 1] ?? dir, vmNames: names, vms: names.length, samplesPerVm, samples };
}

/**
 * A synthetic day shaped like PlanetLab: mostly light VMs with a heavy tail, a diurnal swing, noise, and idle
 * stretches (about 15 % zero samples). Deterministic for a seed.
 */
export function syntheticWorkload(opts: { vms: number; seed?: number; samplesPerVm?: number }): Workload {
  const { vms } = opts;
  const spv = opts.samplesPerVm ?? 288;
  const rng = new Rng(opts.seed ?? 1);
  const samples = new Uint8Array(vms * spv);
  for (let v = 0; v < vms; v++) {
    // Mean utilisation drawn from an exponential-ish distribution (mean ≈ 12 %).
    const mean = Math.min(90, -12 * Math.log(1 - rng.next() * 0.999));
    const phase = rng.next() * 2 * Math.PI;
    const swing = rng.next() * 0.6;
    const idleProb = rng.next() < 0.3 ? 0.5 : 0.02;
    let level = mean;
    const base = v * spv;
    for (let k = 0; k < spv; k++) {
      level += (mean - level) * 0.2 + (rng.next() - 0.5) * mean * 0.5;
      const diurnal = 1 + swing * Math.sin(phase + (2 * Math.PI * k) / spv);
      let u = Math.round(Math.max(0, level * diurnal));
      if (rng.next() < idleProb) u = 0;
      samples[base + k] = Math.min(99, u);
    }
  }
  return {
    name: `synthetic-${vms}-seed${opts.seed ?? 1}`,
    vmNames: Array.from({ length: vms }, (_, i) => `vm${i}`),
    vms,
    samplesPerVm: spv,
    samples,
  };
}

/** Mean and standard deviation of all samples, in percent (20110303: 12.31 %, 17.09 %). */
export function workloadStats(w: Workload): { mean: number; stdev: number } {
  let s = 0;
  let s2 = 0;
  const n = w.samples.length;
  for (let i = 0; i < n; i++) {
    const x = w.samples[i]!;
    s += x;
    s2 += x * x;
  }
  const mean = s / n;
  return { mean, stdev: Math.sqrt(s2 / n - mean * mean) };
}
