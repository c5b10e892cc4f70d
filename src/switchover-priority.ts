/**
 * The switch-over's threads at a raised scheduling priority (issue 17, point 3). With the paused window
 * (paused-window.ts) nothing unrelated runs on the switch-over's event loop any more; what is left on a busy host
 * is the kernel's scheduler: each of the switch-over's four one-way hops wakes a thread (source main thread,
 * destination main thread, the destination's page-sink thread while it drains) that, at nice 0, queues behind
 * whatever else is runnable on its core. While a paused window is open those threads run at
 * {@link SWITCHOVER_NICE}, as the cluster's link thread does for the same reason (cluster/link-worker.ts): a woken
 * thread at nice −10 weighs about 9× a nice-0 one, so the scheduler runs it ahead of a spinning process instead of
 * after that process's slice.
 *
 * Linux only (setpriority on a thread id changes that thread alone) and only where allowed (raising needs
 * CAP_SYS_NICE or an RLIMIT_NICE that permits it): elsewhere it degrades silently, the threads stay at their own
 * priority and the report says why (`switchover.priority`). Lowering back never needs a privilege. With
 * autogroup scheduling (`/proc/sys/kernel/sched_autogroup_enabled`), nice ranks threads within one session only: a
 * load started from another terminal session competes through its group's weight, which a nice value does not
 * change.
 *
 * `LIVEMIG_SWITCHOVER_PRIORITY`: `window` (the default: from the pause to RESUMED), `migration` (from the start of
 * a migration to its end: every page of it then runs ahead of the guest and the host's other work, so it is not
 * the default) or `off`.
 */
import { getPriority, setPriority } from 'node:os';
import type { PriorityScope, SwitchoverPriority } from './switchover-priority-report.js';
import { kernelThreadId } from './thread-id.js';

/** Nice value of the switch-over's threads while a paused window is open (Linux: −20 highest, 19 lowest). */
export const SWITCHOVER_NICE = -10;

export type { PriorityScope, SwitchoverPriority };

/** The scope from LIVEMIG_SWITCHOVER_PRIORITY; anything else than `migration` or `off` is the default, `window`. */
export function priorityScope(env: NodeJS.ProcessEnv = process.env): PriorityScope {
  const v = env.LIVEMIG_SWITCHOVER_PRIORITY?.trim().toLowerCase();
  return v === 'migration' || v === 'off' ? v : 'window';
}

/** This module's thread (modules load once per thread: a worker importing it gets its own id). */
const ownThread = kernelThreadId();

/** The nice value of thread `tid`, or null when it cannot be read (gone, not Linux). */
export function threadNice(tid: number): number | null {
  try {
    return getPriority(tid);
  } catch {
    return null;
  }
}

function errorCode(err: unknown): string {
  // os.setPriority throws ERR_SYSTEM_ERROR with the system's code in `info`.
  const e = err as { info?: { code?: unknown }; code?: unknown };
  const code = e?.info?.code ?? e?.code;
  return typeof code === 'string' ? code : 'error';
}

/** Threads that do switch-over work besides the one holding the window (the page sink): their ids, read lazily. */
const extraThreads = new Set<() => number | null>();

interface Raised {
  tid: number;
  before: number;
}

let holds = 0;
let heldScope: PriorityScope = 'window';
let raised: Raised[] = [];
let outcome: SwitchoverPriority = { nice: null, threads: 0, scope: 'window', reason: 'off' };

/** Raises `tid` to `nice` if it is lower; records what to restore. Returns the error code, if refused. */
function raise(tid: number): string | undefined {
  if (raised.some((r) => r.tid === tid)) return undefined;
  const before = threadNice(tid);
  if (before === null) return 'ESRCH';
  if (before <= SWITCHOVER_NICE) {
    raised.push({ tid, before });
    return undefined;
  }
  try {
    setPriority(tid, SWITCHOVER_NICE);
  } catch (err) {
    return errorCode(err);
  }
  raised.push({ tid, before });
  return undefined;
}

function restore(r: Raised): void {
  try {
    if (r.before > SWITCHOVER_NICE) setPriority(r.tid, r.before);
  } catch {
    // The thread is gone (ESRCH): nothing to put back.
  }
}

function raiseAll(scope: PriorityScope): void {
  raised = [];
  const tids = [ownThread, ...[...extraThreads].map((f) => f())].filter(
    (t): t is number => t !== null && t > 0,
  );
  if (tids.length === 0) {
    outcome = { nice: null, threads: 0, scope, reason: 'no thread ids' };
    return;
  }
  let refused: string | undefined;
  for (const tid of tids) {
    const code = raise(tid);
    if (code && code !== 'ESRCH') {
      refused = code;
      break; // not allowed for one: not allowed for the others either
    }
  }
  if (refused !== undefined) {
    for (const r of raised) restore(r);
    raised = [];
    outcome = { nice: null, threads: 0, scope, reason: refused };
    return;
  }
  outcome = { nice: SWITCHOVER_NICE, threads: raised.length, scope };
}

export interface PriorityHold {
  /** What the threads run at while this hold lasts. */
  readonly priority: SwitchoverPriority;
  /** Ends the hold (idempotent); the last one puts every raised thread back at its own priority. */
  release(): void;
}

/**
 * Raises this thread and every registered one (see {@link addSwitchoverThread}) to {@link SWITCHOVER_NICE} until
 * released; holds nest (a paused window inside a migration-long hold). `scope` says who holds it; a `window` hold
 * does nothing under LIVEMIG_SWITCHOVER_PRIORITY=off, a `migration` hold nothing unless it is `migration`.
 */
export function holdSwitchoverPriority(
  scope: 'window' | 'migration',
  env: NodeJS.ProcessEnv = process.env,
): PriorityHold {
  const want = priorityScope(env);
  if (want === 'off' || (scope === 'migration' && want !== 'migration')) {
    const priority: SwitchoverPriority =
      holds > 0 ? outcome : { nice: null, threads: 0, scope: want, reason: 'off' };
    return { priority, release() {} };
  }
  if (holds++ === 0) {
    heldScope = scope;
    raiseAll(scope);
  } else if (outcome.nice !== null) {
    // A window inside a migration-long hold: threads registered since (a page sink bound later) join now.
    for (const f of extraThreads) {
      const t = f();
      if (t !== null && t > 0) raise(t);
    }
    outcome = { ...outcome, threads: raised.length };
  }
  const priority = { ...outcome, scope: heldScope };
  let released = false;
  return {
    priority,
    release() {
      if (released) return;
      released = true;
      if (--holds > 0) return;
      for (const r of raised) restore(r);
      raised = [];
    },
  };
}

/**
 * Registers a thread that does switch-over work (the destination's page sink): `tid` is read when a hold starts
 * (the thread publishes it once it runs). While a hold lasts, it is raised at once. The returned function
 * unregisters it and puts it back first, before the thread stops and its id can be reused.
 */
export function addSwitchoverThread(tid: () => number | null): () => void {
  extraThreads.add(tid);
  if (holds > 0 && outcome.nice !== null) {
    const t = tid();
    if (t !== null && t > 0) raise(t);
  }
  return () => {
    if (!extraThreads.delete(tid)) return;
    const t = tid();
    const i = raised.findIndex((r) => r.tid === t);
    if (i >= 0) restore(raised.splice(i, 1)[0]!);
  };
}

/** Threads whose priority is raised now (for tests and the report). */
export function raisedThreadIds(): number[] {
  return raised.map((r) => r.tid);
}
