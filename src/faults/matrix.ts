/**
 * The fault matrix: every strategy × every phase it has × every fault, each cell a real migration between two
 * agent processes through a FaultProxy, the fault injected at that phase by a proxy trigger (a frame of the
 * migration stream, so the phase is hit exactly, not by polling). After each cell:
 *
 * - the guest runs in exactly one place (or, when its host was SIGKILLed before switch-over, in none — it died
 *   with its host), and no partial guest is resumed anywhere before GO;
 * - the holder's RAM passes the determinism oracle;
 * - the migration ended as this file's `expected()` says: completed for faults that only slow it, otherwise
 *   failed with a precise error code;
 * - a retry (no proxy) completes and passes the oracle.
 *
 * Faults after GO in post-copy leave the guest split across two hosts. A cut link is repaired by post-copy
 * recovery (the cell must complete, "recovered after GO"); a killed host loses the guest with it, which no recovery
 * can undo: those cells expect a clean failure (the source keeps its copy paused) and are labelled "host died".
 */
import { AgentClient, type GuestInfo } from '../agent/index.js';
import { type ChildAgent, spawnAgent } from '../agent/spawn.js';
import { checkOracle } from '../experiments/scenario.js';
import type { GuestConfig } from '../guest/index.js';
import {
  DEFAULT_OPTIONS,
  type MigrationOptions,
  type MigrationReport,
  type Strategy,
} from '../migration/index.js';
import { Command } from '../migration/protocol/index.js';
import { type FaultAction, FaultProxy, type FaultTrigger } from './proxy.js';

export const FAULTS = [
  'link-cut',
  'loss',
  'delay-spike',
  'stall',
  'kill-source',
  'kill-destination',
  'stop-source',
  'stop-destination',
] as const;
export type FaultName = (typeof FAULTS)[number];

export const PHASES = ['setup', 'early-round', 'late-round', 'switchover', 'go', 'postcopy'] as const;
export type PhaseName = (typeof PHASES)[number];

export const MATRIX_STRATEGIES: readonly Strategy[] = ['precopy', 'postcopy', 'hybrid', 'cold'];

/** The phases a strategy goes through (cold has one "round" of all pages while paused; pure post-copy none). */
export function phasesOf(strategy: Strategy): PhaseName[] {
  switch (strategy) {
    case 'precopy':
      return ['setup', 'early-round', 'late-round', 'switchover', 'go'];
    case 'cold':
      return ['setup', 'early-round', 'switchover', 'go'];
    case 'postcopy':
      return ['setup', 'switchover', 'go', 'postcopy'];
    case 'hybrid':
      return ['setup', 'early-round', 'late-round', 'switchover', 'go', 'postcopy'];
  }
}

export interface Cell {
  strategy: Strategy;
  phase: PhaseName;
  fault: FaultName;
}

export function cellId(c: Cell): string {
  return `${c.strategy}/${c.phase}/${c.fault}`;
}

export function allCells(): Cell[] {
  const cells: Cell[] = [];
  for (const strategy of MATRIX_STRATEGIES)
    for (const phase of phasesOf(strategy))
      for (const fault of FAULTS) cells.push({ strategy, phase, fault });
  return cells;
}

/** Where the fault is injected: just before this frame of the source → destination stream reaches the proxy's far side. */
export function phaseTrigger(phase: PhaseName): FaultTrigger {
  switch (phase) {
    case 'setup':
      return { atFrame: Command.HELLO };
    case 'early-round':
      // A few MiB into round 1 (cold: into its one pass over RAM).
      return { atFrame: Command.PAGES, nth: 3 };
    case 'late-round':
      // Inside round 2: the first pages after round 1's marker.
      return { atFrame: Command.PAGES, nth: 1, after: { frame: Command.ROUND } };
    case 'switchover':
      // Guest paused: the vCPU state is the stop-and-copy's first frame (pre-copy, cold; the last pages and SWITCHOVER
      // follow it, with GO in pre-copy's default) or post-copy's (then POSTCOPY_START).
      return { atFrame: Command.VCPU_STATE };
    case 'go':
      // The destination verified the guest and sent READY; the source sent GO, which has not reached it yet.
      return { atFrame: Command.GO };
    case 'postcopy':
      // After GO: the guest runs on the destination. The first pushed PAGES frame — or, when hybrid's pre-copy
      // rounds left nothing to push, POSTCOPY_END (the destination still waits for it to verify).
      return { atFrame: [Command.PAGES, Command.POSTCOPY_END], nth: 1, after: { frame: Command.GO } };
  }
}

export type Holder = 'source' | 'destination' | 'none';

/** What the engine must do in a cell. */
export interface Expectation {
  status: 'completed' | 'failed';
  /** Error code of the failed migration (from the source, or from the destination when the source died). */
  code?: string;
  /** Who runs the guest afterwards. */
  holder: Holder;
  /**
   * After GO in post-copy, a host died: the guest is split across hosts and recovery cannot finish it (a dead
   * destination took the running guest; a dead source took the pages only it held).
   */
  needsRecovery: boolean;
  /** The source died before the destination saw a migration at all: it may have nothing to report. */
  codeMayBeAbsent?: boolean;
  /**
   * A fault after GO that no side could settle by itself: the report says where the guest was left paused, and the
   * cell then does what the report tells the operator to do. `source`: the source's report says "paused on the
   * source, destination unknown" (then `livemig migrate --reconcile`, else `guest resume`); `destination`: the
   * destination's record says the guest is held there (then adopt, or discard when it lacks pages). `holder` is
   * who runs the guest after that.
   */
  pausedOn?: 'source' | 'destination';
  /**
   * A second outcome that is just as right, when the race it depends on is not the engine's to decide (a
   * SIGCONTed process runs its expired timers before it reads its socket, or the other way round).
   */
  orElse?: Alternative[];
}

export interface Alternative {
  status: 'completed' | 'failed';
  code?: string;
  holder: Holder;
  pausedOn?: 'source' | 'destination';
}

/** The fault hits GO on its way: the source has given the guest up, the destination does not know yet. */
function expectedAtGo(c: Cell): Expectation {
  // Post-copy's destination lacks pages until the push: a held copy is dropped (RECONCILE abort) and the guest
  // goes back to the source; a complete one (pre-copy, cold) is handed over with GO on the reconcile connection.
  const partial = c.strategy === 'postcopy' || c.strategy === 'hybrid';
  switch (c.fault) {
    case 'loss':
    case 'delay-spike':
    case 'stop-source':
      return { status: 'completed', holder: 'destination', needsRecovery: false };
    case 'stop-destination':
      // Woken after the handover timeout, the destination holds the guest or resumes it on the GO in its socket,
      // whichever it handles first. Pre-copy completes either way (held → GO over RECONCILE); post-copy's source,
      // which asks a holder to drop its copy, then takes the guest back.
      return partial
        ? {
            status: 'completed',
            holder: 'destination',
            needsRecovery: false,
            orElse: [{ status: 'failed', code: 'TIMEOUT', holder: 'source' }],
          }
        : { status: 'completed', holder: 'destination', needsRecovery: false };
    case 'link-cut':
    case 'stall':
      return partial
        ? {
            status: 'failed',
            code: c.fault === 'stall' ? 'TIMEOUT' : 'CONNECTION_LOST',
            holder: 'source',
            needsRecovery: false,
            // Stalled: the destination, which started waiting for GO first, may give up first and close the
            // link, and the source then sees it end before its own wait for RESUMED times out.
            ...(c.fault === 'stall'
              ? {
                  orElse: [{ status: 'failed' as const, code: 'CONNECTION_LOST', holder: 'source' as const }],
                }
              : {}),
          }
        : { status: 'completed', holder: 'destination', needsRecovery: false };
    case 'kill-destination':
      // Nobody answers RECONCILE: the source keeps the guest paused and says so; the operator resumes it there.
      return {
        status: 'failed',
        code: 'OWNER_UNKNOWN',
        holder: 'source',
        needsRecovery: false,
        pausedOn: 'source',
      };
    case 'kill-source':
      // The destination holds what it verified, paused, and says so; a complete guest is adopted there.
      return partial
        ? {
            status: 'failed',
            code: 'CONNECTION_LOST',
            holder: 'none',
            needsRecovery: true,
            pausedOn: 'destination',
          }
        : {
            status: 'failed',
            code: 'CONNECTION_LOST',
            holder: 'destination',
            needsRecovery: false,
            pausedOn: 'destination',
          };
  }
}

/**
 * `goWithDigest` (the migration option, off by default): pre-copy's GO rides in the digest's write, so a fault at
 * VCPU_STATE (the first frame after the pause; the last pages and SWITCHOVER + GO follow within a millisecond) meets
 * a source that has already handed the guest over, and is settled like a fault at GO (docs/protocol.md).
 */
export function expected(c: Cell, goWithDigest = DEFAULT_OPTIONS.goWithDigest): Expectation {
  if (c.phase === 'go') return expectedAtGo(c);
  if (goWithDigest && c.strategy === 'precopy' && c.phase === 'switchover') {
    const handedOver = expectedWithGo(c);
    if (handedOver) return handedOver;
  }
  const afterGo = c.phase === 'postcopy';
  switch (c.fault) {
    case 'loss':
    case 'delay-spike':
    case 'stall':
      return { status: 'completed', holder: 'destination', needsRecovery: false };
    case 'stop-source':
      // Across the switch-over (4 s, longer than the destination waits for GO) the destination holds the guest.
      // Pre-copy and cold hand it over by RECONCILE; post-copy and hybrid, whose held copy lacks pages, may drop
      // it (RECONCILE abort) and the source takes the guest back — unless GO arrived in time. And the migration's
      // own --timeout may fire as the source wakes, before GO: then the guest simply stays on the source.
      return c.phase === 'switchover'
        ? {
            status: 'completed',
            holder: 'destination',
            needsRecovery: false,
            orElse: [
              { status: 'failed', code: 'TIMEOUT', holder: 'source' },
              ...(c.strategy === 'postcopy' || c.strategy === 'hybrid'
                ? [{ status: 'failed' as const, code: 'CONNECTION_LOST', holder: 'source' as const }]
                : []),
            ],
          }
        : { status: 'completed', holder: 'destination', needsRecovery: false };
    case 'stop-destination':
      // Before GO the source's --timeout gives up; after GO nothing times out and post-copy resumes on SIGCONT.
      return afterGo
        ? { status: 'completed', holder: 'destination', needsRecovery: false }
        : { status: 'failed', code: 'TIMEOUT', holder: 'source', needsRecovery: false };
    case 'link-cut':
      // After GO, post-copy recovery: both sides pause, the source reconnects (the proxy accepts new
      // connections after a cut) and the migration completes on the destination.
      return afterGo
        ? { status: 'completed', holder: 'destination', needsRecovery: false }
        : { status: 'failed', code: 'CONNECTION_LOST', holder: 'source', needsRecovery: false };
    case 'kill-destination':
      // After GO the running guest dies with its host: nothing can save it (docs/postcopy-recovery.md). The source
      // waits in postcopy-paused for a destination that never returns, until the operator cancels.
      return afterGo
        ? { status: 'failed', code: 'POSTCOPY_LINK_LOST', holder: 'none', needsRecovery: true }
        : { status: 'failed', code: 'CONNECTION_LOST', holder: 'source', needsRecovery: false };
    case 'kill-source':
      // The destination's view: the stream ended. Before GO it discards; after GO it keeps a partial guest.
      return afterGo
        ? { status: 'failed', code: 'CONNECTION_LOST', holder: 'destination', needsRecovery: true }
        : {
            status: 'failed',
            code: 'CONNECTION_LOST',
            holder: 'none',
            needsRecovery: false,
            codeMayBeAbsent: c.phase === 'setup',
            // At switch-over, SWITCHOVER / POSTCOPY_START may already be in flight when the source dies: then the
            // destination verifies, sends READY and holds the guest (its source unknown), and the cell adopts a
            // complete one — the guest outlives its source host — or drops a partial one.
            ...(c.phase === 'switchover'
              ? {
                  orElse: [
                    {
                      status: 'failed' as const,
                      code: 'CONNECTION_LOST',
                      holder: c.strategy === 'postcopy' || c.strategy === 'hybrid' ? 'none' : 'destination',
                      pausedOn: 'destination' as const,
                    },
                  ],
                }
              : {}),
          };
  }
}

/**
 * Pre-copy at switch-over with GO in the digest's write: the cells whose outcome differs from GO after READY. The
 * guest is still never on two hosts, never lost without a report: a destination that dies or hangs there leaves
 * the guest paused on the source with OWNER_UNKNOWN (as at GO), where GO after READY would have resumed it on the
 * source — the price of one round trip less of downtime (why the option is off by default).
 */
function expectedWithGo(c: Cell): Expectation | undefined {
  switch (c.fault) {
    case 'kill-destination':
      // Nobody answers RECONCILE; or the source saw the link die before it handed over (then it simply resumes).
      return {
        status: 'failed',
        code: 'OWNER_UNKNOWN',
        holder: 'source',
        needsRecovery: false,
        pausedOn: 'source',
        orElse: [{ status: 'failed', code: 'CONNECTION_LOST', holder: 'source' }],
      };
    case 'stop-destination':
      // No READY within the handover timeout, no OWNER while stopped: OWNER_UNKNOWN. Woken, the destination verifies
      // and resumes on the GO in its socket (the cell's reconcile then finds it running there) — or handles the
      // source's abandoned RECONCILE first, which ends a migration before READY, and the guest goes back to the source.
      return {
        status: 'failed',
        code: 'OWNER_UNKNOWN',
        holder: 'destination',
        needsRecovery: false,
        pausedOn: 'source',
        orElse: [{ status: 'failed', code: 'OWNER_UNKNOWN', holder: 'source', pausedOn: 'source' }],
      };
    case 'kill-source': {
      // As before (the destination discards or holds), or — when the digest and GO left before the source died — the
      // destination verifies and resumes the guest: it outlives its source host, with nothing to settle.
      const e = expected(c, false);
      return { ...e, orElse: [...(e.orElse ?? []), { status: 'failed', holder: 'destination' }] };
    }
    default:
      return undefined;
  }
}

export interface CellResult extends Cell {
  id: string;
  expected: Expectation;
  /** The fault was injected (the phase was reached). */
  injected: boolean;
  /** A post-copy cell that post-copy recovery finished after GO (completed, verified, oracle-checked). */
  recovered: boolean;
  status: string;
  code: string | null;
  /** Error code the destination recorded for its incoming migration, if it ended with one. */
  destinationCode: string | null;
  holder: Holder | 'both';
  sourceGuest: string | null;
  destinationGuest: string | null;
  oracle: boolean | null;
  retry: 'completed' | 'failed' | 'not applicable';
  retryOracle: boolean | null;
  ms: number;
  ok: boolean;
  problems: string[];
  /** Findings that do not break the cell's guarantees (an imprecise error code after GO). */
  notes: string[];
  /** Where a report said the guest was left paused (OWNER_UNKNOWN on the source, held on the destination). */
  pausedOn: 'source' | 'destination' | null;
  /** What the cell did as the operator to settle it (reconcile, resume, adopt, discard), if anything. */
  settled: string | null;
}

export interface MatrixOptions {
  guest?: GuestConfig;
  /** Options of every faulted migration (strategy is the cell's). */
  options?: Partial<MigrationOptions>;
  /** --timeout of faulted migrations: how a SIGSTOPped destination is detected before GO. */
  timeoutMs?: number;
  /** How long a SIGSTOP lasts when the migration is expected to survive it, and the stall. */
  pauseMs?: number;
  /**
   * The same at GO, and a SIGSTOP of the source across the switch-over: longer than the handover timeout
   * (MATRIX_OPTIONS.handoverTimeoutMs), shorter than the reconcile timeout, so that the two sides must reconcile.
   */
  handoverPauseMs?: number;
  log?: (line: string) => void;
}

const MiB = 1024 * 1024;

export const MATRIX_GUEST: GuestConfig = {
  ramBytes: 32 * MiB,
  seed: 41,
  workload: { name: 'gap', params: { workingSetBytes: 24 * MiB, writeRate: 3000 } },
};

/**
 * Several live rounds before convergence (64 MiB/s against 3000 dirty pages/s, 10 ms downtime limit), hybrid
 * switches to post-copy after two rounds.
 */
export const MATRIX_OPTIONS: Partial<MigrationOptions> = {
  maxBandwidth: 64 * MiB,
  downtimeLimitMs: 10,
  postcopyAfterRounds: 2,
  // A fault at GO is noticed after 2 s; the source keeps trying to reach the destination for 10 s.
  handoverTimeoutMs: 2000,
  reconcileTimeoutMs: 10_000,
};

function actionFor(
  c: Cell,
  src: ChildAgent,
  dst: ChildAgent,
  shortPauseMs: number,
  handoverPauseMs: number,
  timers: NodeJS.Timeout[],
  proxy: FaultProxy,
): FaultAction {
  const afterGo = c.phase === 'postcopy';
  const pauseMs =
    c.phase === 'go' || (c.phase === 'switchover' && c.fault === 'stop-source')
      ? handoverPauseMs
      : shortPauseMs;
  const signal = (a: ChildAgent, sig: NodeJS.Signals) => {
    if (a.process.exitCode === null && a.process.signalCode === null) a.process.kill(sig);
  };
  const killAndWait = (a: ChildAgent) => async () => {
    const exited = new Promise<void>((r) => a.process.once('exit', () => r()));
    signal(a, 'SIGKILL');
    await exited;
  };
  const stopFor = (a: ChildAgent, ms: number | undefined) => () => {
    signal(a, 'SIGSTOP');
    if (ms !== undefined) timers.push(setTimeout(() => signal(a, 'SIGCONT'), ms));
  };
  switch (c.fault) {
    case 'link-cut':
      return { kind: 'cut' };
    case 'loss':
      // 0.05% of 1448-byte segments: a 64 KiB chunk is held one RTO with probability ~2%.
      return { kind: 'set', faults: { loss: 0.0005, rtoMs: 200 } };
    case 'delay-spike':
      return { kind: 'spike', ms: 400, forMs: 1000 };
    case 'stall':
      return { kind: 'stall', ms: pauseMs };
    case 'kill-source':
      if (c.phase === 'go') {
        // The source host dies before GO leaves it: what it had in flight dies with it (a killed process's socket
        // buffer would still be sent, and the destination would simply resume on that GO).
        return {
          kind: 'call',
          fn: async () => {
            await killAndWait(src)();
            proxy.cut();
          },
        };
      }
      return { kind: 'call', fn: killAndWait(src) };
    case 'kill-destination':
      return { kind: 'call', fn: killAndWait(dst) };
    case 'stop-source':
      return { kind: 'call', fn: stopFor(src, pauseMs) };
    case 'stop-destination':
      // Before GO it stays stopped until the source has given up (the cell sends SIGCONT then).
      return { kind: 'call', fn: stopFor(dst, afterGo || c.phase === 'go' ? pauseMs : undefined) };
  }
}

interface AgentStatus {
  incoming: { id: string; guestId: string; phase: string; error?: { code: string; message?: string } }[];
}

/** Phases of an incoming migration that has not yet settled (before GO: it may still fail or resume). */
const IN_FLIGHT = new Set(['setup', 'receiving', 'verifying']);

async function incoming(a: ChildAgent): Promise<AgentStatus['incoming']> {
  const res = await fetch(`http://${a.address}/v1/status`, { signal: AbortSignal.timeout(5000) });
  return ((await res.json()) as AgentStatus).incoming;
}

async function guestOn(c: AgentClient, id: string): Promise<GuestInfo | null> {
  const list = await c.guests();
  return list.find((g) => g.id === id) ?? null;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitUntil(f: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await f().catch(() => false)) return true;
    if (Date.now() > end) return false;
    await sleep(50);
  }
}

/** Runs one cell on fresh agent processes and checks it; never throws for a cell that misbehaves. */
export async function runCell(c: Cell, mo: MatrixOptions = {}): Promise<CellResult> {
  const t0 = performance.now();
  const guest = mo.guest ?? MATRIX_GUEST;
  const pauseMs = mo.pauseMs ?? 1500;
  const handoverPauseMs = mo.handoverPauseMs ?? 4000;
  const exp = expected(c, mo.options?.goWithDigest ?? DEFAULT_OPTIONS.goWithDigest);
  const problems: string[] = [];
  const notes: string[] = [];
  const result: CellResult = {
    ...c,
    id: cellId(c),
    expected: exp,
    injected: false,
    recovered: false,
    status: 'unknown',
    code: null,
    destinationCode: null,
    holder: 'none',
    sourceGuest: null,
    destinationGuest: null,
    oracle: null,
    retry: 'not applicable',
    retryOracle: null,
    ms: 0,
    ok: false,
    problems,
    notes,
    pausedOn: null,
    settled: null,
  };
  const agents: ChildAgent[] = [];
  const timers: NodeJS.Timeout[] = [];
  let proxy: FaultProxy | undefined;
  const id = `fm-${c.strategy}-${c.phase}-${c.fault}`;
  try {
    const [src, dst] = await Promise.all([
      spawnAgent('127.0.0.1', ['--quiet']),
      spawnAgent('127.0.0.1', ['--quiet']),
    ]);
    agents.push(src, dst);
    const cs = new AgentClient(src.address);
    const cd = new AgentClient(dst.address);
    proxy = await FaultProxy.start({ target: dst.address, seed: 7 });
    proxy.at(phaseTrigger(c.phase), actionFor(c, src, dst, pauseMs, handoverPauseMs, timers, proxy));
    await cs.startGuest(guest, id);
    await sleep(300);
    const started = await cs.migrate(id, proxy.address, {
      ...MATRIX_OPTIONS,
      // Hybrid could converge in its pre-copy rounds and switch over without post-copy: keep it from that.
      ...(c.strategy === 'hybrid' ? { downtimeLimitMs: 1 } : {}),
      ...mo.options,
      strategy: c.strategy,
      timeoutMs: mo.timeoutMs ?? 10_000,
    });
    let report: MigrationReport | undefined;
    if (c.fault === 'kill-source') {
      // The source may die mid-migration: its report dies with it, and the destination says what happened.
      const end = Date.now() + 60_000;
      while (Date.now() < end && src.process.exitCode === null && src.process.signalCode === null) {
        const r = await cs.migration(started.id).catch(() => undefined);
        if (r && (r.status === 'completed' || r.status === 'failed' || r.status === 'cancelled')) {
          report = r;
          break;
        }
        await sleep(50);
      }
    } else if (c.fault === 'kill-destination' && c.phase === 'postcopy') {
      // The source keeps reconnecting to a dead host (postcopy-paused): the operator's cancel ends it.
      await waitUntil(async () => {
        const r = await cs.migration(started.id);
        return r.status === 'postcopy-paused' || r.status === 'failed' || r.status === 'completed';
      }, 30_000);
      await cs.cancel(started.id).catch(() => undefined);
      report = await cs.follow(started.id, undefined, 50);
    } else {
      report = await cs.follow(started.id, undefined, 50);
    }
    result.injected = proxy.stats.events.length > 0;
    if (!result.injected) problems.push('the fault was never injected (phase not reached)');
    if (c.fault === 'stop-destination' || c.fault === 'stop-source') {
      for (const a of [src, dst]) if (a.process.exitCode === null) a.process.kill('SIGCONT');
    }
    const srcAlive = src.process.exitCode === null && src.process.signalCode === null;
    const dstAlive = dst.process.exitCode === null && dst.process.signalCode === null;
    result.status = report ? report.status : 'source killed';
    result.code = report?.error?.code ?? null;
    const alts = exp.orElse ?? [];
    const alt = alts.find(
      (a) => !a.pausedOn && result.status === a.status && (result.code ?? undefined) === a.code,
    );
    if (alt) {
      Object.assign(exp, { status: alt.status, code: alt.code, holder: alt.holder, pausedOn: undefined });
      notes.push(`the alternative outcome: ${alt.status} ${alt.code ?? ''} (guest on the ${alt.holder})`);
    }

    // The destination settles: before GO it discards what it got; it must never hold a guest it did not resume.
    if (dstAlive && exp.holder !== 'destination' && !exp.needsRecovery) {
      await waitUntil(async () => (await guestOn(cd, id)) === null, 10_000);
    }
    if (dstAlive) {
      // Settled means past 'verifying' too: a source killed at switch-over may already have sent SWITCHOVER, and
      // the destination then verifies and starts the guest's vCPUs before it waits for GO and sees the stream
      // end. Polled while still verifying (hundreds of ms on a loaded host), it had no error yet: "got null".
      await waitUntil(async () => (await incoming(dst)).every((m) => !IN_FLIGHT.has(m.phase)), 10_000);
      const inc = await incoming(dst).catch(() => []);
      result.destinationCode = inc.find((m) => m.error)?.error?.code ?? null;
      const g = await guestOn(cd, id);
      result.destinationGuest = g?.status ?? null;
    }
    if (srcAlive) result.sourceGuest = (await guestOn(cs, id))?.status ?? null;

    let onSource = result.sourceGuest === 'running';
    let onDest = result.destinationGuest !== null;
    result.holder = onSource && onDest ? 'both' : onSource ? 'source' : onDest ? 'destination' : 'none';
    if (result.holder === 'both') problems.push('the guest runs on both hosts (before any settling)');

    // A fault after GO that nobody could settle: the report must say where the guest waits, precisely; then the
    // cell does what that report tells the operator to do.
    const heldNow = async () =>
      dstAlive ? (await incoming(dst).catch(() => [])).find((m) => m.phase === 'held') : undefined;
    // A live source settles any copy held on the destination itself (GO or abort over RECONCILE) before long.
    if (srcAlive && (await heldNow())) await waitUntil(async () => !(await heldNow()), 15_000);
    const held = await heldNow();
    if (held && srcAlive) problems.push('the destination still holds a copy its live source never settled');
    if (report?.error?.code === 'OWNER_UNKNOWN') {
      result.pausedOn = 'source';
      if (!report.error.message.includes('paused on the source, destination unknown — resume with')) {
        problems.push(`OWNER_UNKNOWN without the precise words: ${report.error.message}`);
      }
    } else if (held) {
      result.pausedOn = 'destination';
      if (!held.error?.message?.includes('source unknown')) {
        problems.push(`a guest held on the destination without the precise words: ${held.error?.message}`);
      }
    }
    // (Expected holder none: a host died with the guest on it, which its report says.)
    if (result.holder === 'none' && result.pausedOn === null && exp.holder !== 'none') {
      problems.push('the guest runs nowhere and no report says where it waits');
    }
    const heldAlt = alts.find((a) => a.pausedOn && result.pausedOn === a.pausedOn);
    if (heldAlt && exp.pausedOn !== heldAlt.pausedOn) {
      Object.assign(exp, { holder: heldAlt.holder, pausedOn: heldAlt.pausedOn });
      notes.push(
        `the alternative outcome: held on the ${heldAlt.pausedOn}, then the guest on ${heldAlt.holder}`,
      );
    }
    if ((exp.pausedOn ?? null) !== result.pausedOn) {
      problems.push(
        `expected a report of the guest paused on ${exp.pausedOn ?? 'no host'}, got ${result.pausedOn}`,
      );
    }
    if (result.pausedOn === 'source' && srcAlive) {
      // `livemig migrate --reconcile ID`; if the destination still cannot be reached, `livemig guest resume`.
      const r = await cs.reconcile(started.id);
      if (r.status === 'completed') result.settled = 'reconcile: runs on the destination';
      else if (r.error?.code === 'OWNER_UNKNOWN') {
        await cs.resume(id);
        result.settled = 'reconcile: destination unreachable; guest resume on the source';
      } else result.settled = `reconcile: ${r.error?.code ?? r.status}, runs on the source`;
    } else if (result.pausedOn === 'destination' && !srcAlive) {
      // The source host is gone for good: adopt the held guest, or drop it when it lacks pages (post-copy).
      const adopted = await cd.settleIncoming(started.id, 'adopt').then(
        () => true,
        () => false,
      );
      if (!adopted) await cd.settleIncoming(started.id, 'discard');
      result.settled = adopted ? 'adopted on the destination' : 'discarded on the destination (lacks pages)';
      if (adopted) await waitUntil(async () => (await guestOn(cd, id))?.status === 'running', 10_000);
    }
    if (result.settled) {
      if (srcAlive) result.sourceGuest = (await guestOn(cs, id))?.status ?? null;
      if (dstAlive) result.destinationGuest = (await guestOn(cd, id))?.status ?? null;
      onSource = result.sourceGuest === 'running';
      onDest = result.destinationGuest !== null;
      result.holder = onSource && onDest ? 'both' : onSource ? 'source' : onDest ? 'destination' : 'none';
    }

    // An alternative told apart only by where the guest ends up (after any settling). A killed source leaves no
    // report: its outcome is then the destination's (a failure, with the destination's code if it has one).
    const endedAs = report ? result.status : 'failed';
    const endedWith = (report ? result.code : result.destinationCode) ?? undefined;
    const placedAlt = alts.find(
      (a) =>
        a.holder === result.holder &&
        a.holder !== exp.holder &&
        (a.pausedOn ?? null) === result.pausedOn &&
        a.status === endedAs &&
        a.code === endedWith,
    );
    if (placedAlt) {
      Object.assign(exp, { status: placedAlt.status, code: placedAlt.code, holder: placedAlt.holder });
      notes.push(
        `the alternative outcome: ${placedAlt.status} ${placedAlt.code ?? ''} (guest on the ${placedAlt.holder})`,
      );
    }

    // Checks.
    const code = report ? result.code : result.destinationCode;
    // Post-copy recovery (where the engine has it) may reconnect and finish a cell that needs it.
    const recoverable = c.phase === 'postcopy' && c.fault === 'link-cut';
    result.recovered = (exp.needsRecovery || recoverable) && result.status === 'completed';
    if (recoverable && report && (report.postcopy.recoveries ?? 0) < 1) {
      problems.push('a link cut after GO completed without a post-copy recovery');
    }
    if (exp.status === 'completed' || result.recovered) {
      if (result.status !== 'completed')
        problems.push(`expected completed, got ${result.status} ${code ?? ''}`);
    } else {
      if (result.status === 'completed') problems.push('expected a failure, the migration completed');
      if (exp.needsRecovery && exp.code === 'POSTCOPY_LINK_LOST' && code === 'CONNECTION_LOST') {
        // A broken post-copy link is sometimes reported by the send path as the plain CONNECTION_LOST.
        notes.push('imprecise code after GO: CONNECTION_LOST where POSTCOPY_LINK_LOST is meant');
      } else if ((code ?? undefined) !== exp.code && !(code === null && exp.codeMayBeAbsent)) {
        problems.push(`expected error ${exp.code}, got ${code}`);
      }
    }
    if (result.holder === 'both') problems.push('the guest runs on both hosts');
    const wantHolder = result.recovered ? 'destination' : exp.holder;
    if (exp.needsRecovery && !result.recovered) {
      // What the engine does without recovery: fail clearly, and never run the guest on both sides.
      if (srcAlive && result.sourceGuest === 'running')
        problems.push('the source resumed a handed-over guest');
    } else if (result.holder !== wantHolder) {
      problems.push(`expected the guest on ${wantHolder}, found it on ${result.holder}`);
    }
    if ((!exp.needsRecovery || result.recovered) && result.holder !== 'none' && result.holder !== 'both') {
      const holderClient = result.holder === 'source' ? cs : cd;
      const o = await checkOracle(holderClient, id, guest);
      result.oracle = o.equal;
      if (!o.equal)
        problems.push(`oracle: RAM differs from a guest that never moved, page ${o.firstDifferentPage}`);
      await holderClient.resume(id);
    }

    // Retry without faults, from whoever holds the guest (a fresh source if the source host died).
    if (!exp.needsRecovery && result.status !== 'completed' && result.holder !== 'destination') {
      let from = cs;
      let to = cd;
      let toAddress = dst.address;
      if (!srcAlive) {
        const s2 = await spawnAgent('127.0.0.1', ['--quiet']);
        agents.push(s2);
        from = new AgentClient(s2.address);
        await from.startGuest(guest, id);
      }
      if (!dstAlive) {
        const d2 = await spawnAgent('127.0.0.1', ['--quiet']);
        agents.push(d2);
        to = new AgentClient(d2.address);
        toAddress = d2.address;
      }
      const m = await from.migrate(id, toAddress, { ...mo.options, strategy: c.strategy, maxBandwidth: 0 });
      const r = await from.follow(m.id, undefined, 50);
      result.retry = r.status === 'completed' ? 'completed' : 'failed';
      if (r.status !== 'completed') problems.push(`retry ${r.status} ${r.error?.code ?? ''}`);
      else {
        const o = await checkOracle(to, id, guest);
        result.retryOracle = o.equal;
        if (!o.equal) problems.push('retry: oracle failed');
      }
    }
  } catch (err) {
    problems.push(`cell crashed: ${(err as Error).message}`);
  } finally {
    for (const t of timers) clearTimeout(t);
    await proxy?.close();
    for (const a of agents) {
      if (a.process.exitCode === null) a.process.kill('SIGCONT');
    }
    await Promise.all(agents.map((a) => a.stop('SIGKILL')));
  }
  result.ms = Math.round(performance.now() - t0);
  result.ok = problems.length === 0;
  mo.log?.(
    `${result.ok ? 'ok  ' : 'FAIL'} ${result.id}: ${result.status} ${result.code ?? ''} ${problems.join('; ')}`,
  );
  return result;
}

/** The outcome label of a cell for the tables: completed, recovered, failed CODE, or host died (CODE). */
export function outcomeLabel(r: CellResult): string {
  const code = r.code ?? r.destinationCode ?? '';
  if (r.recovered) return 'recovered after GO (completed)';
  if (r.pausedOn === 'source')
    return `paused on the source, destination unknown → ${r.settled ?? 'not settled'}`;
  if (r.pausedOn === 'destination')
    return `held on the destination, source unknown → ${r.settled ?? 'not settled'}`;
  if (r.expected.needsRecovery) return `host died after GO: guest lost (${code})`;
  if (r.status === 'completed') return 'completed';
  return code ? `failed ${code}` : 'source killed before the destination saw a stream';
}
