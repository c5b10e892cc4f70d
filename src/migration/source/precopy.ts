/**
 * Cold migration and the pre-copy loop: rounds of dirty pages until round-decision.ts decides to switch over, to go
 * post-copy (hybrid) or to give up; between rounds, what it decides (auto-converge, the downtime ramp, "double the
 * downtime") and the dirty limit.
 */
import { MigrationError } from '../../errors.js';
import { TAIL_LIMITS } from '../converge-tail.js';
import {
  expectedDowntimeMs,
  measuredBandwidth,
  type RoundSample,
  stopAndCopyRate,
  switchoverBandwidth,
} from '../policy.js';
import { Command, encodeRound } from '../protocol/index.js';
import {
  abortCode,
  decideRound,
  initialRoundState,
  type RoundEstimate,
  type RoundOutcome,
  type RoundState,
} from '../round-decision.js';
import { mbps } from '../stats.js';
import { warmSwitchoverCode } from '../switchover-warm.js';
import { destinationCaughtUp } from './applied-ack.js';
import { beginOneWrite, endOneWrite, sendVcpuState, switchover } from './handover.js';
import { mergeSorted } from './hot-last.js';
import { flushBeforePause, hotLastPasses, stopCopyEvent } from './hot-last-passes.js';
import { liveFramePayload } from './live-frames.js';
import { postcopy } from './postcopy.js';
import { allPages, sendPages } from './send-pages.js';
import type { SourceState } from './state.js';

/** Cold: pause, send every page, switch over. */
export async function cold(s: SourceState): Promise<void> {
  s.r.phase = 'stop-and-copy';
  s.r.guest.stepsPerSecBefore = await s.sampleRate();
  warmSwitchoverCode(s.guest.config);
  await s.pause();
  sendVcpuState(s);
  s.guest.dirtyLog.sync();
  await sendPages(s, allPages(s.pageCount), true, false);
  s.r.rounds = 1;
  s.r.switchoverReason = 'cold';
  await switchover(s);
}

export function precopy(s: SourceState): Promise<void> {
  return new PrecopyLoop(s).run();
}

class PrecopyLoop {
  /** The per-round decision's state: downtime limit, throttle, what was reported. */
  private state: RoundState;
  private lastProgressAt = performance.now();
  private bestDirty = Number.POSITIVE_INFINITY;
  /** Bytes and pages sent after round 1 (resent pages): the wire cost of a dirty page. */
  private liveBytes = 0;
  private livePages = 0;

  constructor(private readonly s: SourceState) {
    this.state = initialRoundState(s.o);
    if (s.o.downtimeRamp) s.r.downtimeRamp = [];
  }

  async run(): Promise<void> {
    const s = this.s;
    const r = s.r;
    const o = s.o;
    r.phase = 'precopy';
    r.guest.stepsPerSecBefore = await s.sampleRate();
    s.stepsAtStart = s.totalSteps();
    s.stepsAtStartTime = performance.now();
    const log = s.guest.dirtyLog;
    // Short frames while rate-limited (live-frames.ts); the stop-and-copy goes in full-size ones again.
    const fullFrame = s.frames.maxPayload;
    const liveFrame = liveFramePayload(o.maxBandwidth, fullFrame, s.pageSize);
    if (liveFrame < fullFrame) s.frames.newBuilder(liveFrame);
    // Start tracking from here (round 1 sends everything anyway); what was written before feeds cache admission.
    s.xbzrle.startAdmission(log.sync());
    let pages = allPages(s.pageCount);
    let held: Uint32Array = new Uint32Array(0);
    const samples: RoundSample[] = [];
    for (let round = 1; ; round++) {
      s.checkAbort();
      const t = performance.now();
      const sentBefore = s.sentBytes();
      const heldBefore = s.conn.rateLimitHeldMs;
      const cacheBefore = s.xbzrle.counters();
      // hot-last only: a page written again since the sync that listed it waits for the next round.
      s.encoder.skipRedirtied = o.pageOrder === 'hot-last';
      const redirtiedBefore = r.pages.redirtied;
      await sendPages(s, s.hotLast.order(pages), round === 1, true);
      s.encoder.skipRedirtied = false;
      const bytes = s.sentBytes() - sentBefore;
      const synced = log.sync();
      const durationMs = performance.now() - t;
      const heldMs = s.conn.rateLimitHeldMs - heldBefore;
      const next = s.hotLast.afterSync(round, synced);
      // Held-back hot pages stay owed: they count in the remaining work and go at the latest at stop-and-copy.
      held = next.held;
      const dirty = next.send;
      const owed = dirty.length + held.length;
      const pagesSent = pages.length - (r.pages.redirtied - redirtiedBefore);
      await s.conn.sendFrame(Command.ROUND, encodeRound({ round, pagesSent, dirtyPages: owed }));
      const sample: RoundSample = {
        round,
        pagesSent,
        bytesSent: bytes,
        durationMs,
        dirtyPages: owed,
        heldMs,
      };
      samples.push(sample);
      this.recordRound(sample);
      const cacheAfter = s.xbzrle.counters();
      const estimate = this.estimate(samples);
      const expected = expectedDowntimeMs(
        owed,
        estimate.bytesPerPage,
        stopAndCopyRate(o, estimate.bandwidth),
      );
      r.expectedDowntimeMs = expected;
      r.perRound[r.perRound.length - 1]!.expectedDowntimeMs = expected;
      r.perRound[r.perRound.length - 1]!.heldPages = held.length;
      const outcome = decideRound(
        this.state,
        {
          samples,
          pageSize: s.pageSize,
          estimate,
          autoConverge: 'engine',
          tail: o.convergeTail ? TAIL_LIMITS : undefined,
        },
        o,
      );
      const { decision } = outcome;
      if (outcome.stalled) r.stalled = true;
      for (const e of outcome.events) s.event(e);
      s.emit(true);
      if (decision.action === 'switchover') {
        r.switchoverReason = decision.reason;
        const expectedMs =
          decision.reason === 'no-progress'
            ? expectedDowntimeMs(owed, estimate.bytesPerPage, estimate.switchoverBandwidth ?? 0)
            : expected;
        s.event(`switch-over: ${decision.reason} (expected downtime ${expectedMs.toFixed(1)} ms)`);
        let owedNow = await hotLastPasses(s, { dirty, held });
        await destinationCaughtUp(s); // the destination's backlog is not downtime (capability APPLIED_ACK)
        warmSwitchoverCode(s.guest.config); // the guest still runs: compiling this is not downtime
        owedNow = await flushBeforePause(s, owedNow); // hot-last + XBZRLE: what the two above let the guest write
        await s.pause();
        r.phase = 'stop-and-copy';
        // --max-bandwidth spares the network while the guest runs; with the guest paused every millisecond is
        // downtime, so the last pages go unlimited (QEMU: migration_completion_precopy sets RATE_LIMIT_DISABLED).
        s.conn.disableRateLimit();
        s.multifd?.disableRateLimit();
        if (liveFrame < fullFrame) s.frames.newBuilder(fullFrame);
        const atPause = s.sentBytes();
        // The vCPU state is taken now; it leaves with the digest, in one write (handover.ts says why).
        sendVcpuState(s);
        const tSync = performance.now();
        const last = log.sync();
        const lastPages = mergeSorted(mergeSorted(owedNow.dirty, owedNow.held), last);
        r.dirtyPages = lastPages.length;
        beginOneWrite(s, lastPages.length); // few last pages: state, pages and digest in one write
        const trace = {
          owed: lastPages.length - last.length,
          written: last.length,
          syncMs: 0,
          sendMs: 0,
          bytes: 0,
        };
        try {
          const tSend = performance.now();
          const bytes = s.sentBytes();
          await sendPages(s, lastPages, false, true);
          trace.syncMs = tSend - tSync;
          trace.sendMs = performance.now() - tSend;
          trace.bytes = s.sentBytes() - bytes;
          await switchover(s);
        } finally {
          endOneWrite(s);
        }
        r.stopCopyBytes = s.sentBytes() - atPause;
        s.event(stopCopyEvent(trace)); // (written once the guest runs: not downtime)
        return;
      }
      if (decision.action === 'postcopy') {
        r.switchoverReason = `postcopy: ${decision.reason}`;
        s.event(`switching to post-copy: ${decision.reason}`);
        await s.pause();
        const last = log.sync();
        await postcopy(s, mergeSorted(mergeSorted(dirty, held), last));
        return;
      }
      if (decision.action === 'abort') {
        throw new MigrationError(
          abortCode(decision.reason),
          `pre-copy gave up (${decision.reason}) after ${round} rounds: ${owed} pages still dirty at ` +
            `${Math.round(estimate.bandwidth / 1024 / 1024)} MiB/s; the guest keeps running on the source. ` +
            'Try --auto-converge, --strategy hybrid, --xbzrle, a higher --max-bandwidth or --downtime-limit.',
          { round, dirtyPages: owed },
        );
      }
      // Dynamic sizing between rounds only when another round follows: before the stop-and-copy (or post-copy) a
      // shrink would drop the old copies its last pages need, and they would go whole with the guest paused.
      s.xbzrle.afterRound(cacheBefore, cacheAfter, next.hot, synced.length);
      this.adjustAfterRound(sample, outcome);
      s.spec.onRound?.({ report: r, guest: s.guest, sample });
      pages = dirty;
    }
  }

  private recordRound(rs: RoundSample): void {
    const r = this.s.r;
    r.rounds = rs.round;
    r.dirtyPages = rs.dirtyPages;
    r.remainingBytes = rs.dirtyPages * this.s.pageSize;
    r.dirtyRatePagesPerSec = rs.durationMs > 0 ? (rs.dirtyPages * 1000) / rs.durationMs : 0;
    r.perRound.push({
      round: rs.round,
      pagesSent: rs.pagesSent,
      bytes: rs.bytesSent,
      dirtyPages: rs.dirtyPages,
      durationMs: rs.durationMs,
      throughputMbps: mbps(rs.bytesSent, rs.durationMs),
      expectedDowntimeMs: 0,
      throttle: this.state.throttle,
      heldPages: 0,
    });
    if (rs.round > 1) {
      this.liveBytes += rs.bytesSent;
      this.livePages += rs.pagesSent;
    }
    if (rs.dirtyPages < this.bestDirty) {
      this.bestDirty = rs.dirtyPages;
      this.lastProgressAt = performance.now();
    }
  }

  /** The engine's estimate of a stop-and-copy now, for the decision. */
  private estimate(samples: RoundSample[]): RoundEstimate {
    const s = this.s;
    // Wire bytes per dirty page: measured on resent pages once there are some, else a full page.
    const bytesPerPage = this.livePages > 0 ? Math.max(64, this.liveBytes / this.livePages) : s.pageSize;
    return {
      bandwidth: measuredBandwidth(samples, s.o.maxBandwidth),
      switchoverBandwidth: switchoverBandwidth(samples, s.o.availSwitchoverBandwidth),
      bytesPerPage,
      elapsedMs: s.elapsed(),
      msSinceProgress: performance.now() - this.lastProgressAt,
    };
  }

  /** Between rounds: what the decision changed (auto-converge's CAP, the downtime limit; its events are out), and
   *  the dirty limit. */
  private adjustAfterRound(sample: RoundSample, outcome: RoundOutcome): void {
    const s = this.s;
    this.state = outcome.state;
    if (outcome.throttle) {
      const { cap, throttle } = outcome.throttle;
      s.guest.setCap(cap);
      s.r.cap.push({ atMs: s.elapsed(), cap, throttle, reason: 'auto-converge' });
    }
    const d = outcome.downtime;
    if (d) {
      s.r.downtimeLimitMs = d.toMs;
      if (d.cause === 'ramp') s.r.downtimeRamp?.push({ round: d.round, fromMs: d.fromMs, toMs: d.toMs });
    }
    // The downtime ramp goes first: the dirty limit waits while it has room, as auto-converge does.
    const limited = outcome.rampHolds
      ? undefined
      : s.dirtyLimiter.afterRound(sample, s.pageSize, s.elapsed());
    if (limited) s.event(limited);
  }
}
