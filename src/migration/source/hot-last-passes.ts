/**
 * Hot-last with XBZRLE, between the switch-over decision and the pause: live passes of deltas, so that the pause
 * comes right after the last one and the stop-and-copy holds only what the guest wrote during it.
 *
 * Two things made the stop-and-copy larger than it need be with a single last pass (final-pass.ts):
 * - the pause waits for the destination's SWITCHOVER_ACK (its vCPU threads up; a trace guest loads its trace
 *   first, which took 1–2 s under load). A pass made before that wait left every page written during it for the
 *   stop-and-copy (redis: ~500 pages, as many as XBZRLE alone). While the ACK is awaited the guest runs anyway, so
 *   the owed pages keep going, cached ones as deltas and the others whole (sending them costs the guest nothing
 *   now), at most half of the time, and the last pass comes after the ACK;
 * - one pass of a few thousand deltas lasts tens of milliseconds, during which the guest dirties hundreds of pages
 *   (gap-128MiB: ~400). Another, shorter pass over just those leaves fewer: passes repeat while each leaves at
 *   most half of what it was given, down to a floor of a few pages, a bounded number of times; or when the wait
 *   for the destination's answer (below), not the pass, took the time in which the guest wrote them.
 * After the ACK each pass ends when the destination has applied it (capability APPLIED_ACK, applied-ack.ts): the
 * pause then never waits for the destination's backlog of the last pass, and the next sync counts what the guest
 * wrote until then.
 */
import type { MigrationError } from '../../errors.js';
import { Command } from '../protocol/index.js';
import { destinationCaughtUp } from './applied-ack.js';
import { finalPass, type Owed } from './final-pass.js';
import { mergeSorted } from './hot-last.js';
import { SWITCHOVER_TIMEOUT_MS } from './run.js';
import { sendPages } from './send-pages.js';
import type { SourceState } from './state.js';

export interface PassLimits {
  /** Passes after the ACK, at most (each shorter than the one before). */
  maxPasses: number;
  /** Another pass is not worth it below this many pages written during the previous one. */
  floorPages: number;
  /** While the ACK is awaited: how long at least to wait for it after a pass (at least as long as the pass took). */
  idleWaitMs: number;
  /**
   * A wait for the destination (APPLIED) longer than this, and than twice the pass's own sending, made the pages
   * the guest wrote meanwhile, not the pass: another pass follows even if it did not halve what it was given.
   */
  slowWaitMs: number;
}

export const PASS_LIMITS: PassLimits = { maxPasses: 6, floorPages: 16, idleWaitMs: 20, slowWaitMs: 20 };

/** What the pass loop needs of the source (a fake in tests). */
export interface PassIo {
  /** One live pass over `owed`; `beforeAck`: the destination has not said it is ready yet. Returns what is left. */
  pass(owed: Owed, beforeAck: boolean): Promise<Owed>;
  /** The pages written since the previous sync, ascending. */
  sync(): Uint32Array;
  /** The destination's SWITCHOVER_ACK is still awaited (the guest may not pause before it). */
  ackPending(): boolean;
  /** Waits up to `ms` for the ACK (returns at once if it came). */
  waitAck(ms: number): Promise<void>;
  /** Throws if the migration was cancelled or the ACK wait failed. */
  check(): void;
  /** Of the last pass after the ACK: how long it waited for the destination to apply it (APPLIED), ms. */
  lastWaitMs?(): number;
}

export interface PassesDone {
  owed: Owed;
  /** Passes made while the ACK was awaited, and after it. */
  beforeAck: number;
  afterAck: number;
}

const count = (o: Owed) => o.dirty.length + o.held.length;

/**
 * The passes: while the ACK is awaited, pass the owed pages and what the guest writes meanwhile; once it has come,
 * pass again while each pass leaves at most half of what it was given and more than `floorPages`. Returns what is
 * owed at the pause (the pause's own sync adds what is written after the last one).
 */
export async function runPasses(
  io: PassIo,
  start: Owed,
  limits: PassLimits = PASS_LIMITS,
): Promise<PassesDone> {
  let owed = start;
  let beforeAck = 0;
  let afterAck = 0;
  for (;;) {
    io.check();
    const given = count(owed);
    const pending = io.ackPending();
    const t = performance.now();
    owed = await io.pass(owed, pending);
    const took = performance.now() - t;
    if (pending) beforeAck++;
    else afterAck++;
    io.check();
    if (pending) {
      // The guest runs until the ACK anyway: keep what is owed small, but pass at most half the time. Passing
      // without a pause would keep both agents' main threads busy while the destination starts its vCPU
      // threads (which delays the ACK itself), and starve this one's timers and reads.
      await io.waitAck(Math.max(limits.idleWaitMs, took));
      owed = { dirty: mergeSorted(owed.dirty, io.sync()), held: owed.held };
      continue;
    }
    const written = io.sync();
    owed = { dirty: mergeSorted(owed.dirty, written), held: owed.held };
    // Measured on gap-128MiB under load: one APPLIED answer took 162 ms after a pass of 94 deltas, the guest wrote
    // 926 pages meanwhile, and the "halved" rule sent all of them to the stop-and-copy (13 ms of downtime). A
    // pass of them, as deltas, takes a few milliseconds and leaves a few dozen.
    const waitMs = io.lastWaitMs?.() ?? 0;
    const slowWait = waitMs > limits.slowWaitMs && waitMs > 2 * Math.max(0, took - waitMs);
    if (
      afterAck >= limits.maxPasses ||
      written.length <= limits.floorPages ||
      (written.length * 2 > given && !slowWait)
    ) {
      return { owed, beforeAck, afterAck };
    }
  }
}

/**
 * Between the switch-over decision and the pause (hot-last with XBZRLE; otherwise what is owed stays for the
 * stop-and-copy): the passes above on the real source.
 */
export async function hotLastPasses(s: SourceState, owed: Owed): Promise<Owed> {
  if (!s.hotLast.enabled || s.encoder.cache === undefined) return owed;
  if (count(owed) === 0 && !s.switchoverAck) return owed;
  const ack = watchAck(s);
  const log = s.guest.dirtyLog;
  const bytesBefore = s.conn.bytesSent;
  let waitMs = 0;
  const done = await runPasses(
    {
      pass: async (o, beforeAck) => {
        if (beforeAck) return passWhileWaiting(s, o);
        const left = await finalPass(s, o);
        // What the guest writes until the destination has applied this pass is what the next sync sees: the pass
        // counts as done once applied there (capability APPLIED_ACK), so the pause never waits on its backlog.
        const t = performance.now();
        await destinationCaughtUp(s);
        waitMs = performance.now() - t;
        return left;
      },
      sync: () => log.sync(),
      ackPending: () => !ack.settled,
      lastWaitMs: () => waitMs,
      waitAck: (ms) => ack.waitUpTo(ms),
      check: () => {
        s.checkAbort();
        if (ack.error !== undefined) throw ack.error;
      },
    },
    owed,
  );
  if (done.beforeAck > 0 || done.afterAck > 1) {
    s.event(
      `hot-last: ${done.beforeAck + done.afterAck} live passes before the pause (${done.beforeAck} while waiting ` +
        `for SWITCHOVER_ACK), ${s.conn.bytesSent - bytesBefore} bytes; ${count(done.owed)} pages left for the ` +
        'stop-and-copy besides those written since the last sync',
    );
  }
  return done.owed;
}

/**
 * Right before the pause, after the passes above and the switch-over code's warm-up (hot-last with XBZRLE): one more
 * live pass whose application the source does not wait for (a flush), over the pages still owed and those written
 * since the last sync.
 *
 * Why: the passes end on the destination's APPLIED answer, and what the guest wrote while it was awaited (1–27 ms,
 * then the warm-up's 0.7–1.6 ms) was left for the stop-and-copy. Timed on gap-128MiB (µs events): 26–57 deltas
 * there, 20–34 KiB, 0.2–0.8 ms of the paused source encoding them and 0.1–3 ms of the destination applying them.
 * Sent now they cost the guest nothing, and the destination applies them on its page-sink thread while the source
 * pauses and takes the vCPU state; only the pages written during the flush and the pause are left (0–19 there, a
 * few KiB). Its answer is not awaited: that round trip is what left the pages in the first place. A flush larger
 * than `maxPages` (a slow answer let the guest write hundreds) would leave the destination a backlog to drain inside
 * the downtime: one more pass, acknowledged, goes first.
 */
export async function flushBeforePause(s: SourceState, owed: Owed): Promise<Owed> {
  if (!s.hotLast.enabled || s.encoder.cache === undefined) return owed;
  const log = s.guest.dirtyLog;
  return runFlush(
    {
      sync: () => log.sync(),
      pass: (o, flush) => finalPass(s, o, flush ? 'flush' : 'pass'),
      caughtUp: async () => {
        await destinationCaughtUp(s);
      },
      nothingOwed: () => s.event('hot-last: flush right before the pause: nothing owed'),
    },
    owed,
  );
}

/** Largest flush: about half a millisecond of the destination applying deltas (~5 µs each, measured). */
export const FLUSH_MAX_PAGES = 128;

/** What the flush needs of the source (a fake in tests). */
export interface FlushIo {
  /** The pages written since the previous sync, ascending. */
  sync(): Uint32Array;
  /** A live pass over `owed` (`flush`: the last, not awaited at the destination); returns what it left owed. */
  pass(owed: Owed, flush: boolean): Promise<Owed>;
  /** Waits until the destination has applied everything sent (APPLIED). */
  caughtUp(): Promise<void>;
  /** Nothing was owed and nothing written: no flush (said in an event, so a trace always shows the step). */
  nothingOwed?(): void;
}

/** The flush (see flushBeforePause), with one acknowledged pass first when more than `maxPages` are owed. */
export async function runFlush(io: FlushIo, owed: Owed, maxPages = FLUSH_MAX_PAGES): Promise<Owed> {
  let o: Owed = { dirty: mergeSorted(owed.dirty, io.sync()), held: owed.held };
  if (count(o) > maxPages) {
    o = await io.pass(o, false);
    await io.caughtUp();
    o = { dirty: mergeSorted(o.dirty, io.sync()), held: o.held };
  }
  if (count(o) > 0) return io.pass(o, true);
  io.nothingOwed?.();
  return o;
}

/**
 * A pass while the destination is not ready: every owed page goes, cached ones as deltas and the others whole (a
 * page last sent as zeros, or whose delta overflowed, has no cached copy; a guest filling new memory, like gcc-cc1,
 * has many, and each sent now is one fewer whole page in the stop-and-copy), except those written again before
 * their turn. Its bytes count in the last round, as the final pass's do: the guest still runs.
 */
async function passWhileWaiting(s: SourceState, owed: Owed): Promise<Owed> {
  const pages = s.hotLast.order(mergeSorted(owed.dirty, mergeSorted(owed.held, s.hotLast.releaseAll())));
  const before = s.conn.bytesSent;
  const redirtied = s.r.pages.redirtied;
  s.encoder.skipRedirtied = true;
  try {
    await sendPages(s, pages, false, true);
  } finally {
    s.encoder.skipRedirtied = false;
  }
  const last = s.r.perRound[s.r.perRound.length - 1];
  if (last) {
    last.bytes += s.conn.bytesSent - before;
    last.pagesSent += pages.length - (s.r.pages.redirtied - redirtied);
  }
  // A page skipped as written again is in the next sync: nothing is left owed outside it.
  return { dirty: new Uint32Array(0), held: new Uint32Array(0) };
}

/** SWITCHOVER_ACK, awaited in the background while the passes run (state.pause() then no longer waits for it). */
function watchAck(s: SourceState) {
  const w = {
    settled: !s.switchoverAck,
    error: undefined as MigrationError | Error | undefined,
    wake: undefined as (() => void) | undefined,
    async waitUpTo(ms: number): Promise<void> {
      if (w.settled) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        w.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      w.wake = undefined;
    },
  };
  if (w.settled) return w;
  s.conn.expect(Command.SWITCHOVER_ACK, SWITCHOVER_TIMEOUT_MS).then(
    () => {
      s.switchoverAck = false;
      s.event('the destination is ready for switch-over (SWITCHOVER_ACK)');
      w.settled = true;
      w.wake?.();
    },
    (err: unknown) => {
      w.error = err instanceof Error ? err : new Error(String(err));
      w.settled = true;
      w.wake?.();
    },
  );
  return w;
}

/** The stop-and-copy's pages as precopy.ts timed them while the guest was paused (sub-millisecond). */
export interface StopCopyTrace {
  /** Pages owed from before the pause (held, or left by the passes) and pages the pause's sync found. */
  owed: number;
  written: number;
  /** The pause's dirty-log sync and merge, then encoding and writing the pages (into the corked one write). */
  syncMs: number;
  sendMs: number;
  /** Their PAGES frames' bytes. */
  bytes: number;
}

/** The event describing the stop-and-copy's pages: how many, why they were left, what encoding them cost. */
export function stopCopyEvent(t: StopCopyTrace): string {
  const n = t.owed + t.written;
  const perPage = n > 0 ? ` (${((t.sendMs * 1000) / n).toFixed(1)} µs a page)` : '';
  return (
    `stop-and-copy: ${n} pages (${t.owed} owed before the pause, ${t.written} written since the last sync), ` +
    `${t.bytes} bytes; sync ${t.syncMs.toFixed(3)} ms, encode and write ${t.sendMs.toFixed(3)} ms${perPage}`
  );
}
