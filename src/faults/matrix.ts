/**
 * The fault matrix: every strategy × every phase it has × every fault, each cell a real migration between two
 * agent processes through a FaultProxy, the fault injected at that phase by a proxy trigger (a frame of the
 * migration stream, so the phase is hit exactly, not by polling). After each cell:
 *
 * - the guest runs in exactly one place (or, when its host was SIGKILLed before switch-over, in none — it died
 *   with its host), and no partial guest is resumed anywhere before GO;
 * - the holder's RAM passes the determinism oracle;
 * - the migration ended as `expected()` (matrix-cells.ts) says: completed for faults that only slow it, otherwise
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
  migrationEnded,
} from '../migration/index.js';
import { type Cell, cellId, type Expectation, expected, type Holder, phaseTrigger } from './matrix-cells.js';
import { type FaultAction, FaultProxy } from './proxy.js';

export {
  type Alternative,
  allCells,
  type Cell,
  cellId,
  type Expectation,
  expected,
  FAULTS,
  type FaultName,
  type Holder,
  MATRIX_STRATEGIES,
  PHASES,
  type PhaseName,
  phasesOf,
  phaseTrigger,
} from './matrix-cells.js';

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
        if (r && migrationEnded(r.status)) {
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
