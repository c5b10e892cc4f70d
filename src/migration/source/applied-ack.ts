/**
 * Capability APPLIED_ACK: before it pauses the guest, the source asks the destination to say when it has applied
 * everything sent so far (APPLIED k, answered with the same k once every page before it is in RAM and the ledger)
 * and waits for that answer, at most `APPLIED_WAIT.timeoutMs`. QEMU's MIG_CMD_PING / MIG_RP_MSG_PONG plays this part
 * for QEMU's own loader; here the answer waits for the destination's page-sink thread.
 *
 * Why: the destination reads, checks and applies pages behind the socket. When the last live pass (hot-last's
 * passes, or the last round) has been written, the destination may still be applying it: a few milliseconds on a
 * quiet machine, ~90 ms on a loaded one for gap-128MiB. Paused right then, that backlog is downtime (the switch-over's
 * check waits for it). While the answer is awaited the guest still runs: the wait costs only the pages it writes
 * meanwhile, which go in the stop-and-copy (as small deltas with XBZRLE).
 *
 * A timeout falls back to pausing anyway; the answer, when it comes, is read and dropped (its reader stays queued
 * ahead of the switch-over's). A lost connection during the wait is the migration lost, the guest still running here.
 */
import { MigrationError } from '../../errors.js';
import { Command, decodeApplied, encodeApplied, type Frame } from '../protocol/index.js';
import { warmSwitchoverCode } from '../switchover-warm.js';
import { SWITCHOVER_TIMEOUT_MS } from './run.js';
import type { SourceState } from './state.js';

/** How long the source waits for APPLIED's answer before it pauses anyway (tests lower it). */
export const APPLIED_WAIT = { timeoutMs: 1000 };

/** Per migration: the last sync point asked for, and the bytes sent when the last answer's question left. */
interface Progress {
  seq: number;
  ackedBytes: number;
}
const progress = new WeakMap<SourceState, Progress>();

/**
 * What the wait ended with: the destination applied everything sent; nothing was sent since the last answer; the
 * destination did not grant APPLIED_ACK; or no answer in time (the caller pauses anyway).
 */
export type CaughtUp = 'applied' | 'nothing-new' | 'not-granted' | 'timeout';

/**
 * Waits until the destination has applied everything sent so far (capability APPLIED_ACK), at most `timeoutMs`.
 * Call it while the guest still runs, right before pausing it. Throws if the connection fails meanwhile.
 */
export async function destinationCaughtUp(
  s: SourceState,
  timeoutMs = APPLIED_WAIT.timeoutMs,
): Promise<CaughtUp> {
  if (!s.appliedAck) return 'not-granted';
  let p = progress.get(s);
  if (p === undefined) {
    p = { seq: 0, ackedBytes: -1 };
    progress.set(s, p);
  }
  if (s.sentBytes() === p.ackedBytes) return 'nothing-new';
  if (s.switchoverAck) {
    // The pause would wait for it anyway; and frames are read in order, so it must be read before APPLIED's answer.
    await s.conn.expect(Command.SWITCHOVER_ACK, SWITCHOVER_TIMEOUT_MS);
    s.switchoverAck = false;
    s.event('the destination is ready for switch-over (SWITCHOVER_ACK)');
  }
  s.checkAbort();
  const seq = ++p.seq;
  const t = performance.now();
  await s.conn.sendFrame(Command.APPLIED, encodeApplied(seq));
  const bytes = s.sentBytes(); // with the question itself: nothing new was sent if this is still the count
  // No timeout on the read itself: a late answer must still be consumed here, not by the switch-over's reader.
  const answer = s.conn.expect(Command.APPLIED).then((f) => checkAnswer(s, f, seq));
  answer.catch(() => undefined); // after a timeout nobody awaits it; a failure then surfaces through the connection
  // The round trip is idle time: warm the switch-over's code now (precopy.ts warms it again right before the
  // pause, which then costs microseconds), so that the pause follows the answer closely — the guest writes on
  // until the pause, and what it writes goes in the stop-and-copy.
  warmSwitchoverCode(s.guest.config);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  let outcome: 'applied' | 'timeout';
  try {
    outcome = await Promise.race([answer.then(() => 'applied' as const), late]);
  } finally {
    clearTimeout(timer);
  }
  const ms = (performance.now() - t).toFixed(2);
  if (outcome === 'timeout') {
    s.event(`APPLIED ${seq}: no answer within ${timeoutMs} ms, pausing without it`);
    return 'timeout';
  }
  p.ackedBytes = bytes;
  s.event(`the destination applied everything sent so far (APPLIED ${seq}, answered in ${ms} ms)`);
  return 'applied';
}

/** The answer must echo the sync point asked for; anything else is a peer we cannot trust: the link is refused. */
function checkAnswer(s: SourceState, f: Frame, seq: number): void {
  let got: number;
  try {
    got = decodeApplied(f.payload);
  } catch (err) {
    const e = err instanceof MigrationError ? err : new MigrationError('PROTOCOL', `APPLIED: ${String(err)}`);
    s.conn.destroy(e);
    throw e;
  }
  if (got !== seq) {
    const e = new MigrationError(
      'PROTOCOL',
      `the destination answered APPLIED ${got} to APPLIED ${seq}: the stream is out of step`,
    );
    s.conn.destroy(e);
    throw e;
  }
}
