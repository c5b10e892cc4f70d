/**
 * The switch-over's paused window (src/paused-window.ts): work that is not the switch-over's waits until the guest
 * runs on the destination (bounded), and every way out of a migration closes the window.
 * No timing bounds beyond the module's own caps (under fake timers).
 */
import { describe, expect, it, vi } from 'vitest';
import {
  afterPausedWindow,
  HOLD_MAX_MS,
  inPausedWindow,
  openPausedWindow,
  pausedWindowClosed,
} from '../paused-window.js';
import { raisedThreadIds, SWITCHOVER_NICE } from '../switchover-priority.js';
import { kernelThreadId } from '../thread-id.js';
import { kernelNice, mayRaise } from '../thread-nice.fixtures.js';
import { runSource } from './source/index.js';
import {
  DestinationHarness,
  disposeAfterEach,
  FakeDestination,
  FakeSource,
  sourceRun,
  testGuest,
} from './testing/index.js';

const track = disposeAfterEach();

describe('paused window', () => {
  it('outside a window, work runs at once', async () => {
    const ran: string[] = [];
    afterPausedWindow(() => ran.push('now'));
    expect(ran).toEqual(['now']);
    let resolved = false;
    await pausedWindowClosed().then(() => {
      resolved = true;
    });
    expect(resolved).toBe(true);
  });

  it('inside, work waits until the last window closes; the same key is queued once', async () => {
    const ran: string[] = [];
    const a = openPausedWindow();
    const b = openPausedWindow();
    expect(inPausedWindow()).toBe(true);
    const key = {};
    afterPausedWindow(() => ran.push('sample'), key);
    afterPausedWindow(() => ran.push('sample again'), key);
    afterPausedWindow(() => ran.push('other'));
    let answered = false;
    void pausedWindowClosed().then(() => {
      answered = true;
    });
    a.close();
    a.close(); // idempotent: does not close b's window
    await Promise.resolve();
    expect(inPausedWindow()).toBe(true);
    expect(ran).toEqual([]);
    expect(answered).toBe(false);
    b.close();
    expect(inPausedWindow()).toBe(false);
    expect(ran).toEqual([]); // not in the closing call: on the next timer turn
    await new Promise((r) => setTimeout(r, 0));
    expect(ran).toEqual(['sample', 'other']);
    expect(answered).toBe(true);
  });

  it('a window that stays open holds work for at most HOLD_MAX_MS', () => {
    vi.useFakeTimers();
    const ran: string[] = [];
    const w = openPausedWindow();
    afterPausedWindow(() => ran.push('late'));
    vi.advanceTimersByTime(HOLD_MAX_MS - 1);
    expect(ran).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(ran).toEqual(['late']);
    w.close();
    expect(ran).toEqual(['late']);
  });
});

describe('the window around a real switch-over', () => {
  it('pre-copy: open from the pause to RESUMED on both sides; work queued in it runs once the guest runs there', async () => {
    const guest = await testGuest();
    guest.resume();
    const h = track(new DestinationHarness());
    const { conn, done } = h.connect();
    const seen: { inWindow: boolean; ranEarly: boolean }[] = [];
    const ran: string[] = [];
    const onHandOff = () => {
      // At GO the guest is paused on the source and not yet running on the destination.
      afterPausedWindow(() => ran.push('deferred'));
      seen.push({ inWindow: inPausedWindow(), ranEarly: ran.length > 0 });
    };
    const r = await runSource(sourceRun(guest, conn, {}, { onHandOff }));
    await done;
    await new Promise((r) => setTimeout(r, 0));
    expect(r.status).toBe('completed');
    expect(seen).toEqual([{ inWindow: true, ranEarly: false }]);
    expect(ran).toEqual(['deferred']);
    expect(inPausedWindow()).toBe(false);
    expect(h.resumed).toHaveLength(1);
  });

  it.runIf(process.platform === 'linux')(
    'pre-copy: the switch-over threads run at SWITCHOVER_NICE in the window, and the report says so',
    async () => {
      const tid = kernelThreadId()!;
      const before = kernelNice(tid);
      const allowed = mayRaise(tid);
      const guest = await testGuest();
      guest.resume();
      const h = track(new DestinationHarness());
      const { conn, done } = h.connect();
      const seen: { tid: number; nice: number }[] = [];
      const onHandOff = () => {
        for (const t of raisedThreadIds()) seen.push({ tid: t, nice: kernelNice(t) });
      };
      const r = await runSource(sourceRun(guest, conn, {}, { onHandOff }));
      await done;
      expect(r.status).toBe('completed');
      expect(kernelNice(tid)).toBe(before);
      expect(raisedThreadIds()).toEqual([]);
      const p = r.switchover?.priority;
      if (allowed) {
        // Source and destination share this test's thread: raised once, the window's hold nests.
        expect(seen.map((s) => s.tid)).toContain(tid);
        for (const s of seen) expect(s.nice).toBe(Math.min(before, SWITCHOVER_NICE));
        expect(p?.source).toMatchObject({ nice: SWITCHOVER_NICE, scope: 'window' });
        expect(p?.destination).toMatchObject({ nice: SWITCHOVER_NICE, scope: 'window' });
      } else {
        expect(seen).toEqual([]);
        expect(p?.source.nice).toBeNull();
        expect(p?.destination?.nice).toBeNull();
      }
    },
  );

  it.runIf(process.platform === 'linux')(
    'the destination raises its threads from APPLIED (the source pauses right after its answer) to its resume',
    async () => {
      const tid = kernelThreadId()!;
      const before = kernelNice(tid);
      const allowed = mayRaise(tid);
      const h = track(new DestinationHarness());
      const g = await testGuest();
      await g.runToStep(100);
      let atAnswer: { inWindow: boolean; raised: number[]; nice: number } | undefined;
      const fake = new FakeSource(g, {
        applied: 'asked',
        onApplied: () => {
          atAnswer = { inWindow: inPausedWindow(), raised: raisedThreadIds(), nice: kernelNice(tid) };
        },
      });
      const { conn, done } = h.connect();
      void fake.run(conn);
      const m = await done;
      expect(m?.phase).toBe('done');
      expect(fake.result.answers).toEqual(['HELLO_ACK', 'APPLIED', 'READY', 'RESUMED']);
      expect(atAnswer?.inWindow).toBe(false); // before the window: VCPU_STATE has not come yet
      expect(atAnswer?.raised.includes(tid)).toBe(allowed);
      expect(atAnswer?.nice).toBe(allowed ? Math.min(before, SWITCHOVER_NICE) : before);
      expect(raisedThreadIds()).toEqual([]);
      expect(kernelNice(tid)).toBe(before);
    },
  );

  it('a switch-over refused by the destination closes the window (the guest resumes on the source)', async () => {
    const guest = await testGuest();
    guest.resume();
    const d = track(
      new FakeDestination({ script: [{ at: 'SWITCHOVER', do: 'error', code: 'DIGEST_MISMATCH' }] }),
    );
    let inWindowAtSwitchover = false;
    void d.script.reached('SWITCHOVER').then(() => {
      inWindowAtSwitchover = inPausedWindow();
    });
    const r = await runSource(sourceRun(guest, d.connect()));
    expect(r.status).toBe('failed');
    expect(r.error?.code).toBe('DIGEST_MISMATCH');
    expect(inWindowAtSwitchover).toBe(true);
    expect(inPausedWindow()).toBe(false);
    expect(guest.running).toBe(true);
  });

  it('pre-copy: the destination adopts the guest only after a sleep, once the source has read RESUMED', async () => {
    const guest = await testGuest();
    guest.resume();
    const h = track(new DestinationHarness());
    let sourceDone = false;
    const adopted: boolean[] = [];
    const onGuestResumed = h.hooks.onGuestResumed;
    h.hooks.onGuestResumed = (id, g, m) => {
      adopted.push(sourceDone);
      onGuestResumed(id, g, m);
    };
    const { conn, done } = h.connect();
    const r = await runSource(sourceRun(guest, conn));
    sourceDone = true;
    await done;
    expect(r.status).toBe('completed');
    expect(adopted).toEqual([true]);
  });
});
