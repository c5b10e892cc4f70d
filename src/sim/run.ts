/**
 * Running many simulations: jobs (policy × day × mode) described by plain data so they can cross a worker-thread
 * boundary, a pool that spreads them over N worker threads, and the ten-day medians the paper reports.
 */

import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  type MigrationPricing,
  type PolicySpec,
  planetlabDatacenter,
  type SimFixes,
  type SimMode,
} from './config.js';
import { type SimResult, simulate } from './engine/index.js';
import type { SimProfileSet } from './profiles.js';
import { loadTraceSourceCached, type TraceSource } from './sources.js';
import { syntheticWorkload, type Workload } from './workload.js';

/** One run, as plain data. */
export interface SimJob {
  /** Traces (a bundled day, a folder, a CSV file or a pack: sources.ts) or a synthetic workload. */
  readonly workload: TraceSource | { readonly synthetic: { vms: number; seed: number } };
  /** Number of PlanetLab hosts (G4/G5 alternating); default 800. */
  readonly hosts?: number;
  readonly mode: SimMode;
  readonly policy: PolicySpec;
  readonly seed?: number;
  readonly pricing?: Partial<MigrationPricing>;
  /** `profile` pricing: the guest profiles (default: the bundled set). */
  readonly profiles?: SimProfileSet;
  readonly placementCandidates?: number;
  readonly capacityChecks?: 'initial' | 'always' | 'never';
  readonly peCheck?: 'vm' | 'demand';
  readonly fixes?: Partial<SimFixes>;
  readonly series?: boolean;
  readonly migrationLog?: boolean;
  /** `SimOptions.sampling` (default: the mode's). */
  readonly sampling?: 'instant' | 'mean';
  /** `SimOptions.switchOff` (default: the mode's). */
  readonly switchOff?: 'instant' | 'step';
}

const synthetic = new Map<string, Workload>();

function workloadOf(job: SimJob): Promise<Workload> {
  const spec = job.workload;
  if (!('synthetic' in spec)) return loadTraceSourceCached(spec);
  const key = JSON.stringify(spec);
  let w = synthetic.get(key);
  if (!w) {
    w = syntheticWorkload(spec.synthetic);
    synthetic.set(key, w);
  }
  return Promise.resolve(w);
}

/** Runs one job in this thread. */
export async function runJob(job: SimJob): Promise<SimResult> {
  const w = await workloadOf(job);
  const r = simulate(w, {
    mode: job.mode,
    policy: job.policy,
    datacenter: planetlabDatacenter(job.hosts ?? 800),
    ...(job.seed !== undefined ? { seed: job.seed } : {}),
    ...(job.pricing ? { pricing: job.pricing } : {}),
    ...(job.profiles ? { profiles: job.profiles } : {}),
    ...(job.placementCandidates !== undefined ? { placementCandidates: job.placementCandidates } : {}),
    ...(job.capacityChecks ? { capacityChecks: job.capacityChecks } : {}),
    ...(job.peCheck ? { peCheck: job.peCheck } : {}),
    ...(job.fixes ? { fixes: job.fixes } : {}),
    ...(job.series !== undefined ? { series: job.series } : {}),
    ...(job.migrationLog ? { migrationLog: true } : {}),
    ...(job.sampling ? { sampling: job.sampling } : {}),
    ...(job.switchOff ? { switchOff: job.switchOff } : {}),
  });
  return { ...r, workload: w.name };
}

/**
 * Starts a simulation worker: the built `.js` directly, or — from TypeScript source (tests, `node --import tsx`) —
 * a small boot script that registers tsx inside the worker first, because Node 20 ignores `--import tsx` in a
 * worker's execArgv. (~200 ms per worker; a simulation runs for longer.)
 */
export function startSimWorker(): Worker {
  const fromSource = import.meta.url.endsWith('.ts');
  const url = new URL(fromSource ? './worker.ts' : './worker.js', import.meta.url);
  if (!fromSource) return new Worker(fileURLToPath(url));
  const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(boot, { eval: true });
}

/**
 * Runs jobs on up to `jobs` worker threads (1 = in this thread), in submission order for the results.
 * `onDone` is called after each job (for progress bars).
 */
export async function runJobs(
  list: readonly SimJob[],
  opts: { jobs?: number; onDone?: (done: number, total: number, result: SimResult) => void } = {},
): Promise<SimResult[]> {
  const n = Math.max(1, Math.min(opts.jobs ?? 1, list.length, availableParallelism() * 2));
  const results: SimResult[] = new Array(list.length);
  let done = 0;
  if (n === 1) {
    for (let i = 0; i < list.length; i++) {
      results[i] = await runJob(list[i]!);
      opts.onDone?.(++done, list.length, results[i]!);
    }
    return results;
  }
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      const worker = startSimWorker();
      try {
        while (next < list.length) {
          const i = next++;
          results[i] = await new Promise<SimResult>((resolve, reject) => {
            const onMessage = (m: { ok: true; result: SimResult } | { ok: false; error: string }) => {
              worker.off('error', onError);
              if (m.ok) resolve(m.result);
              else reject(new Error(m.error));
            };
            const onError = (err: Error) => {
              worker.off('message', onMessage);
              reject(err);
            };
            worker.once('message', onMessage);
            worker.once('error', onError);
            worker.postMessage(list[i]);
          });
          opts.onDone?.(++done, list.length, results[i]!);
        }
      } finally {
        await worker.terminate();
      }
    }),
  );
  return results;
}

/** Median of numbers (mean of the two middle ones for an even count). */
export function medianOf(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Metrics the paper reports, as medians over runs (days) of one policy. */
export function medians(results: readonly SimResult[]): {
  energyKWh: number;
  migrations: number;
  slatah: number;
  pdm: number;
  slav: number;
  esv: number;
} {
  const m = (f: (r: SimResult) => number) => medianOf(results.map(f));
  return {
    energyKWh: m((r) => r.energyKWh),
    migrations: m((r) => r.migrations),
    slatah: m((r) => r.slatah),
    pdm: m((r) => r.pdm),
    slav: m((r) => r.slav),
    esv: m((r) => r.esv),
  };
}
