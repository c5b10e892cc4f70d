/** The live passes between the switch-over decision and the pause (hot-last + XBZRLE), against a fake source. */
import { describe, expect, it } from 'vitest';
import type { Owed } from './final-pass.js';
import {
  FLUSH_MAX_PAGES,
  type FlushIo,
  PASS_LIMITS,
  type PassIo,
  runFlush,
  runPasses,
  stopCopyEvent,
} from './hot-last-passes.js';

const none = () => new Uint32Array(0);

/**
 * A guest that writes `perPage` pages (fresh numbers from 100 000 on) for each page a pass sends, `idle` pages per
 * wait for the ACK; the ACK comes after `ackAfter` passes. Records each pass's input and whether it was before it.
 */
function fakeSource(o: { perPage: number; ackAfter: number; idle?: number; failAt?: number }) {
  let next = 100_000;
  let written: number[] = [];
  let passes = 0;
  const log: { pages: number; beforeAck: boolean }[] = [];
  const waits: number[] = [];
  const write = (n: number) => {
    for (let i = 0; i < n; i++) written.push(next++);
  };
  const io: PassIo = {
    async pass(owed: Owed, beforeAck: boolean) {
      const n = owed.dirty.length + owed.held.length;
      log.push({ pages: n, beforeAck });
      passes++;
      write(Math.round(n * o.perPage));
      return { dirty: none(), held: none() };
    },
    sync() {
      const out = Uint32Array.from(written);
      written = [];
      return out;
    },
    ackPending: () => passes < o.ackAfter,
    async waitAck(ms: number) {
      waits.push(ms);
      write(o.idle ?? 0);
    },
    check() {
      if (o.failAt !== undefined && passes >= o.failAt) throw new Error('SWITCHOVER_ACK never came');
    },
  };
  return { io, log, waits };
}

const owed = (n: number): Owed => ({
  dirty: Uint32Array.from({ length: n }, (_, i) => i),
  held: none(),
});

describe('hot-last: live passes before the pause', () => {
  it('keeps passing while the destination is not ready, and makes the last pass after its SWITCHOVER_ACK', async () => {
    const f = fakeSource({ perPage: 0.1, ackAfter: 3, idle: 30 });
    const done = await runPasses(f.io, owed(1000));
    expect(f.log.slice(0, 3).every((p) => p.beforeAck)).toBe(true);
    expect(f.log.slice(3).every((p) => !p.beforeAck)).toBe(true);
    expect(done.beforeAck).toBe(3);
    expect(done.afterAck).toBeGreaterThanOrEqual(1);
    // What is left is only what the guest wrote during the last pass, not during the wait.
    const lastPass = f.log.at(-1)!.pages;
    expect(done.owed.dirty.length).toBe(Math.round(lastPass * 0.1));
  });

  it('passes again after the ACK while each pass leaves at most half of what it was given, down to the floor', async () => {
    const f = fakeSource({ perPage: 0.2, ackAfter: 0 });
    const done = await runPasses(f.io, owed(1000));
    // 1000 → 200 → 40 → 8 (≤ 16: not worth another pass)
    expect(f.log.map((p) => p.pages)).toEqual([1000, 200, 40]);
    expect(done.owed.dirty.length).toBe(8);
    expect(done.afterAck).toBe(3);
  });

  it('stops after one pass when the guest writes more than half of what a pass sends (no convergence)', async () => {
    const f = fakeSource({ perPage: 0.8, ackAfter: 0 });
    const done = await runPasses(f.io, owed(1000));
    expect(f.log.map((p) => p.pages)).toEqual([1000]);
    expect(done.owed.dirty.length).toBe(800);
  });

  it('passes again when a slow answer from the destination, not the pass, left the pages (and only then)', async () => {
    // Each pass writes 0.1 page per page sent; the destination's answer (APPLIED) to the first pass after the ACK
    // took `slowMs`, during which the guest wrote 926 pages; later answers take 2 ms and see 20 more.
    const run = async (slowMs: number) => {
      const f = fakeSource({ perPage: 0.1, ackAfter: 0 });
      let n = 0;
      let wait = 0;
      const io: PassIo = {
        ...f.io,
        async pass(o, beforeAck) {
          const left = await f.io.pass(o, beforeAck);
          const first = n++ === 0;
          wait = first ? slowMs : 2;
          pending.push(first ? 926 : 20); // the guest's writes during the wait (the next sync has them)
          return left;
        },
        sync() {
          const got = f.io.sync();
          const k = pending.shift() ?? 0;
          return Uint32Array.from([...got, ...Array.from({ length: k }, (_, i) => 200_000 + n * 1000 + i)]);
        },
        lastWaitMs: () => wait,
      };
      const pending: number[] = [];
      return { done: await runPasses(io, owed(94)), log: f.log };
    };
    const slow = await run(162);
    // 94 → 9 + 926 (slow answer: pass again) → 94 + 20 → 11 + 20 → 3 + 20 (not halved, quick answer: stop)
    expect(slow.log.map((p) => p.pages)).toEqual([94, 935, 114, 31]);
    expect(slow.done.owed.dirty.length).toBe(23);
    // An answer as quick as the pass (2 ms): 926 pages there mean the guest outruns the passes; stop as before.
    const quick = await run(2);
    expect(quick.log.map((p) => p.pages)).toEqual([94]);
    expect(quick.done.owed.dirty.length).toBe(935);
  });

  it('makes at most maxPasses passes after the ACK', async () => {
    const f = fakeSource({ perPage: 0.5, ackAfter: 0 });
    const done = await runPasses(f.io, owed(1 << 20), { ...PASS_LIMITS, maxPasses: 2 });
    expect(done.afterAck).toBe(2);
  });

  it('waits for the ACK after each pass while it is awaited, instead of passing back to back', async () => {
    const f = fakeSource({ perPage: 0.9, ackAfter: 5, idle: 1 });
    await runPasses(f.io, owed(4000));
    expect(f.waits).toHaveLength(5);
    expect(f.waits.every((ms) => ms >= PASS_LIMITS.idleWaitMs)).toBe(true);
  });

  it('ends with the error when the ACK wait fails or the migration is cancelled', async () => {
    const f = fakeSource({ perPage: 0.1, ackAfter: 100, failAt: 2 });
    await expect(runPasses(f.io, owed(100))).rejects.toThrow('SWITCHOVER_ACK never came');
    expect(f.log).toHaveLength(2);
  });
});

describe('hot-last: the flush right before the pause', () => {
  /** A guest that wrote `since` pages since the last sync and writes `perPass` during each pass. */
  function flushSource(since: number[], perPass = 2) {
    let written = [...since];
    let next = 300_000;
    const calls: string[] = [];
    const io: FlushIo = {
      sync() {
        const out = Uint32Array.from(written.sort((a, b) => a - b));
        written = [];
        return out;
      },
      async pass(o, flush) {
        calls.push(`${flush ? 'flush' : 'pass'} ${[...o.dirty, ...o.held].join(',')}`);
        for (let i = 0; i < perPass; i++) written.push(next++);
        return { dirty: none(), held: none() };
      },
      async caughtUp() {
        calls.push('applied');
      },
    };
    return { io, calls, left: () => written.length };
  }

  it('sends the owed pages and those written since the last sync, without waiting for the destination', async () => {
    const f = flushSource([9, 4]);
    const left = await runFlush(f.io, { dirty: Uint32Array.from([2, 5]), held: Uint32Array.from([7]) });
    // One flush, not acknowledged: what stays for the stop-and-copy is only what the guest writes during it.
    expect(f.calls).toEqual(['flush 2,4,5,9,7']);
    expect(left.dirty.length + left.held.length).toBe(0);
    expect(f.left()).toBe(2);
  });

  it('first makes an acknowledged pass when more than FLUSH_MAX_PAGES are owed, then flushes what it left', async () => {
    const f = flushSource([], 3);
    await runFlush(f.io, owed(FLUSH_MAX_PAGES + 1));
    expect(f.calls.map((c) => c.split(' ')[0])).toEqual(['pass', 'applied', 'flush']);
    expect(f.calls[2]).toBe('flush 300000,300001,300002');
  });

  it('sends nothing when nothing is owed and nothing was written, and says so', async () => {
    const f = flushSource([]);
    await runFlush({ ...f.io, nothingOwed: () => f.calls.push('nothing owed') }, owed(0));
    expect(f.calls).toEqual(['nothing owed']);
  });

  it("describes the stop-and-copy's pages and their cost per page", () => {
    const e = stopCopyEvent({ owed: 3, written: 1, syncMs: 0.05, sendMs: 0.04, bytes: 900 });
    expect(e).toBe(
      'stop-and-copy: 4 pages (3 owed before the pause, 1 written since the last sync), 900 bytes; sync 0.050 ms, ' +
        'encode and write 0.040 ms (10.0 µs a page)',
    );
  });
});
