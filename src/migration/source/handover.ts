/**
 * Switch-over: vCPU state and digest (with GO when a fault can be reconciled), READY, then (GO …) RESUMED. A fault between READY and RESUMED is settled over a
 * new connection (RECONCILE, ownership-source.ts); the errors say where the guest was left.
 */
import { MigrationError } from '../../errors.js';
import { fullRamDigest, vcpuDigest } from '../ledger.js';
import { type Handover, reconcileOwnership } from '../ownership-source.js';
import {
  Command,
  type Digest,
  decodeResumedBody,
  encodeDigest,
  encodeJson,
  type Frame,
  type ResumedBody,
} from '../protocol/index.js';
import type { SwitchoverTimes } from '../stats.js';
import { SWITCHOVER_TIMEOUT_MS } from './run.js';
import type { SourceState } from './state.js';

/**
 * Right after the park, before the last pages: takes the vCPU state and encodes VCPU_STATE, which leaves with the
 * digest (switchover) in one write. The state is final: the vCPUs are parked.
 *
 * It used to be written here at once, so that the destination decoded it while the source found the last pages.
 * Traced with µs stamps in both agents on the 2-core machine, that write cost the source 0.5–0.8 ms in most
 * migrations: a loopback socket wakes its reader as a "sync" wake-up (the kernel expects the writer to sleep next),
 * so the destination was put on the source's core and ran its decode there while the source, with its last pages
 * and digest still to do, waited for the core. Written with the digest, the source sleeps (waiting for READY) right
 * after the write, and the destination's decode (tens of µs, warm: switchover-warm.ts) follows SWITCHOVER instead.
 */
export function sendVcpuState(s: SourceState): void {
  const state = s.guest.state();
  s.stateBody = encodeJson(state);
  s.pausedState = state;
  s.stateSentAt = performance.now();
}

/**
 * Largest stop-and-copy that goes in the switch-over's one write: well under the connection's socket queue (4 MiB),
 * past which a send waits for the socket to drain, which a corked socket never does.
 */
export const ONE_WRITE_BYTES = 1 << 20;

/**
 * After sendVcpuState, with the last pages known: when they are few, corks the socket and writes VCPU_STATE into it
 * first, so that the state, the last pages and the digest leave in one write (the switch-over uncorks after the
 * digest: call {@link endOneWrite} on every way out). Measured with `bench:downtime` on the 2-core machine, the last
 * pages' own write woke the destination onto the source's core (a loopback write wakes its reader as a "sync"
 * wake-up) and handed its page-sink thread a batch, both while the source still had its digest to do; in one write
 * the source sleeps right after it. VCPU_STATE goes first so that the destination knows the guest is paused when the
 * pages arrive, and applies them on its own thread instead of waking its page sink (destination.ts).
 */
export function beginOneWrite(s: SourceState, lastPages: number): void {
  if (s.multifd || s.oneWrite || !s.conn.socket.cork || lastPages * s.pageSize > ONE_WRITE_BYTES) return;
  s.conn.disableRateLimit(); // (already, after the pause) no pacing: the frames are written as they are sent
  s.conn.socket.cork();
  s.oneWrite = true;
  void s.conn.sendFrame(Command.VCPU_STATE, s.stateBody!).catch(() => undefined); // a failure surfaces at the digest
  s.stateWritten = true;
}

/** Uncorks the socket if beginOneWrite corked it (idempotent). */
export function endOneWrite(s: SourceState): void {
  if (!s.oneWrite) return;
  s.oneWrite = false;
  s.conn.socket.uncork?.();
}

/**
 * Sends the vCPU state (taken ahead by sendVcpuState) and the digest in one write; waits for READY and RESUMED. With `goWithDigest`,
 * when a fault after handing the guest over can be settled (the destination granted OWNER_RECONCILE and we can
 * redial it), GO rides in the same write:
 * the destination resumes the guest as soon as its check passes, saving a round trip (and two wake-ups) of
 * downtime. Verification is unchanged: the destination never resumes a guest whose digest does not match.
 */
export async function switchover(s: SourceState): Promise<void> {
  const r = s.r;
  r.phase = 'switchover';
  const t0 = performance.now(); // the last pages are written
  if (!s.pausedState) sendVcpuState(s); // (callers take it ahead, right after the park)
  const state = s.pausedState!;
  const stateBody = s.stateBody!;
  const t1 = Math.max(t0, s.stateSentAt);
  const d = digest(s, state);
  const digestBody = encodeDigest(d);
  const t2 = performance.now();
  const withGo = s.o.goWithDigest && s.ownership && s.spec.redial !== undefined;
  if (withGo) handOff(s);
  // The guest is paused: no pacing, and the frames must leave in this order, together (corked: one write).
  s.conn.disableRateLimit();
  const sent = s.conn.corked(() =>
    Promise.all([
      ...(s.stateWritten ? [] : [s.conn.sendFrame(Command.VCPU_STATE, stateBody)]),
      s.conn.sendFrame(Command.SWITCHOVER, digestBody),
      ...(withGo ? [s.conn.sendFrame(Command.GO)] : []),
    ]),
  );
  endOneWrite(s); // state, last pages and digest leave now, together
  sent.catch(() => undefined); // awaited below; a failure is reported there
  s.readyAsked = true;
  let t3 = 0;
  let tReady = 0;
  let resumed: Frame | undefined;
  if (withGo) {
    resumed = await afterGo(s, 'query', async () => {
      await sent;
      t3 = performance.now();
      s.event('switch-over: last pages, vCPU state and digest sent (with GO)');
      // Handed over: READY and RESUMED come together, and a silent destination is settled by RECONCILE after the
      // handover timeout, as after GO (a full RAM check on the destination may take longer: 0.25 s per GiB).
      await readyAfterGo(s, s.o.verify === 'full' ? SWITCHOVER_TIMEOUT_MS : s.o.handoverTimeoutMs);
      tReady = performance.now();
      s.event('switch-over: the destination verified the digest (READY)');
      return s.conn.expect(Command.RESUMED, s.o.handoverTimeoutMs);
    });
  } else {
    await sent;
    t3 = performance.now();
    s.event('switch-over: last pages, vCPU state and digest sent');
    await s.conn.expect(Command.READY, SWITCHOVER_TIMEOUT_MS);
    tReady = performance.now();
    s.event('switch-over: the destination verified the digest (READY)');
    // From GO on, the source never resumes the guest unless the destination says it dropped its copy.
    handOff(s);
    resumed = await afterGo(s, 'query', async () => {
      await s.conn.sendFrame(Command.GO);
      return s.conn.expect(Command.RESUMED, s.o.handoverTimeoutMs);
    });
  }
  const tResumed = performance.now();
  s.pausedWindow?.close();
  r.downtimeMs = tResumed - s.pausedAt;
  r.verified = d.method !== 'none';
  r.remainingBytes = 0;
  if (resumed) {
    const parkedAt = s.parkedAt || s.pausedAt;
    // Contiguous steps that add up to the downtime: the state is normally taken ahead of the last pages.
    const ahead = s.stateSentAt <= t0;
    r.switchover = {
      pauseMs: parkedAt - s.pausedAt,
      stateMs: ahead ? s.stateSentAt - parkedAt : t1 - t0,
      lastPagesMs: ahead ? t0 - s.stateSentAt : t0 - parkedAt,
      digestMs: t2 - t1,
      sendMs: t3 - t2,
      checkMs: tReady - t3,
      ackMs: tResumed - tReady,
      goWithDigest: withGo,
    };
    recordResumed(s, r.switchover, resumed);
  }
  s.event(`guest resumed on the destination; downtime ${r.downtimeMs.toFixed(3)} ms`);
  if (!s.conn.closed) s.conn.socket.end();
}

/** The destination refused the switch-over (ERROR) before READY: it holds no copy, the guest is the source's. */
export class RefusedBeforeReady extends Error {
  constructor(readonly refusal: MigrationError) {
    super(refusal.message);
  }
}

/**
 * READY after a write that carried GO. The destination's ERROR before READY means it refused what it was sent and
 * never resumed (it resumes only after writing READY, and reports no error once it has): the guest is still ours.
 */
export async function readyAfterGo(s: SourceState, timeoutMs: number): Promise<void> {
  try {
    await s.conn.expect(Command.READY, timeoutMs);
  } catch (err) {
    if (err instanceof MigrationError && err.context.remote) throw new RefusedBeforeReady(err);
    throw err;
  }
}

/**
 * The switch-over report's parts that come from RESUMED: the destination's own steps and its threads' priority,
 * beside this side's (pre-copy's and post-copy's hand-over alike).
 */
export function recordResumed(s: SourceState, sw: SwitchoverTimes, resumed: Frame): void {
  const body = resumedBody(resumed);
  if (body.times) sw.destination = body.times;
  if (s.pausedWindow) {
    sw.priority = {
      source: s.pausedWindow.priority,
      ...(body.priority ? { destination: body.priority } : {}),
    };
  }
}

function resumedBody(resumed: Frame): ResumedBody {
  try {
    return decodeResumedBody(resumed.payload);
  } catch {
    // An unreadable RESUMED body costs only the destination's figures: the guest runs there either way.
    return {};
  }
}

export function digest(s: SourceState, state: unknown): Digest {
  const method = s.o.verify;
  const ram =
    method === 'full'
      ? fullRamDigest(s.pageCount, (i) => s.guest.ram.page(i))
      : method === 'ledger'
        ? s.ledger.digest()
        : '0000000000000000';
  return { method, ram, vcpu: vcpuDigest(state) };
}

/** The source's side of the handover (GO … RESUMED) and of RECONCILE (ownership-source.ts). */
function handover(s: SourceState): Handover {
  return {
    migrationId: s.r.id,
    token: s.recoveryToken,
    timeoutMs: s.o.handoverTimeoutMs,
    reconcileTimeoutMs: s.o.reconcileTimeoutMs,
    redial: s.ownership ? s.spec.redial : undefined,
    shutdown: s.spec.shutdown,
    event: (text) => s.event(text),
  };
}

/**
 * Settles who runs the guest after a fault between READY and RESUMED (or, with `abort`, tells a destination that
 * may hold a copy to drop it). Returns who owns the guest.
 */
export function settle(s: SourceState, action: 'query' | 'abort', cause: MigrationError) {
  return reconcileOwnership(handover(s), action, cause);
}

/** From here on cancel and --timeout no longer apply: the guest belongs to the destination unless it says not. */
export function handOff(s: SourceState): void {
  // A cancel, a timeout or a dead link before this point keeps the guest here (no await until handedOff is set).
  s.checkAbort();
  s.handedOff = true;
  s.spec.onHandOff?.();
}

/**
 * GO, then RESUMED. A fault in between is settled over a new connection (RECONCILE): returns 'destination' when the
 * guest runs there; ownership back to the source (resumed here by the lifecycle) or unknown (left paused) throws.
 */
export async function go(s: SourceState, action: 'query' | 'abort'): Promise<'destination' | 'source'> {
  handOff(s);
  await afterGo(s, action, async () => {
    await s.conn.sendFrame(Command.GO);
    return s.conn.expect(Command.RESUMED, s.o.handoverTimeoutMs);
  });
  return 'destination';
}

/**
 * Runs `exchange` (the frames after GO, up to RESUMED) with the guest handed over. Resolves with the RESUMED frame,
 * or undefined when a fault was settled by RECONCILE with the guest running on the destination; throws when the
 * guest is the source's again (the lifecycle resumes it) or its owner is unknown (left paused).
 */
export async function afterGo(
  s: SourceState,
  action: 'query' | 'abort',
  exchange: () => Promise<Frame>,
): Promise<Frame | undefined> {
  try {
    return await exchange();
  } catch (err) {
    if (err instanceof RefusedBeforeReady) {
      s.handedOff = false;
      s.event(
        `switch-over: the destination refused before READY (${err.refusal.code}); the guest stays on the source`,
      );
      throw err.refusal;
    }
    const cause =
      err instanceof MigrationError ? err : new MigrationError('INTERNAL', `switch-over: ${String(err)}`);
    s.conn.destroy(cause);
    if (s.spec.shutdown?.aborted) throw ownerUnknown(s, cause, 'the agent is shutting down');
    s.event(`switch-over: ${cause.code} after GO (${cause.message}); settling who runs the guest`);
    const owner = await settle(s, action, cause);
    if (owner === 'destination') {
      s.event('reconciled: the guest runs on the destination');
      return undefined;
    }
    if (owner === 'source') {
      // The destination never resumed the guest and dropped its copy: ownership is back here (the lifecycle resumes it).
      s.handedOff = false;
      s.event('reconciled: the destination dropped its copy; the guest resumes on the source');
      throw new MigrationError(
        cause.code,
        `${cause.message}; after GO the destination was asked (RECONCILE): it never resumed the guest and ` +
          'dropped its copy, so the guest runs on the source again',
        { ...cause.context, owner: 'source' },
      );
    }
    throw ownerUnknown(s, cause, 'the destination could not be reached');
  }
}

function ownerUnknown(s: SourceState, cause: MigrationError, why: string): MigrationError {
  const r = s.r;
  const dst = r.destination;
  const src = r.source || 'SOURCE';
  const g = s.spec.guestId;
  return new MigrationError(
    'OWNER_UNKNOWN',
    `paused on the source, destination unknown — resume with \`livemig migrate --reconcile ${r.id} --from ${src}\` ` +
      `once ${dst} answers (it resumes the guest where it belongs), or, only after checking that ${dst} does not ` +
      `run it (GET /v1/migrations/incoming/${r.id} there says discarded or unknown, or its host is gone), ` +
      `\`livemig guest resume --agent ${src} --guest ${g}\`. Cause: ${cause.code} after GO (${cause.message}); ${why}` +
      (s.ownership ? '' : '; the destination does not support RECONCILE'),
    { owner: 'unknown', cause: cause.code },
  );
}
