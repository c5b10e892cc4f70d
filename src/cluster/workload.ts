/**
 * The miniature's workload: which trace VMs, which window, and what each guest runs.
 *
 * VMs: M VMs spread evenly over the day's busiest quarter (by mean utilisation, ties by index), so that a handful of
 * VMs has something to consolidate (an even spread over all 1 052 PlanetLab VMs averages 12 % and a 4-host miniature
 * then never migrates). Window: samples [start/300, start/300 + duration/300) of each. Both are deterministic.
 *
 * Guests: CPU-bound workloads that never sleep between writes (their CPU use is what the CAP lets through, so it
 * follows the trace), with a memory behaviour per VM: twolf (small working set, few writes), kv-read (a zipf store,
 * a fifth of the steps write), twolf-wide (annealing over half the RAM, a third of the moves write), zipf (writes
 * every step: the hot one).
 */
import type { GuestConfig } from '../guest/index.js';
import type { Workload } from '../sim/index.js';
import { SCHEDULING_INTERVAL } from './options.js';

export const CLUSTER_WORKLOADS = ['twolf', 'kv-read', 'twolf-wide', 'zipf'] as const;
export type ClusterWorkload = (typeof CLUSTER_WORKLOADS)[number];

const MiB = 1024 * 1024;

/** The window of M VMs of `day` (see the file comment) as a simulator workload, and the day's VM indices. */
export function clusterWorkload(
  day: Workload,
  vms: number,
  startSec: number,
  durationSec: number,
): { workload: Workload; picked: number[] } {
  const spv = day.samplesPerVm;
  const first = Math.floor(startSec / SCHEDULING_INTERVAL);
  const k = Math.floor(durationSec / SCHEDULING_INTERVAL);
  const means: [number, number][] = [];
  for (let v = 0; v < day.vms; v++) {
    let s = 0;
    for (let i = 0; i < spv; i++) s += day.samples[v * spv + i]!;
    means.push([s / spv, v]);
  }
  means.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  const quarter = Math.max(vms, Math.floor(day.vms / 4));
  const picked = Array.from({ length: vms }, (_, i) => means[Math.floor((i * quarter) / vms)]![1]);
  const samples = new Uint8Array(vms * k);
  for (const [i, v] of picked.entries()) {
    samples.set(day.samples.subarray(v * spv + first, v * spv + first + k), i * k);
  }
  return {
    workload: {
      name: `${day.name}+${startSec}s/${durationSec}s`,
      vmNames: picked.map((v) => day.vmNames[v] ?? `vm${v}`),
      vms,
      samplesPerVm: k,
      samples,
    },
    picked,
  };
}

/** RAM of VM i, MiB: spread over [min, max] by the golden ratio (deterministic, no two neighbours alike). */
export function guestRamMiB(i: number, range: readonly [number, number]): number {
  const [lo, hi] = range;
  const f = (i * 0.6180339887) % 1;
  return lo + Math.round((hi - lo) * f);
}

/** The guest that plays VM i. */
export function guestConfig(i: number, ramMiB: number, workload: string): GuestConfig {
  const ramBytes = ramMiB * MiB;
  const seed = i + 1;
  // The run sets each guest's frequency to its traced utilisation: stalls must sleep, not spin.
  const dvfsStall = 'sleep' as const;
  switch (workload as ClusterWorkload) {
    case 'twolf':
      return { ramBytes, seed, dvfsStall, workload: { name: 'twolf' } };
    case 'kv-read':
      return { ramBytes, seed, dvfsStall, workload: { name: 'kv-read', params: { writeRate: 0 } } };
    case 'twolf-wide':
      return {
        ramBytes,
        seed,
        dvfsStall,
        workload: { name: 'twolf', params: { workingSetBytes: ramBytes / 2, writeProbability: 0.3 } },
      };
    case 'zipf':
      return {
        ramBytes,
        seed,
        dvfsStall,
        workload: { name: 'zipf', params: { writeRate: 0, workingSetBytes: ramBytes / 2 } },
      };
  }
}
