/**
 * The switch-over's paused window, process-wide (issue 17, point 3): while a guest is paused for its switch-over
 * in this process — the source from the pause to RESUMED, the destination from VCPU_STATE (sent right after the
 * pause) to its RESUMED — work that is not the switch-over's waits until the window closes, so that the frame the
 * switch-over waits for is not read behind it. Traced on the 2-core test machine, an agent's API request landing
 * in the window (a client polling a report every 50 ms) held the source's event loop for 0.4–1.9 ms before it read
 * RESUMED, and the power meter's sample (a sync read of /proc for every thread) for about 0.3 ms.
 *
 * Deferred work waits at most {@link HOLD_MAX_MS}, so a switch-over that hangs on a dead peer does not hold the
 * agent's API.
 *
 * Tried and dropped: keeping the event loop polling (an immediate chain, so libuv polls with a zero timeout) while
 * a side waits for its peer's answer, to save the wake-up. On the shared 2-core machine it made the downtime worse
 * (`bench:downtime`, 50 migrations: median 4.21 against 3.35 ms, and 8.28 against 3.60 ms beside a spinning
 * process): the poller takes the core its peer needs, and once it has used its share the scheduler makes it wait
 * behind the others (traced at load 15: a destination polling for GO read it 18 ms late).
 */

import { holdSwitchoverPriority, type SwitchoverPriority } from './switchover-priority.js';

/** Longest any deferred work waits for a window to close (ms). */
export const HOLD_MAX_MS = 50;

export interface PausedWindow {
  /** What this process's switch-over threads run at while the window is open (switchover-priority.ts). */
  readonly priority: SwitchoverPriority;
  /** Closes the window (idempotent): deferred work runs once no window is open; the threads' priority goes back. */
  close(): void;
}

let open = 0;
let deferred: { key: unknown; fn: () => void }[] = [];
let holdTimer: ReturnType<typeof setTimeout> | undefined;

/** True while a guest is paused for a switch-over in this process. */
export function inPausedWindow(): boolean {
  return open > 0;
}

/**
 * Opens a paused window, with this thread and the registered ones at a raised priority (switchover-priority.ts);
 * close it on every way out (success, failure, a dead link). What waited runs on the next
 * timer turn after the last close, not in the closing call: see {@link yieldCore}.
 */
export function openPausedWindow(): PausedWindow {
  open++;
  // The scheduler too: the threads that do the switch-over's work run ahead of the host's other work.
  const hold = holdSwitchoverPriority('window');
  let closed = false;
  return {
    priority: hold.priority,
    close() {
      if (closed) return;
      closed = true;
      open--;
      hold.release();
      if (open === 0 && deferred.length > 0) {
        if (holdTimer) clearTimeout(holdTimer);
        holdTimer = setTimeout(flush, 0);
      }
    },
  };
}

/**
 * Runs `fn` now, or, inside a paused window, once the window closes (at most HOLD_MAX_MS later). With a `key`,
 * work already waiting under the same key is not queued twice (a periodic sample needs to run once).
 */
export function afterPausedWindow(fn: () => void, key?: unknown): void {
  if (open === 0) {
    fn();
    return;
  }
  if (key !== undefined && deferred.some((d) => d.key === key)) return;
  deferred.push({ key, fn });
  if (!holdTimer) holdTimer = setTimeout(flush, HOLD_MAX_MS);
}

/**
 * Resolves on the next timer turn, after this process has slept in its event loop. The destination calls it right
 * after it wrote RESUMED, before its own bookkeeping: on one host (loopback) the source, woken by GO's reply, was
 * put on this process's core — a socket wakes its reader as a "sync" wake-up, expecting the writer to sleep next —
 * and reads RESUMED only once this process yields the core. Traced with µs stamps in both agents, the destination's
 * bookkeeping after RESUMED (adopting the guest, stopping the page sink) held the source 0.2–0.4 ms in most
 * migrations. Between two hosts it costs nothing: the bookkeeping waits about a millisecond.
 */
export function yieldCore(): Promise<void> {
  return new Promise<void>((resolve) => setTimeout(resolve, 0));
}

/** Resolves at once outside a paused window, else once it closes (at most HOLD_MAX_MS later). */
export function pausedWindowClosed(): Promise<void> {
  if (open === 0) return Promise.resolve();
  return new Promise<void>((resolve) => afterPausedWindow(resolve));
}

function flush(): void {
  if (holdTimer) clearTimeout(holdTimer);
  holdTimer = undefined;
  const run = deferred;
  deferred = [];
  for (const d of run) {
    try {
      d.fn();
    } catch (err) {
      // Deferred work's errors are its own: report them as if it had run on its own stack.
      queueMicrotask(() => {
        throw err;
      });
    }
  }
}
