/**
 * Cold migration and the pre-copy loop: rounds of dirty pages until policy.ts decides to switch over, to go
 * post-copy (hybrid) or to give up; between rounds, auto-converge, the dirty limit and "double the downtime".
 */
import { MigrationError } from '../../errors.js';
import {
  autoConvergeStep,
  type ConvergenceState,
  decideAfterRound,
  expectedDowntimeMs,
  isNotConverging,
  isStalled,
  measuredBandwidth,
  type RoundSample,
  throttleToCap,
} from '../policy.js';
import { Command, encodeRound } from '../protocol/index.js';
import { mbps } from '../stats.js';
import { switchover } from './handover.js';
import { mergeSorted } from './hot-last.js';
import { postcopy } from './postcopy.js';
import { allPages, sendPages } from './send-pages.js';
import type { SourceState } from './state.js';

/** Cold: pause, send every page, switch over. */
export async function cold(s: SourceState): Promise<void> {
  s.r.phase = 'stop-and-copy';
  s.r.guest.stepsPerSecBefore = await s.sampleRate();
  await s.pause();
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
  private throttle = 0;
  private throttleTriggers = 0;
  private lastProgressAt = performance.now();
  private bestDirty = Number.POSITIVE_INFINITY;
  /** Bytes and pages sent after round 1 (resent pages): the wire cost of a dirty page. */
  private liveBytes = 0;
  private livePages = 0;
  private downtimeLimitMs: number;

  constructor(private readonly s: SourceState) {
    this.downtimeLimitMs = s.o.downtimeLimitMs;
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
    // Start tracking from here (round 1 sends everything anyway); what was written before feeds cache admission.
    s.xbzrle.startAdmission(log.sync());
    let pages = allPages(s.pageCount);
    let held: Uint32Array = new Uint32Array(0);
    const samples: RoundSample[] = [];
    let stallReported = false;
    let divergenceReported = false;
    for (let round = 1; ; round++) {
      s.checkAbort();
      const t = performance.now();
      const sentBefore = s.conn.bytesSent;
      const cacheBefore = s.xbzrle.counters();
      // hot-last only: a page written again since the sync that listed it waits for the next round.
      s.encoder.skipRedirtied = o.pageOrder === 'hot-last';
      const redirtiedBefore = r.pages.redirtied;
      await sendPages(s, s.hotLast.order(pages), round === 1, true);
      s.encoder.skipRedirtied = false;
      const bytes = s.conn.bytesSent - sentBefore;
      const synced = log.sync();
      const durationMs = performance.now() - t;
      const next = s.hotLast.afterSync(round, synced);
      // Held-back hot pages stay owed: they count in the remaining work and go at the latest at stop-and-copy.
      held = mergeSorted(held, next.held);
      const dirty = next.send;
      const owed = dirty.length + held.length;
      const pagesSent = pages.length - (r.pages.redirtied - redirtiedBefore);
      await s.conn.sendFrame(Command.ROUND, encodeRound({ round, pagesSent, dirtyPages: owed }));
      const sample: RoundSample = { round, pagesSent, bytesSent: bytes, durationMs, dirtyPages: owed };
      samples.push(sample);
      this.recordRound(sample);
      s.xbzrle.afterRound(cacheBefore, s.xbzrle.counters(), next.hot, synced.length);
      const state = this.convergenceState(samples);
      const expected = expectedDowntimeMs(owed, state.bytesPerPage, state.bandwidth);
      r.expectedDowntimeMs = expected;
      r.perRound[r.perRound.length - 1]!.expectedDowntimeMs = expected;
      r.perRound[r.perRound.length - 1]!.heldPages = held.length;
      if (!divergenceReported && isNotConverging(samples, o.nonConvergenceRounds)) {
        divergenceReported = true;
        s.event(
          `not converging: the guest dirtied pages as fast as they were sent for ${o.nonConvergenceRounds} rounds (action: ${o.onNonConvergence})`,
        );
      }
      if (!stallReported && isStalled(samples, o.stallRounds)) {
        stallReported = true;
        r.stalled = true;
        s.event(`stalled: no progress for ${o.stallRounds} rounds (action: ${o.onStall})`);
      }
      const decision = decideAfterRound(state, { ...o, downtimeLimitMs: this.downtimeLimitMs });
      s.emit(true);
      if (decision.action === 'switchover') {
        r.switchoverReason = decision.reason;
        s.event(`switch-over: ${decision.reason} (expected downtime ${expected.toFixed(1)} ms)`);
        await s.pause();
        r.phase = 'stop-and-copy';
        // --max-bandwidth spares the network while the guest runs; with the guest paused every millisecond is
        // downtime, so the last pages go unlimited (QEMU: migration_completion_precopy sets RATE_LIMIT_DISABLED).
        s.conn.disableRateLimit();
        const last = log.sync();
        const lastPages = mergeSorted(mergeSorted(dirty, held), last);
        r.dirtyPages = lastPages.length;
        await sendPages(s, lastPages, false, true);
        await switchover(s);
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
        const code =
          decision.reason === 'stalled'
            ? 'STALLED'
            : decision.reason === 'not-converging'
              ? 'NOT_CONVERGED'
              : 'TIMEOUT';
        throw new MigrationError(
          code,
          `pre-copy gave up (${decision.reason}) after ${round} rounds: ${owed} pages still dirty at ` +
            `${Math.round(state.bandwidth / 1024 / 1024)} MiB/s; the guest keeps running on the source. ` +
            'Try --auto-converge, --strategy hybrid, --xbzrle, a higher --max-bandwidth or --downtime-limit.',
          { round, dirtyPages: owed },
        );
      }
      this.adjustAfterRound(sample, samples);
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
      throttle: this.throttle,
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

  private convergenceState(samples: RoundSample[]): ConvergenceState {
    const s = this.s;
    // Wire bytes per dirty page: measured on resent pages once there are some, else a full page.
    const bytesPerPage = this.livePages > 0 ? Math.max(64, this.liveBytes / this.livePages) : s.pageSize;
    return {
      rounds: samples,
      bandwidth: measuredBandwidth(samples, s.o.maxBandwidth),
      bytesPerPage,
      pageSize: s.pageSize,
      throttle: this.throttle,
      throttleTriggers: this.throttleTriggers,
      downtimeLimitMs: this.downtimeLimitMs,
      elapsedMs: s.elapsed(),
      msSinceProgress: performance.now() - this.lastProgressAt,
    };
  }

  /** Auto-converge, the dirty limit and "double the downtime on stall" act between rounds. */
  private adjustAfterRound(sample: RoundSample, samples: RoundSample[]): void {
    const s = this.s;
    const o = s.o;
    const autoConverge =
      o.autoConverge || o.onNonConvergence === 'auto-converge' || o.onStall === 'auto-converge';
    if (autoConverge) {
      const step = autoConvergeStep(sample, s.pageSize, this.throttle, this.throttleTriggers, o);
      this.throttleTriggers = step.triggers;
      if (step.throttle !== this.throttle) {
        this.throttle = step.throttle;
        const cap = throttleToCap(this.throttle);
        s.guest.setCap(cap);
        s.r.cap.push({ atMs: s.elapsed(), cap, throttle: this.throttle, reason: 'auto-converge' });
        s.event(`auto-converge: throttle ${this.throttle}% (CAP ${cap})`);
      }
    }
    const limited = s.dirtyLimiter.afterRound(sample, s.pageSize, s.elapsed());
    if (limited) s.event(limited);
    if (o.onStall === 'double-downtime' && samples.length >= 2) {
      const prev = samples[samples.length - 2]!;
      if (sample.round > 1 && sample.dirtyPages >= prev.dirtyPages) {
        this.downtimeLimitMs *= 2;
        s.event(`no progress in round ${sample.round}: downtime limit doubled to ${this.downtimeLimitMs} ms`);
      }
    }
  }
}
