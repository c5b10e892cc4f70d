/**
 * The mechanisms experiment's snapshot cells (docs/snapshot.md): a running guest is written to a file on one agent
 * while it keeps running, restored on another, and the determinism oracle checks the restored guest. Snapshots need
 * agents with a --snapshot-dir, so the cell starts its own pair. Whether this build has snapshots at all is decided
 * by the agent client (it has `snapshot` and `restore` or it does not): the experiment is compiled either way, and
 * the agents' answers are validated here since the types may not exist on this build.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { AgentClient } from '../agent/index.js';
import { spawnAgents } from '../agent/spawn.js';
import type { GuestConfig } from '../guest/index.js';
import { checkOracle } from './scenario.js';
import type { Measured } from './types.js';

/** The client's snapshot calls, where this build has them. */
interface SnapshotCalls {
  snapshot(id: string, file: string, opts?: { baselineMs?: number }): Promise<unknown>;
  restore(file: string, opts?: { id?: string; run?: boolean }): Promise<unknown>;
}

function snapshotCalls(client: AgentClient): SnapshotCalls | undefined {
  const c = client as unknown as Partial<SnapshotCalls>;
  return typeof c.snapshot === 'function' && typeof c.restore === 'function'
    ? (c as SnapshotCalls)
    : undefined;
}

/** Live snapshot and restore are on this build. */
export const HAS_SNAPSHOT = snapshotCalls(Object.create(AgentClient.prototype) as AgentClient) !== undefined;

const snapshotAnswer = z.object({
  fileBytes: z.number(),
  pauseMs: z.number(),
  snapshotMs: z.number(),
  steps: z.array(z.number()),
  live: z.boolean(),
  slowdown: z.number().nullable(),
});
const restoreAnswer = z.object({ restoreMs: z.number(), steps: z.array(z.number()) });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Snapshots `guest` live on agent A after `warmupMs` (the guest's rate before it measured over `baselineMs`),
 * restores it on agent B, and checks the restored guest with the oracle after it ran `runAfterMs`.
 */
export async function measureSnapshot(
  guest: GuestConfig,
  warmupMs: number,
  baselineMs: number,
  runAfterMs: number,
): Promise<Partial<Measured>> {
  const m: Partial<Measured> = {};
  const t0 = performance.now();
  const dir = await mkdtemp(join(tmpdir(), 'livemig-mechanisms-'));
  const agents = await spawnAgents([
    { args: ['--quiet', '--snapshot-dir', dir] },
    { args: ['--quiet', '--snapshot-dir', dir] },
  ]);
  try {
    const [a, b] = agents.map((x) => new AgentClient(x.address)) as [AgentClient, AgentClient];
    const ca = snapshotCalls(a);
    const cb = snapshotCalls(b);
    if (!ca || !cb) throw new Error('live snapshots are not on this build');
    const id = 'snap';
    await a.startGuest(guest, id, true);
    await sleep(warmupMs);
    const s = snapshotAnswer.parse(await ca.snapshot(id, `${id}.snap`, { baselineMs }));
    await a.stopGuest(id);
    const r = restoreAnswer.parse(await cb.restore(`${id}.snap`, { id, run: true }));
    await sleep(runAfterMs);
    const oracle = await checkOracle(b, id, guest);
    await b.stopGuest(id).catch(() => undefined);
    m.status = 'completed';
    m.switchoverReason = s.live ? 'live' : 'paused';
    m.oracleChecked = oracle.checked;
    // The restored guest starts exactly at the snapshot's instant and runs on to what the oracle replays.
    m.verified = oracle.equal && JSON.stringify(r.steps) === JSON.stringify(s.steps);
    m.snapshotMs = s.snapshotMs;
    m.snapshotPauseMs = s.pauseMs;
    m.snapshotFileBytes = s.fileBytes;
    m.restoreMs = r.restoreMs;
    m.guestSlowdown = s.slowdown ?? 0;
    m.bytes = s.fileBytes;
    m.totalTimeMs = s.snapshotMs;
    m.downtimeMs = s.pauseMs;
  } finally {
    await Promise.all(agents.map((x) => x.stop()));
    await rm(dir, { recursive: true, force: true });
  }
  m.loadAvg1 = loadavg()[0] ?? 0;
  m.wallMs = performance.now() - t0;
  return m;
}
