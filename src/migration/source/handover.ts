/**
 * Switch-over: vCPU state and digest, READY, then GO … RESUMED. A fault between READY and RESUMED is settled over a
 * new connection (RECONCILE, ownership-source.ts); the errors say where the guest was left.
 */
import { MigrationError } from '../../errors.js';
import { fullRamDigest, vcpuDigest } from '../ledger.js';
import { type Handover, reconcileOwnership } from '../ownership-source.js';
import { Command, type Digest, encodeDigest, encodeJson } from '../protocol/index.js';
import { SWITCHOVER_TIMEOUT_MS } from './run.js';
import type { SourceState } from './state.js';

/** Sends vCPU state and the digest; waits for READY, sends GO, waits for RESUMED. */
export async function switchover(s: SourceState): Promise<void> {
  const r = s.r;
  r.phase = 'switchover';
  const state = s.guest.state();
  await s.conn.sendFrame(Command.VCPU_STATE, encodeJson(state));
  const d = digest(s, state);
  await s.conn.sendFrame(Command.SWITCHOVER, encodeDigest(d));
  s.event('switch-over: last pages, vCPU state and digest sent');
  s.readyAsked = true;
  await s.conn.expect(Command.READY, SWITCHOVER_TIMEOUT_MS);
  s.event('switch-over: the destination verified the digest (READY)');
  // From GO on, the source never resumes the guest unless the destination says it dropped its copy.
  await go(s, 'query');
  r.downtimeMs = performance.now() - s.pausedAt;
  r.verified = d.method !== 'none';
  r.remainingBytes = 0;
  s.event(`guest resumed on the destination; downtime ${r.downtimeMs.toFixed(1)} ms`);
  if (!s.conn.closed) s.conn.socket.end();
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

/**
 * GO, then RESUMED. A fault in between is settled over a new connection (RECONCILE): returns 'destination' when the
 * guest runs there; ownership back to the source (resumed here by the lifecycle) or unknown (left paused) throws.
 */
export async function go(s: SourceState, action: 'query' | 'abort'): Promise<'destination' | 'source'> {
  // A cancel, a timeout or a dead link before this point keeps the guest here (no await until handedOff is set).
  s.checkAbort();
  s.handedOff = true;
  s.spec.onHandOff?.();
  try {
    await s.conn.sendFrame(Command.GO);
    await s.conn.expect(Command.RESUMED, s.o.handoverTimeoutMs);
    return 'destination';
  } catch (err) {
    const cause =
      err instanceof MigrationError ? err : new MigrationError('INTERNAL', `switch-over: ${String(err)}`);
    s.conn.destroy(cause);
    if (s.spec.shutdown?.aborted) throw ownerUnknown(s, cause, 'the agent is shutting down');
    s.event(`switch-over: ${cause.code} after GO (${cause.message}); settling who runs the guest`);
    const owner = await settle(s, action, cause);
    if (owner === 'destination') {
      s.event('reconciled: the guest runs on the destination');
      return 'destination';
    }
    if (owner === 'source') {
      // The destination never resumed it and dropped its copy: ownership is back here (the lifecycle resumes it).
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
