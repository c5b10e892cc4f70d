/**
 * A QEMU migration's blackout on the span livemig's downtime covers: the guest stopped on the source (the source's
 * STOP event) → the guest running on the destination (the destination's RESUME event). QEMU's own `downtime`
 * (`query-migrate`) stops its clock on the source once the last byte is flushed (post-copy: once the package is
 * written), before the destination has loaded the device state and started the vCPUs, and counts whole
 * milliseconds. QMP stamps every event with its host's wall clock in microseconds (`timestamp`); when both QEMUs run
 * on one host the two stamps share that clock, so their difference is the guest's blackout to the microsecond.
 */
import type { QmpClient, QmpEvent } from './qmp.js';

export interface BlackoutWatch {
  /**
   * Waits up to `timeoutMs` for the destination's RESUME (it may follow the end of `query-migrate` by a few ms),
   * stops listening and returns stop → resume in ms; undefined when either event is missing (the migration failed,
   * or a guest that never stopped). Idempotent: later calls return the first call's answer.
   */
  finish(timeoutMs: number): Promise<number | undefined>;
}

function stampUs(e: QmpEvent): number {
  return e.timestamp.seconds * 1e6 + e.timestamp.microseconds;
}

/** Starts listening for the source's first STOP and the destination's first RESUME after it. */
export function watchBlackout(source: QmpClient, dest: QmpClient): BlackoutWatch {
  let stopUs: number | undefined;
  let resumeUs: number | undefined;
  let resumed: (() => void) | undefined;
  const onSource = (e: QmpEvent): void => {
    if (e.event === 'STOP' && stopUs === undefined) stopUs = stampUs(e);
  };
  const onDest = (e: QmpEvent): void => {
    // A RESUME before the source stopped is not this migration's (a destination is paused until it is).
    if (e.event !== 'RESUME' || stopUs === undefined || resumeUs !== undefined) return;
    resumeUs = stampUs(e);
    resumed?.();
  };
  source.on('event', onSource);
  dest.on('event', onDest);
  let answer: Promise<number | undefined> | undefined;
  return {
    finish(timeoutMs) {
      answer ??= (async () => {
        if (resumeUs === undefined && stopUs !== undefined) {
          await new Promise<void>((done) => {
            const timer = setTimeout(done, timeoutMs);
            resumed = () => {
              clearTimeout(timer);
              done();
            };
          });
        }
        source.off('event', onSource);
        dest.off('event', onDest);
        if (stopUs === undefined || resumeUs === undefined) return undefined;
        return (resumeUs - stopUs) / 1000;
      })();
      return answer;
    },
  };
}
