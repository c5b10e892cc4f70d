/**
 * Post-copy: hand the guest over now and push its pages behind it, the destination's page requests first; when the
 * link breaks after switch-over, recover over a new connection (RECOVER) and go on from what the destination holds.
 */
import { MigrationError } from '../../errors.js';
import { remoteErrorToMigrationError } from '../connection.js';
import {
  Command,
  type Digest,
  decodeCompleteBody,
  decodePageRequest,
  decodeRecoverAck,
  encodeDigest,
  encodeJson,
  encodePostcopyStart,
  encodeRecover,
  type Frame,
  PREAMBLE,
} from '../protocol/index.js';
import { percentile } from '../stats.js';
import { warmSwitchoverCode } from '../switchover-warm.js';
import { afterGo, digest, go, handOff, readyAfterGo, recordResumed } from './handover.js';
import { openPreempt } from './preempt.js';
import { HANDSHAKE_TIMEOUT_MS, SWITCHOVER_TIMEOUT_MS } from './run.js';
import type { SourceState } from './state.js';

/** Frames this small keep a faulting vCPU's page from queueing behind megabytes of pushed pages. */
const POSTCOPY_FRAME_BYTES = 64 * 1024;

/**
 * `stale` = pages dirtied since they were last sent (hybrid), or null when nothing was sent before (pure
 * post-copy).
 */
export async function postcopy(s: SourceState, stale: Uint32Array | null): Promise<void> {
  const r = s.r;
  const pageCount = s.pageCount;
  // Pages valid at the destination: everything sent in pre-copy and not dirtied since (hybrid: `stale` is the
  // caller's sync after its pause). Pure post-copy sent nothing: none is valid, every page is needed — known before
  // the pause, so built (and the start encoded) while the guest still runs.
  const valid = new Uint8Array(Math.ceil(pageCount / 8));
  const needed = new Uint8Array(pageCount);
  if (stale) {
    valid.fill(0xff);
    for (let i = pageCount; i < valid.length * 8; i++) valid[i >> 3]! &= ~(1 << (i & 7));
    for (const p of stale) {
      valid[p >> 3]! &= ~(1 << (p & 7));
      needed[p] = 1;
    }
  } else {
    needed.fill(1);
  }
  const startBody = encodePostcopyStart(valid);
  if (s.pausedAt === 0) {
    r.guest.stepsPerSecBefore = await s.sampleRate();
    // A pure post-copy ran no round, whose end warms this (precopy.ts): the vCPU state's encoding, not in the pause.
    warmSwitchoverCode(s.guest.config);
    await s.pause();
  }
  r.phase = 'switchover';
  const state = s.guest.state();
  const resumedAt = await startPostcopy(s, state, startBody);
  // The handover's link broke but the guest resumed there: recover before pushing.
  let lostAtHandover = s.conn.closed ? s.conn.error : undefined;
  r.downtimeMs = resumedAt - s.pausedAt;
  s.pausedWindow?.close(); // the guest runs on the destination: src/paused-window.ts
  r.status = 'postcopy-active';
  r.phase = 'postcopy';
  s.event(`post-copy: guest running on the destination after ${r.downtimeMs.toFixed(1)} ms`);

  // Requests from the destination's faults jump the queue; everything else is pushed in address order.
  const requests: number[] = [];
  let wake: (() => void) | undefined;
  let completeFrame: Buffer | undefined;
  let remoteError: MigrationError | undefined;
  const listen = (): void => {
    s.conn.divertFrames((f) => {
      if (f.command === Command.PAGE_REQUEST) {
        const preempt = s.preempt?.open ? s.preempt : undefined;
        for (const p of decodePageRequest(f.payload, pageCount)) {
          if (!preempt) requests.push(p);
          else if (needed[p]) {
            // postcopy-preempt: answered now, on its own connection, whatever the push loop is waiting for.
            needed[p] = 0;
            remaining--;
            preempt.answer(s, p);
            r.postcopy.requestedPages++;
            r.postcopy.preemptPages = (r.postcopy.preemptPages ?? 0) + 1;
          }
        }
      } else if (f.command === Command.COMPLETE) {
        completeFrame = f.payload;
      } else if (f.command === Command.ERROR) {
        // The peer's code and words (escaped and bounded by remoteErrorToMigrationError) say what went wrong there.
        const peer = remoteErrorToMigrationError(f);
        remoteError = new MigrationError(
          'POSTCOPY_LINK_LOST',
          `destination reported an error during post-copy: ${peer.code} (${peer.message})`,
          { cause: peer.code, remote: true },
        );
      }
      wake?.();
    });
  };
  // Counted before listen(): a PAGE_REQUEST already queued behind RESUMED is handled at once, and with
  // postcopy-preempt answered there and then.
  let remaining = 0;
  for (let i = 0; i < pageCount; i++) remaining += needed[i]!;
  let next = 0;
  listen();
  const push = async (): Promise<void> => {
    await s.frames.pending;
    s.frames.newBuilder(POSTCOPY_FRAME_BYTES);
    s.conn.lowLatency();
    r.remainingBytes = remaining * s.pageSize;
    const encoder = s.encoder;
    let sinceYield = 0;
    while (remaining > 0) {
      if (remoteError) throw remoteError;
      if (s.conn.error) throw s.conn.error;
      let p = -1;
      let requested = false;
      while (requests.length > 0) {
        const q = requests.shift()!;
        if (needed[q]) {
          p = q;
          requested = true;
          break;
        }
      }
      if (p < 0) {
        while (next < pageCount && !needed[next]) next++;
        p = next;
        if (p >= pageCount) break; // the last pages were answered on the preempt channel
      }
      needed[p] = 0;
      remaining--;
      encoder.encode(p, false, false);
      const builder = s.frames.builder;
      if (requested) {
        r.postcopy.requestedPages++;
        builder.finishFrame();
      } else r.postcopy.pushedPages++;
      if (++sinceYield >= 64 || requested) {
        sinceYield = 0;
        if (builder.entries > 0 && requests.length > 0) builder.finishFrame();
        await s.frames.pending;
        r.remainingBytes = remaining * s.pageSize;
        s.emit();
      }
    }
    await s.frames.flush();
    // Answers on the preempt channel are on their way too before POSTCOPY_END claims every page was sent.
    if (s.preempt) await s.preempt.frames.pending;
  };
  const applyPresent = (present: Uint8Array): void => {
    remaining = 0;
    for (let p = 0; p < pageCount; p++) {
      needed[p] = present[p >> 3]! & (1 << (p & 7)) ? 0 : 1;
      remaining += needed[p]!;
    }
    next = 0;
    requests.length = 0;
    listen();
  };
  try {
    let d: Digest;
    for (;;) {
      try {
        if (lostAtHandover) {
          const lost = lostAtHandover;
          lostAtHandover = undefined;
          if (!s.spec.recover) throw postcopyLinkLost(lost);
          applyPresent(await recoverLink(s, lost));
          await reopenPreempt(s);
        }
        await push();
        d = digest(s, state);
        await s.conn.sendFrame(Command.POSTCOPY_END, encodeDigest(d));
        // Wait for COMPLETE (the destination verified the ledger of what it received).
        const deadline = performance.now() + SWITCHOVER_TIMEOUT_MS;
        while (!completeFrame) {
          if (remoteError) throw remoteError;
          if (s.conn.error) throw s.conn.error;
          if (performance.now() > deadline)
            throw new MigrationError('TIMEOUT', 'no COMPLETE from the destination');
          await new Promise<void>((res) => {
            wake = res;
            setTimeout(res, 50);
          });
        }
        break;
      } catch (err) {
        // Only a broken link is recovered; an error the destination reported, or our own, is final.
        const lost = s.conn.error;
        if (remoteError || !lost || lost.code === 'CANCELLED') throw err;
        if (!s.spec.recover) throw postcopyLinkLost(lost);
        applyPresent(await recoverLink(s, lost));
        await reopenPreempt(s);
      }
    }
    const body = decodeCompleteBody(completeFrame);
    const lat = (body.faultLatencyMs ?? []).slice().sort((a, b) => a - b);
    r.postcopy.faults = body.faults ?? r.postcopy.faults;
    r.postcopy.faultLatencyMs = {
      p50: percentile(lat, 50),
      p99: percentile(lat, 99),
      max: lat.length > 0 ? lat[lat.length - 1]! : 0,
    };
    r.verified = body.verified === true && d.method !== 'none';
    r.remainingBytes = 0;
    s.event('post-copy complete');
    s.conn.socket.end();
  } finally {
    s.conn.stopDiverting();
  }
}

/**
 * The post-copy switch-over: the vCPU state and POSTCOPY_START (the bitmap of pages already valid there) in one
 * write, then READY, GO and RESUMED. With `postcopyGoWithStart`, when a fault after handing over can be settled
 * (the destination granted OWNER_RECONCILE and we can redial it), GO rides in that write too, as QEMU's post-copy
 * package carries its "run" command: the destination starts the guest once it has taken the start and writes READY
 * and RESUMED together, one round trip inside the pause instead of two. The point of no return is then that write;
 * before it any fault leaves the guest here, and the destination never runs a guest whose state or start it refused
 * (its ERROR comes before READY, and it resumes only after READY).
 */
async function startPostcopy(s: SourceState, state: unknown, startBody: Buffer): Promise<number> {
  const r = s.r;
  const t0 = performance.now(); // the vCPU state taken
  const stateBody = encodeJson(state);
  const t1 = performance.now();
  const withGo = s.o.postcopyGoWithStart && s.ownership && s.spec.redial !== undefined;
  // From here a fault is settled by RECONCILE (no await before handedOff is set: handOff checks cancel first).
  if (withGo) handOff(s);
  // The guest is paused: these few KiB go unpaced (--max-bandwidth paces the push after RESUMED), in one write.
  const sent = s.conn.unpaced(() =>
    s.conn.corked(() =>
      Promise.all([
        s.conn.sendFrame(Command.VCPU_STATE, stateBody),
        s.conn.sendFrame(Command.POSTCOPY_START, startBody),
        ...(withGo ? [s.conn.sendFrame(Command.GO)] : []),
      ]),
    ),
  );
  sent.catch(() => undefined); // awaited below; a failure is reported there
  s.readyAsked = true;
  let t2 = 0;
  let tReady = 0;
  // A fault before RESUMED: a destination that holds the guest is told to drop it (it lacks pages and never ran:
  // the source takes it back); one that resumed it waits in postcopy-paused, and recovery reconnects.
  let resumed: Frame | undefined;
  if (withGo) {
    resumed = await afterGo(s, 'abort', async () => {
      await sent;
      t2 = performance.now();
      s.event('post-copy: vCPU state and start sent (with GO)');
      await readyAfterGo(s, s.o.handoverTimeoutMs); // an ERROR before it: the state or the start refused
      tReady = performance.now();
      return s.conn.expect(Command.RESUMED, s.o.handoverTimeoutMs);
    });
  } else {
    await sent;
    t2 = performance.now();
    await s.conn.expect(Command.READY, SWITCHOVER_TIMEOUT_MS);
    tReady = performance.now();
    await s.conn.unpaced(() => go(s, 'abort')); // GO is written before go() first waits: unpaced too
  }
  const tResumed = performance.now();
  // Settled over a new connection (RECONCILE) instead: no RESUMED on this one, no steps to report.
  if (s.conn.closed) return tResumed;
  const parkedAt = s.parkedAt || s.pausedAt;
  r.switchover = {
    pauseMs: parkedAt - s.pausedAt,
    lastPagesMs: t0 - parkedAt, // post-copy sends no pages here: taking the vCPU state
    stateMs: t1 - t0,
    digestMs: 0,
    sendMs: t2 - t1,
    checkMs: tReady - t2,
    ackMs: tResumed - tReady,
    goWithDigest: withGo,
  };
  if (resumed) recordResumed(s, r.switchover, resumed);
  return tResumed;
}

/**
 * The post-copy link broke: both sides keep their state (the guest runs on the destination and waits on faults;
 * only this source holds the missing pages). Get a new connection from `recover`, present the migration's token,
 * and learn which pages the destination holds. Returns that bitmap.
 */
async function recoverLink(s: SourceState, cause: MigrationError): Promise<Uint8Array> {
  const r = s.r;
  const pausedAt = performance.now();
  const bytesBefore = s.conn.bytesSent;
  s.conn.destroy(cause);
  // The preempt channel goes with the main link; a new one is opened once the migration has reconnected.
  if (s.preempt) {
    s.preemptBytesBefore += s.preempt.conn.bytesSent;
    s.preempt.destroy();
  }
  r.status = 'postcopy-paused';
  s.event(`post-copy paused: ${cause.message}`);
  s.emit(true);
  try {
    for (;;) {
      const conn = await s.spec.recover!(cause, r);
      r.status = 'postcopy-recover';
      s.emit(true);
      try {
        conn.writeRaw(PREAMBLE);
        if (s.framesBound) {
          conn.bindFramesAfterReceiving(
            Command.RECOVER_ACK,
            (p) => decodeRecoverAck(p, s.pageCount, true).nonce,
          );
        }
        await conn.sendFrame(Command.RECOVER, encodeRecover({ migrationId: r.id, token: s.recoveryToken }));
        const ack = await conn.expect(Command.RECOVER_ACK, HANDSHAKE_TIMEOUT_MS);
        const { present } = decodeRecoverAck(ack.payload, s.pageCount, s.framesBound);
        // The bytes of every connection count towards the report.
        s.bytesBeforeRecovery += bytesBefore;
        s.conn = conn;
        s.frames.resetSends();
        r.postcopy.recoveries = (r.postcopy.recoveries ?? 0) + 1;
        r.status = 'postcopy-active';
        s.event(`post-copy resumed over a new connection (recovery ${r.postcopy.recoveries})`);
        return present;
      } catch (err) {
        // The destination refused (it does not know this migration) or the new link broke too.
        conn.destroy();
        if (err instanceof MigrationError && err.code === 'RECOVER_REFUSED') throw err;
        cause = err instanceof MigrationError ? err : cause;
        r.status = 'postcopy-paused';
        s.emit(true);
      }
    }
  } finally {
    r.postcopy.pausedMs = (r.postcopy.pausedMs ?? 0) + (performance.now() - pausedAt);
  }
}

/**
 * After a recovery: a new preempt channel. If it cannot be opened the migration goes on with the answers on the
 * main connection (as without postcopy-preempt), rather than pausing again for a channel that only speeds it up.
 */
async function reopenPreempt(s: SourceState): Promise<void> {
  if (!s.preempt) return;
  s.preempt = undefined;
  try {
    s.preempt = await openPreempt(s);
    s.event('post-copy preempt channel reopened');
  } catch (err) {
    s.event(
      `post-copy preempt channel not reopened (${err instanceof Error ? err.message : String(err)}): ` +
        'fault answers travel on the main connection',
    );
  }
}

function postcopyLinkLost(cause: MigrationError): MigrationError {
  return new MigrationError(
    'POSTCOPY_LINK_LOST',
    'the link broke during post-copy, after switch-over: the guest now runs on the destination and waits there ' +
      'for pages only this source holds. It cannot be resumed on the source. Keep this source agent running; ' +
      `the migration cannot be completed by this version without recovery (cause: ${cause.message})`,
    { cause: cause.code },
  );
}
