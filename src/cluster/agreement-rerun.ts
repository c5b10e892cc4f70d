/**
 * The simulator side of a saved cluster run, recomputed: `livemig sim --against DIR` reads the `cluster.json` a
 * `livemig cluster --out DIR` run wrote and reruns the simulator ladder (src/cluster/agreement.ts) with the current
 * code on the same hosts, VMs, window, policy, seed and limits. The cluster's side is what the run measured; the
 * simulator is deterministic, so a change to it is judged on the same runs without running the cluster again.
 */
import { z } from 'zod';
import { UsageError } from '../errors.js';
import { isPlanetlabDay, loadPlanetlabDay, type SimOptions, type Workload } from '../sim/index.js';
import { type Agreement, agreementFor, clusterSimOptions, type SimVariant } from './agreement.js';
import type { ClusterMigration } from './metrics.js';
import { DEFAULT_CLUSTER, SCHEDULING_INTERVAL } from './options.js';
import { clusterWorkload } from './workload.js';

const num = z.number().finite();
const pair = z.tuple([z.number().int(), z.number().int()]);

/** A planning round as `livemig cluster` records it (src/cluster/run.ts `ClusterDecision`). */
const decisionSchema = z.object({
  vmHost: z.array(z.number().int()),
  vmUtilisation: z.array(num),
  requested: z.array(num),
  overloaded: z.array(z.number().int()),
  migrations: z.array(pair),
  inFlight: z.array(pair),
  arrivals: z.array(z.number().int()).optional(),
  vmCpu: z.array(num).optional(),
  held: z.array(z.number().int()).optional(),
  tail: z.array(z.number().int()).optional(),
});

const migrationSchema = z
  .object({
    vm: z.number().int().nonnegative(),
    guest: z.string(),
    from: z.number().int(),
    to: z.number().int(),
    interval: z.number().int(),
    status: z.string(),
    totalTimeMs: num,
    downtimeMs: num,
    transferredBytes: num,
    verified: z.boolean(),
    traceTime: num,
    traceDowntime: num,
    modelTimeMs: num,
    slowdown: num,
    calibration: z
      .object({
        round1Bytes: num,
        round1BytesPerSec: num,
        dirtyRate: num,
        resendRatio: num,
        setupMs: num,
        roundsMs: num,
        downtimeLimitMs: num,
        maxRounds: num,
      })
      .optional(),
  })
  .passthrough();

/** What of a saved `cluster.json` the agreement needs (the rest is kept as it is). */
export const savedClusterSchema = z
  .object({
    policy: z.string(),
    day: z.string(),
    window: z.object({
      startSec: z.number().int().nonnegative(),
      durationSec: z.number().int().positive(),
      intervals: z.number().int().positive(),
    }),
    speed: num,
    hosts: z.array(z.object({ index: z.number().int() }).passthrough()).min(1),
    vms: z.array(z.object({ ramMiB: num, utilisation: z.array(num) }).passthrough()).min(1),
    intervals: z.array(
      z
        .object({
          activeHosts: z.number().int(),
          started: z.number().int(),
          demandMeasured: num,
          demandTrace: num,
          gain: num,
          decision: decisionSchema.optional(),
        })
        .passthrough(),
    ),
    migrations: z.array(migrationSchema),
    metrics: z.object({
      energyKWh: num,
      migrations: num,
      slatah: num,
      pdm: num,
      slav: num,
      esv: num,
      hostShutdowns: num,
      meanMigrationTime: num,
      meanDowntime: num,
      migrationBytes: num,
    }),
    deferred: z.number().int().nonnegative(),
    // Runs saved before these were recorded used the defaults.
    seed: z.number().int().default(DEFAULT_CLUSTER.seed),
    migrationLimits: z
      .object({ perHost: z.number().int().positive(), perCluster: z.number().int().positive() })
      .default({
        perHost: DEFAULT_CLUSTER.parallelOutboundPerHost,
        perCluster: DEFAULT_CLUSTER.parallelPerCluster,
      }),
    wallMs: num,
  })
  .passthrough();

export type SavedCluster = z.infer<typeof savedClusterSchema>;

/** A saved run, checked: a `UsageError` that names the first bad field. */
export function parseSavedCluster(json: unknown, source = 'cluster.json'): SavedCluster {
  const r = savedClusterSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new UsageError(
      `${source}: not a livemig cluster report (${issue.path.join('.') || 'top level'}: ${issue.message}); ` +
        'give the folder a `livemig cluster --out DIR` run wrote',
      '--against',
    );
  }
  return r.data;
}

/**
 * Reruns the simulator side of a saved run; `sim` overrides single simulator options (e.g. `sampling`) in every
 * run of the ladder.
 */
export async function rerunAgreement(
  run: SavedCluster,
  sim: Partial<SimOptions> = {},
): Promise<{ agreement: Agreement; model: SimVariant }> {
  const { workload, options } = await rerunSetting(run, sim);
  let demandMeasured = 0;
  let demandTrace = 0;
  for (const i of run.intervals) {
    demandMeasured += i.demandMeasured;
    demandTrace += i.demandTrace;
  }
  return agreementFor({
    trace: workload,
    options,
    metrics: run.metrics,
    migrations: run.migrations as ClusterMigration[],
    vms: run.vms,
    demandMeasured,
    demandTrace,
    deferred: run.deferred,
    decisions: run.intervals.map((i) => i.decision),
  });
}

/** The window's traces and the simulator's options of a saved run (`sim` overrides single options). */
export async function rerunSetting(
  run: SavedCluster,
  sim: Partial<SimOptions> = {},
): Promise<{ workload: Workload; options: SimOptions }> {
  if (!isPlanetlabDay(run.day)) {
    throw new UsageError(
      `the run replayed "${run.day}", not a bundled PlanetLab day: only bundled days can be rerun from cluster.json`,
      '--against',
    );
  }
  const day = await loadPlanetlabDay(run.day);
  const { workload } = clusterWorkload(day, run.vms.length, run.window.startSec, run.window.durationSec);
  const options: SimOptions = {
    ...clusterSimOptions({
      policy: run.policy.toLowerCase(),
      hosts: run.hosts.length,
      seed: run.seed,
      interval: SCHEDULING_INTERVAL,
      migrationLimits: run.migrationLimits,
    }),
    ...sim,
  };
  return { workload, options };
}
