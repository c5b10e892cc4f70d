/**
 * The switch-over's threads at a raised priority (src/switchover-priority.ts): raised while a hold lasts, put back
 * after, read back from the kernel (/proc/self/task/TID/stat), not from the module's own bookkeeping. Where the
 * process may not raise a priority (no CAP_SYS_NICE), the hold says so and changes nothing.
 */
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  addSwitchoverThread,
  holdSwitchoverPriority,
  priorityScope,
  raisedThreadIds,
  SWITCHOVER_NICE,
} from './switchover-priority.js';
import { kernelThreadId } from './thread-id.js';
import { kernelNice, mayRaise } from './thread-nice.fixtures.js';

// setPriority refuses on demand (a host without CAP_SYS_NICE), else it is the real one.
const refuse = vi.hoisted(() => ({ code: undefined as string | undefined }));
vi.mock('node:os', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:os')>();
  return {
    ...real,
    setPriority: (pid: number, prio: number) => {
      if (refuse.code && prio < real.getPriority(pid)) {
        throw Object.assign(new Error(`setpriority: ${refuse.code}`), {
          code: 'ERR_SYSTEM_ERROR',
          info: { code: refuse.code },
        });
      }
      real.setPriority(pid, prio);
    },
  };
});

const linux = process.platform === 'linux';

/** A worker thread that publishes its kernel id and then sleeps until terminated. */
async function sleepingThread(): Promise<{ worker: Worker; tid: () => number | null }> {
  const slot = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(
    `const { workerData } = require('node:worker_threads');
     const { readlinkSync } = require('node:fs');
     const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
     Atomics.store(workerData, 0, tid); Atomics.notify(workerData, 0);
     setInterval(() => {}, 1000);`,
    { eval: true, workerData: slot },
  );
  for (let i = 0; i < 200 && Atomics.load(slot, 0) === 0; i++) await new Promise((r) => setTimeout(r, 25));
  return { worker, tid: () => Atomics.load(slot, 0) || null };
}

/** A paused window's hold (paused-window.ts opens one; importing it here would tie the two files in a cycle). */
function openPausedWindow(): {
  priority: ReturnType<typeof holdSwitchoverPriority>['priority'];
  close(): void;
} {
  const h = holdSwitchoverPriority('window', {});
  return { priority: h.priority, close: () => h.release() };
}

const workers: Worker[] = [];
afterEach(async () => {
  refuse.code = undefined;
  vi.unstubAllEnvs();
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

describe.runIf(linux)('switch-over priority', () => {
  it('a window hold raises this thread to SWITCHOVER_NICE and puts it back when it closes', () => {
    const tid = kernelThreadId()!;
    const before = kernelNice(tid);
    const allowed = mayRaise(tid);
    const w = openPausedWindow();
    const during = kernelNice(tid);
    w.close();
    expect(kernelNice(tid)).toBe(before);
    expect(raisedThreadIds()).toEqual([]);
    if (allowed) {
      expect(during).toBe(Math.min(before, SWITCHOVER_NICE));
      expect(w.priority).toEqual({ nice: SWITCHOVER_NICE, threads: 1, scope: 'window' });
    } else {
      expect(during).toBe(before);
      expect(w.priority.nice).toBeNull();
    }
  });

  it('holds nest: the thread goes back only when the last one ends', () => {
    const tid = kernelThreadId()!;
    expect.assertions(3);
    const before = kernelNice(tid);
    if (!mayRaise(tid)) {
      expect(holdSwitchoverPriority('window').priority.reason).toMatch(/^E/);
      expect(kernelNice(tid)).toBe(before);
      expect(raisedThreadIds()).toEqual([]);
      return;
    }
    const a = openPausedWindow();
    const b = openPausedWindow();
    a.close();
    expect(kernelNice(tid)).toBe(Math.min(before, SWITCHOVER_NICE));
    b.close();
    b.close(); // idempotent
    expect(kernelNice(tid)).toBe(before);
    expect(raisedThreadIds()).toEqual([]);
  });

  it('a registered thread (the page sink) is raised with the window, and put back when it unregisters', async () => {
    const t = await sleepingThread();
    workers.push(t.worker);
    const tid = t.tid()!;
    expect(tid).toBeGreaterThan(0);
    expect(tid).not.toBe(kernelThreadId());
    const before = kernelNice(tid);
    const allowed = mayRaise(tid);
    const unregister = addSwitchoverThread(t.tid);
    const w = openPausedWindow();
    const during = kernelNice(tid);
    unregister(); // before the thread stops: back at once, not at the window's close
    const afterUnregister = kernelNice(tid);
    w.close();
    expect(afterUnregister).toBe(before);
    expect(kernelNice(tid)).toBe(before);
    expect(during).toBe(allowed ? Math.min(before, SWITCHOVER_NICE) : before);
    expect(w.priority.threads).toBe(allowed ? 2 : 0);
  });

  it('a thread registered while a window is open is raised at once', async () => {
    const t = await sleepingThread();
    workers.push(t.worker);
    const tid = t.tid()!;
    const before = kernelNice(tid);
    const allowed = mayRaise(tid);
    const w = openPausedWindow();
    const unregister = addSwitchoverThread(t.tid);
    const during = kernelNice(tid);
    w.close();
    expect(kernelNice(tid)).toBe(before);
    unregister();
    expect(during).toBe(allowed ? Math.min(before, SWITCHOVER_NICE) : before);
  });

  it('refused (no CAP_SYS_NICE): nothing changes, and the hold says why', async () => {
    const t = await sleepingThread();
    workers.push(t.worker);
    const unregister = addSwitchoverThread(t.tid);
    const tid = kernelThreadId()!;
    const before = [kernelNice(tid), kernelNice(t.tid()!)];
    refuse.code = 'EACCES';
    const w = openPausedWindow();
    const during = [kernelNice(tid), kernelNice(t.tid()!)];
    w.close();
    unregister();
    expect(w.priority).toEqual({ nice: null, threads: 0, scope: 'window', reason: 'EACCES' });
    expect(during).toEqual(before);
    expect([kernelNice(tid), kernelNice(t.tid()!)]).toEqual(before);
  });

  it('LIVEMIG_SWITCHOVER_PRIORITY: off raises nothing; migration makes the migration-long hold raise', () => {
    const tid = kernelThreadId()!;
    const before = kernelNice(tid);
    const allowed = mayRaise(tid);
    expect(priorityScope({})).toBe('window');
    expect(priorityScope({ LIVEMIG_SWITCHOVER_PRIORITY: 'bogus' })).toBe('window');

    const off = holdSwitchoverPriority('window', { LIVEMIG_SWITCHOVER_PRIORITY: 'off' });
    expect(off.priority).toEqual({ nice: null, threads: 0, scope: 'off', reason: 'off' });
    expect(kernelNice(tid)).toBe(before);
    off.release();

    // The default scope: a migration-long hold does nothing, the window does the raising.
    const notMine = holdSwitchoverPriority('migration', {});
    expect(kernelNice(tid)).toBe(before);
    notMine.release();

    const m = holdSwitchoverPriority('migration', { LIVEMIG_SWITCHOVER_PRIORITY: 'migration' });
    const w = holdSwitchoverPriority('window', { LIVEMIG_SWITCHOVER_PRIORITY: 'migration' });
    expect(w.priority.scope).toBe('migration');
    w.release();
    expect(kernelNice(tid)).toBe(allowed ? Math.min(before, SWITCHOVER_NICE) : before);
    m.release();
    expect(kernelNice(tid)).toBe(before);
  });
});
