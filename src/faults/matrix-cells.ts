/**
 * The fault matrix's cells and what each must end as: the faults, the phases each strategy has, the frame of the
 * stream that triggers a phase, and `expected()` (matrix.ts runs the cells).
 */
import { DEFAULT_OPTIONS, type Strategy } from '../migration/index.js';
import { Command } from '../migration/protocol/index.js';
import type { FaultTrigger } from './proxy.js';

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
