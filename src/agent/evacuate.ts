/**
 * Host evacuation (POST /v1/evacuate, `livemig evacuate`): every guest of this agent is migrated to one of the given
 * destinations, K at a time, in an order that finishes soonest with the least downtime.
 *
 * The `smart` order prices each guest with the pre-copy model (src/migration/model.ts) from its RAM, working set
 * and a dirty rate measured over a short window (steps per second × writes per step), then:
 * - runs them shortest predicted time first (SPT: it minimises the sum of completion times, and a small guest
 *   waiting behind a large one is downtime-free time wasted);
 * - gives a guest that pre-copy cannot bring under the downtime limit XBZRLE, and one that XBZRLE cannot save
 *   either post-copy (downtime bounded by the device state, not the dirty rate), and puts those last, so the hot
 *   guests do not share bandwidth with the many cheap ones.
 * The naive orders (`id`, `all-at-once`) run the same migrations with the caller's options unchanged, for comparison.
 * Destinations are filled greedily: each guest goes to the destination with the least RAM assigned so far.
 */
import { z } from 'zod';
import { UsageError } from '../errors.js';
import { DEFAULT_PARAMS, type GuestConfig, type WorkloadName } from '../guest/config.js';
import { predictPrecopy } from '../migration/model.js';
import {
  DEFAULT_OPTIONS,
  type MigrationOptions,
  migrationOptionsSchema,
  PRESETS,
  type Preset,
} from '../migration/options.js';
import type { MigrationReport } from '../migration/stats.js';
import type { GuestInfo } from './guests.js';

export const EVACUATION_ORDERS = ['smart', 'id', 'all-at-once'] as const;
export type EvacuationOrder = (typeof EVACUATION_ORDERS)[number];

export interface EvacuationRequest {
  /** Destination agents (HOST:PORT), at least one. */
  to: string[];
  /** Migrations at once (all-at-once ignores it). */
  maxParallel: number;
  order: EvacuationOrder;
  options: Partial<MigrationOptions>;
  preset?: Preset;
}

const evacuationRequestSchema = z.strictObject({
  to: z.array(z.string().min(3, 'a HOST:PORT string').max(300)).min(1, 'at least one destination'),
  maxParallel: z.number().int('an integer').min(1).max(64).optional(),
  order: z.enum(EVACUATION_ORDERS).optional(),
  options: migrationOptionsSchema.partial().optional(),
  preset: z.enum(PRESETS).optional(),
});

/** POST /v1/evacuate: `{to: [HOST:PORT…], maxParallel?: 1..64, order?: smart|id|all-at-once, options?, preset?}`. */
export function parseEvacuationRequest(body: unknown): EvacuationRequest {
  const r = evacuationRequestSchema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const path = issue.path.join('.');
    throw new UsageError(`evacuation request: ${path || 'body'}: ${issue.message}`, path);
  }
  return {
    to: r.data.to,
    maxParallel: r.data.maxParallel ?? 2,
    order: r.data.order ?? 'smart',
    options: r.data.options ?? {},
    ...(r.data.preset ? { preset: r.data.preset } : {}),
  };
}

/** What the planner knows of a guest. */
export interface EvacuationCandidate {
  id: string;
  ramBytes: number;
  workingSetBytes: number;
  /** Estimated bytes dirtied per second (new writes × page size). */
  dirtyBytesPerSec: number;
}

export type GuestHeat = 'cold' | 'warm' | 'hot';

export interface PlannedMove {
  guest: string;
  destination: string;
  /** cold: pre-copy converges; warm: with XBZRLE; hot: neither (post-copy). */
  heat: GuestHeat;
  options: Partial<MigrationOptions>;
  predictedMs: number;
}

/** The migration plan in execution order (pure). */
export function planEvacuation(
  candidates: readonly EvacuationCandidate[],
  req: EvacuationRequest,
): PlannedMove[] {
  const base = { ...DEFAULT_OPTIONS, ...req.options };
  const bandwidth = base.maxBandwidth > 0 ? base.maxBandwidth : 1e9;
  const priced = candidates.map((c) => {
    const input = {
      ramBytes: c.ramBytes,
      dirtyRate: c.dirtyBytesPerSec,
      workingSetBytes: Math.max(1, c.workingSetBytes),
      bandwidth,
      downtimeLimit: base.downtimeLimitMs / 1000,
      maxRounds: Math.max(1, base.maxRounds),
    };
    const plain = predictPrecopy({ ...input, compressionRatio: 1 });
    let heat: GuestHeat = 'cold';
    let predicted = plain.totalTime;
    let options: Partial<MigrationOptions> = {};
    if (!plain.converged) {
      const x = predictPrecopy({ ...input, compressionRatio: 0.4 });
      if (x.converged) {
        heat = 'warm';
        predicted = x.totalTime;
        options = { xbzrle: true };
      } else {
        heat = 'hot';
        // Post-copy moves RAM once after the switch-over: about one full copy.
        predicted = c.ramBytes / bandwidth;
        options = { strategy: 'postcopy' };
      }
    }
    return { c, heat, predicted, options };
  });
  let ordered: typeof priced;
  if (req.order === 'smart') {
    const rank: Record<GuestHeat, number> = { cold: 0, warm: 1, hot: 2 };
    ordered = [...priced].sort(
      (a, b) => rank[a.heat] - rank[b.heat] || a.predicted - b.predicted || a.c.id.localeCompare(b.c.id),
    );
  } else {
    ordered = [...priced].sort((a, b) => a.c.id.localeCompare(b.c.id, 'en', { numeric: true }));
  }
  const assigned = new Map(req.to.map((d) => [d, 0]));
  return ordered.map((p) => {
    let dest = req.to[0]!;
    for (const d of req.to) if (assigned.get(d)! < assigned.get(dest)!) dest = d;
    assigned.set(dest, assigned.get(dest)! + p.c.ramBytes);
    return {
      guest: p.c.id,
      destination: dest,
      heat: p.heat,
      // Naive orders keep the caller's options: the comparison is about the order, then about the choices.
      options: req.order === 'smart' ? { ...req.options, ...p.options } : { ...req.options },
      predictedMs: Math.round(p.predicted * 1000),
    };
  });
}

export interface EvacuationMove {
  guest: string;
  destination: string;
  heat: GuestHeat;
  migration: string;
  status: string;
  strategy: string;
  xbzrle: boolean;
  /** Start and end relative to the evacuation's start, ms. */
  startMs: number;
  endMs: number;
  totalTimeMs: number;
  downtimeMs: number;
  transferredBytes: number;
  verified: boolean;
  predictedMs: number;
  error?: string;
}

export interface EvacuationReport {
  order: EvacuationOrder;
  maxParallel: number;
  guests: number;
  completed: number;
  failed: number;
  /** From the first migration's start to the last one's end, ms. */
  totalTimeMs: number;
  downtimeSumMs: number;
  downtimeMaxMs: number;
  bytes: number;
  /** Sum over guests of the time each one waited and migrated (sum of completion times), ms. */
  completionSumMs: number;
  moves: EvacuationMove[];
}

/** Runs the plan, at most `k` migrations at once, in plan order. `run` starts one and waits for its report. */
export async function runEvacuation(
  plan: readonly PlannedMove[],
  k: number,
  order: EvacuationOrder,
  run: (move: PlannedMove) => Promise<MigrationReport>,
): Promise<EvacuationReport> {
  const t0 = performance.now();
  const moves: EvacuationMove[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < plan.length) {
      const m = plan[next++]!;
      const startMs = performance.now() - t0;
      let r: MigrationReport | undefined;
      let error: string | undefined;
      try {
        r = await run(m);
        if (r.status !== 'completed') error = r.error?.message ?? r.status;
      } catch (err) {
        error = (err as Error).message;
      }
      moves.push({
        guest: m.guest,
        destination: m.destination,
        heat: m.heat,
        migration: r?.id ?? '',
        status: r?.status ?? 'failed',
        strategy: r?.strategy ?? m.options.strategy ?? 'precopy',
        xbzrle: r?.xbzrle.enabled ?? false,
        startMs: Math.round(startMs),
        endMs: Math.round(performance.now() - t0),
        totalTimeMs: r?.totalTimeMs ?? 0,
        downtimeMs: r?.downtimeMs ?? 0,
        transferredBytes: r?.transferredBytes ?? 0,
        verified: r?.verified ?? false,
        predictedMs: m.predictedMs,
        ...(error ? { error } : {}),
      });
    }
  };
  const width = order === 'all-at-once' ? plan.length : Math.max(1, k);
  await Promise.all(Array.from({ length: Math.min(width, plan.length) }, worker));
  moves.sort((a, b) => a.startMs - b.startMs);
  const done = moves.filter((m) => m.status === 'completed');
  return {
    order,
    maxParallel: width,
    guests: plan.length,
    completed: done.length,
    failed: moves.length - done.length,
    totalTimeMs: moves.reduce((a, m) => Math.max(a, m.endMs), 0),
    downtimeSumMs: done.reduce((a, m) => a + m.downtimeMs, 0),
    downtimeMaxMs: done.reduce((a, m) => Math.max(a, m.downtimeMs), 0),
    bytes: moves.reduce((a, m) => a + m.transferredBytes, 0),
    completionSumMs: moves.reduce((a, m) => a + m.endMs, 0),
    moves,
  };
}

/** What evacuation needs of the agent (a subset of the routes' AgentApi). */
export interface EvacuationHost {
  listGuests(): GuestInfo[];
  guestInfo(id: string): GuestInfo;
  migrate(
    guestId: string,
    destination: string,
    explicit: Partial<MigrationOptions>,
    preset?: Preset,
  ): Promise<MigrationReport>;
  waitMigration(id: string): Promise<MigrationReport>;
}

/** Writes a step of the guest's workload makes (writers: every step; twolf: accepted moves only). */
function writesPerStep(config: GuestConfig): number {
  const name = (config.workload.name.startsWith('trace:') ? 'trace' : config.workload.name) as WorkloadName;
  const p = { ...(DEFAULT_PARAMS[name] ?? DEFAULT_PARAMS.zipf), ...config.workload.params };
  return p.writeProbability;
}

function workingSet(config: GuestConfig): number {
  const name = (config.workload.name.startsWith('trace:') ? 'trace' : config.workload.name) as WorkloadName;
  const p = { ...(DEFAULT_PARAMS[name] ?? DEFAULT_PARAMS.zipf), ...config.workload.params };
  return Math.min(config.ramBytes, p.workingSetBytes);
}

/**
 * Measures every running guest's dirty rate over `windowMs` (steps per second from two readings of its step
 * counters, × writes per step × page size: an upper bound on new dirty pages, which the model caps by the working
 * set).
 */
export async function measureCandidates(
  host: EvacuationHost,
  windowMs = 300,
): Promise<EvacuationCandidate[]> {
  const first = host.listGuests().filter((g) => g.status === 'running' || g.status === 'paused');
  const before = new Map(first.map((g) => [g.id, g.steps.reduce((a, b) => a + b, 0)]));
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, windowMs));
  const dt = (performance.now() - t0) / 1000;
  const out: EvacuationCandidate[] = [];
  for (const g of first) {
    let info: GuestInfo;
    try {
      info = host.guestInfo(g.id);
    } catch {
      continue; // gone meanwhile
    }
    const steps = info.steps.reduce((a, b) => a + b, 0) - before.get(g.id)!;
    const pageSize = g.config.pageSize ?? 4096;
    out.push({
      id: g.id,
      ramBytes: g.config.ramBytes,
      workingSetBytes: workingSet(g.config),
      dirtyBytesPerSec: Math.max(0, (steps / dt) * writesPerStep(g.config) * pageSize),
    });
  }
  return out;
}

/** Evacuates the agent: measure, plan, run. */
export async function evacuateAgent(host: EvacuationHost, req: EvacuationRequest): Promise<EvacuationReport> {
  const plan = planEvacuation(await measureCandidates(host), req);
  return runEvacuation(plan, req.maxParallel, req.order, async (m) => {
    const started = await host.migrate(m.guest, m.destination, m.options, req.preset);
    return host.waitMigration(started.id);
  });
}
