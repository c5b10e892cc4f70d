/**
 * Workloads: CPU-utilisation traces, one per VM, one integer percentage per scheduling interval.
 * The CloudSim loader reads any folder of that format (one file per VM, one value per line), mapping VMs to files
 * in byte-order of their names (CloudSim uses the unsorted directory listing, quirk Q3). The bundled PlanetLab days
 * (bundled.ts), trace packs (tracepack.ts) and CSV traces (csv.ts) give the same `Workload`; sources.ts picks the
 * reader for a name or path. Synthetic workloads are seeded and have the same shape.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { Rng } from './stats.js';
import { TraceFormatError } from './trace-error.js';

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

/**
 * Loads a folder in CloudSim's PlanetLab format: one file per VM, one integer 0–100 per line, one line per 5-minute
 * sample. As CloudSim's reader, it takes the first `samplesPerVm` lines of each file (288 = one day) and ignores any
 * further ones; blank lines are allowed only at the end. Anything else is a `TraceFormatError` naming file and line.
 */
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
      const file = join(dir, name);
      const text = await readFile(file, 'latin1');
      parseCloudSimTrace(text, file, samples.subarray(vm * samplesPerVm, (vm + 1) * samplesPerVm));
    }),
  );
  const parts = dir.split(/[\\/]/).filter(Boolean);
  return { name: parts[parts.length - 1] ?? dir, vmNames: names, vms: names.length, samplesPerVm, samples };
}

/** Parses one CloudSim trace file into `out` (its length is the number of samples wanted). */
export function parseCloudSimTrace(text: string, file: string, out: Uint8Array): void {
  const want = out.length;
  let k = 0;
  let blankAt = 0; // first line of a run of blank lines: allowed only if nothing follows
  let line = 0;
  let start = 0;
  while (start < text.length && k < want) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    line++;
    const cell = text.slice(start, end).trim();
    start = end + 1;
    if (cell === '') {
      if (blankAt === 0) blankAt = line;
      continue;
    }
    if (blankAt > 0) {
      throw new TraceFormatError(
        { file, line: blankAt },
        `empty line; expected one integer CPU utilisation 0–100 per line`,
      );
    }
    if (!/^\d+$/.test(cell)) {
      throw new TraceFormatError(
        { file, line },
        `"${cell.slice(0, 40)}" is not an integer; expected one whole CPU utilisation percentage 0–100 per line`,
      );
    }
    const value = Number(cell);
    if (value > 100) {
      throw new TraceFormatError({ file, line }, `${cell} % is out of range; expected 0–100`);
    }
    out[k++] = value;
  }
  if (k === 0) {
    throw new TraceFormatError({ file }, `the file is empty; expected ${want} lines, one integer 0–100 each`);
  }
  if (k < want) {
    throw new TraceFormatError(
      { file },
      `${k} values, expected ${want} (one per 5-minute interval; CloudSim's format holds one day, 288 lines)`,
    );
  }
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
