/**
 * One outgoing migration from start to report: cancel, --timeout and agent shutdown, the strategy, and on failure
 * the guest put back as it was while the source is still authoritative (before GO). The source stays authoritative
 * until the destination has verified the guest and the source has sent GO.
 */
import { randomBytes } from 'node:crypto';
import { asMigrationError, MigrationError } from '../../errors.js';
import { holdSwitchoverPriority } from '../../switchover-priority.js';
import { type MigrationReport, mbps } from '../stats.js';
import { settle } from './handover.js';
import { handshake } from './handshake.js';
import { postcopy } from './postcopy.js';
import { cold, precopy } from './precopy.js';
import type { SourceRun } from './run.js';
import { SourceState } from './state.js';

export function newMigrationId(): string {
  return randomBytes(16).toString('hex');
}

/** Runs one outgoing migration to completion. Resolves with the final report; never leaves the guest paused on failure. */
export async function runSource(run: SourceRun): Promise<MigrationReport> {
  const s = new SourceState(run);
  const r = s.r;
  const o = s.o;
  const onAbort = () => s.stop(new MigrationError('CANCELLED', 'migration cancelled by the operator'));
  if (run.signal.aborted) onAbort();
  run.signal.addEventListener('abort', onAbort);
  // The agent stopping ends even a handed-over migration's waits (the report says where the guest was left).
  const onShutdown = () => s.conn.destroy(new MigrationError('CANCELLED', 'the agent is shutting down'));
  run.shutdown?.addEventListener('abort', onShutdown);
  const timer =
    o.timeoutMs > 0
      ? setTimeout(
          () =>
            s.stop(
              new MigrationError(
                'TIMEOUT',
                `migration did not finish within ${o.timeoutMs} ms (--timeout); the guest keeps running on the source`,
              ),
            ),
          o.timeoutMs,
        )
      : undefined;
  // LIVEMIG_SWITCHOVER_PRIORITY=migration: raised from here to the end, not only in the paused window.
  const priority = holdSwitchoverPriority('migration');
  try {
    s.stepsAtStart = s.totalSteps();
    s.stepsAtStartTime = performance.now();
    await handshake(s);
    r.setupTimeMs = s.elapsed();
    r.status = 'active';
    s.event('setup done');
    if (o.strategy === 'cold') await cold(s);
    else if (o.strategy === 'postcopy') await postcopy(s, null);
    else await precopy(s);
    r.status = 'completed';
    r.phase = 'done';
  } catch (err) {
    const e = asMigrationError(err, 'migration failed');
    r.status = e.code === 'CANCELLED' ? 'cancelled' : 'failed';
    r.error = { code: e.code, message: e.message };
    s.event(`failed: ${e.code} ${e.message}`);
    if (!s.handedOff) restore(s, e);
    else {
      s.conn.destroy(e);
      s.event(
        e.code === 'OWNER_UNKNOWN'
          ? `guest ${run.guestId} left paused on the source, destination unknown`
          : `guest ${run.guestId} handed over to the destination`,
      );
    }
  } finally {
    run.signal.removeEventListener('abort', onAbort);
    run.shutdown?.removeEventListener('abort', onShutdown);
    if (timer) clearTimeout(timer);
    s.pausedWindow?.close(); // every way out (the switch-over closes it as soon as the guest runs there)
    priority.release();
    if (s.pausedAt === 0) s.measureGuestRate();
    s.dirtyLimiter.finish(r);
    r.totalTimeMs = s.elapsed();
    if (s.preempt) {
      // Ended (or failed): a deliberate close, never taken for a lost link.
      s.preemptBytesBefore += s.preempt.conn.bytesSent;
      if (r.status === 'completed') s.preempt.close();
      else s.preempt.destroy();
      s.preempt = undefined;
    }
    r.transferredBytes = s.bytesBeforeRecovery + s.sentBytes() + s.preemptBytesBefore;
    void s.multifd?.close();
    r.throughputMbps = mbps(r.transferredBytes, r.totalTimeMs - r.setupTimeMs);
    s.xbzrle.report();
    s.emit(true);
  }
  return r;
}

/** Still authoritative: put the guest back as it was. The destination discards what it received. */
function restore(s: SourceState, e: MigrationError): void {
  const guest = s.guest;
  if (guest.cap !== s.capBefore) guest.setCap(s.capBefore);
  if (s.wasRunning && !guest.running) guest.resume();
  s.event(`guest ${s.spec.guestId} runs on the source`);
  // cancel / --timeout already sent ERROR (stop); the report does not wait for the peer to read it.
  if (!s.stopReason) void s.conn.sendErrorAndClose(e);
  // The destination may hold a verified copy (READY sent, our ERROR lost with the link): tell it to drop it,
  // in the background. It never resumes without GO, so this is tidiness, not safety.
  if (s.readyAsked && s.ownership && !e.context.remote) {
    void settle(s, 'abort', e).catch(() => undefined);
  }
}
