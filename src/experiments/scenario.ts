/**
 * One migration scenario, end to end and for real: two agents as separate processes on loopback, a guest
 * running a workload on the first, a warm-up, the migration to the second, and verification. `livemig run`,
 * the demo and the experiments are all built from this.
 */
import { AgentClient } from '../agent/index.js';
import { type ChildAgent, spawnAgents } from '../agent/spawn.js';
import { MigrationError } from '../errors.js';
import { type GuestConfig, type GuestState, referenceRam } from '../guest/index.js';
import {
  type MigrationOptions,
  type MigrationReport,
  migrationEnded,
  type Preset,
} from '../migration/index.js';

export interface ScenarioSpec {
  guest: GuestConfig;
  /** Guest CPU cap before migration (0 = none). */
  cap?: number;
  warmupMs: number;
  options: Partial<MigrationOptions>;
  preset?: Preset;
  /** Also run the determinism oracle: replay a fresh guest to the migrated guest's steps and compare RAM. */
  oracle?: boolean;
  /** Let the migrated guest run this long on the destination before checking it. */
  runAfterMs?: number;
  /**
   * 'first': `onProgress` gets only the first report, then the scenario waits for the end in one request (`?wait=1`)
   * instead of polling every 100 ms: an experiment that measures the agents' CPU keeps its own requests out of it.
   */
  progress?: 'poll' | 'first';
  /** Called once the migration has ended, while the guest still runs on whichever agent holds it. */
  onMigrated?: (holder: AgentClient, guestId: string, report: MigrationReport) => Promise<void>;
}

export interface OracleResult {
  checked: boolean;
  equal: boolean;
  steps: number[];
  firstDifferentPage: number;
  ms: number;
}

export interface ScenarioResult {
  report: MigrationReport;
  oracle?: OracleResult;
}

export interface Pair {
  source: ChildAgent;
  destination: ChildAgent;
  close(): Promise<void>;
}

export async function startPair(): Promise<Pair> {
  const [source, destination] = (await spawnAgents([{}, {}])) as [ChildAgent, ChildAgent];
  return {
    source,
    destination,
    close: async () => {
      await Promise.all([source.stop(), destination.stop()]);
    },
  };
}

let guestCounter = 0;

/** Runs one scenario on a pair of agents. The guest is stopped on whichever agent holds it at the end. */
export async function runScenario(
  pair: Pair,
  spec: ScenarioSpec,
  onProgress?: (r: MigrationReport) => void,
): Promise<ScenarioResult> {
  const src = new AgentClient(pair.source.address);
  const dst = new AgentClient(pair.destination.address);
  const id = `vm${process.pid}-${++guestCounter}`;
  await src.startGuest(spec.guest, id, true);
  if (spec.cap) await src.throttle(id, { cap: spec.cap });
  let holder = src;
  try {
    await sleep(spec.warmupMs);
    const started = await src.migrate(id, pair.destination.address, spec.options, spec.preset);
    const report =
      spec.progress === 'first'
        ? await followFirst(src, started.id, onProgress)
        : await src.follow(started.id, onProgress, 100);
    if (report.status === 'completed') holder = dst;
    if (spec.onMigrated) await spec.onMigrated(holder, id, report);
    let oracle: OracleResult | undefined;
    if (spec.oracle) {
      if (spec.runAfterMs) await sleep(spec.runAfterMs);
      oracle = await checkOracle(holder, id, spec.guest);
    }
    return { report, oracle };
  } finally {
    await holder.stopGuest(id).catch(() => undefined);
  }
}

/**
 * The determinism oracle: pause the guest wherever it is, read its vCPU steps and RAM, replay a guest that never
 * moved to exactly those steps, and compare RAM byte for byte.
 */
export async function checkOracle(
  agent: AgentClient,
  id: string,
  config: GuestConfig,
): Promise<OracleResult> {
  const t = performance.now();
  await agent.pause(id);
  const state: GuestState = await agent.state(id);
  const steps = state.vcpus.map((v) => v.step);
  const ram = await agent.ram(id);
  const ref = await referenceRam(config, steps);
  if (ref.bytes !== ram.length) {
    throw new MigrationError('INTERNAL', `oracle: RAM sizes differ (${ref.bytes} vs ${ram.length})`);
  }
  const pageSize = ref.pageSize;
  let first = -1;
  for (let p = 0; p < ref.pageCount; p++) {
    const off = p * pageSize;
    if (Buffer.compare(ram.subarray(off, off + pageSize), ref.page(p)) !== 0) {
      first = p;
      break;
    }
  }
  return { checked: true, equal: first < 0, steps, firstDifferentPage: first, ms: performance.now() - t };
}

/** The first report to `onProgress`, then the end in one held request (no polling). */
export async function followFirst(
  agent: Pick<AgentClient, 'migration' | 'waitMigration'>,
  id: string,
  onProgress?: (r: MigrationReport) => void,
): Promise<MigrationReport> {
  const r = await agent.migration(id);
  onProgress?.(r);
  if (migrationEnded(r.status)) return r;
  return agent.waitMigration(id);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
