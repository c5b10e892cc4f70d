/**
 * Dirty-rate limiting during pre-copy (QEMU 8.1's `dirty-limit` capability with `vcpu-dirty-limit` MB/s and
 * `x-vcpu-dirty-limit-period` ms): the alternative to auto-converge. It triggers on the same rule (dirtying above
 * throttle-trigger-threshold % of what a round sent, two syncs in a row) but instead of taking CPU time from
 * every vCPU it caps what each vCPU may newly dirty per period; a vCPU that reads or computes without writing is
 * not slowed. The quota is enforced in the vCPU (src/guest/vcpu.ts); this side decides when, lifts it at the end
 * and reports what it did: throttle time and achieved dirty rate per vCPU, and the guest's reads/s.
 */
import type { DirtyLimitCounters, Guest } from '../guest/index.js';
import type { GuestReads } from './dirty-limit-report.js';
import type { MigrationOptions } from './options.js';
import { autoConvergeStep, type RoundSample } from './policy.js';
import type { MigrationReport } from './stats.js';

export type { DirtyLimitReport, GuestReads } from './dirty-limit-report.js';

const MiB = 1024 * 1024;

const sum = (xs: readonly number[]) => xs.reduce((a, x) => a + x, 0);

export class DirtyLimiter {
  private triggers = 0;
  private round = 0;
  private atMs = -1;
  private counters: DirtyLimitCounters | undefined;
  private runAtApply = 0;
  private baseline: ReturnType<typeof setTimeout> | undefined;
  private readonly reads0: number;
  private readonly held0: DirtyLimitCounters;
  private readonly run0: number;

  constructor(
    private readonly guest: Guest,
    private readonly o: MigrationOptions,
  ) {
    // Reads before the migration: over all the time the guest has run until now.
    this.reads0 = sum(guest.reads());
    this.run0 = guest.runningMs();
    this.held0 = guest.dirtyLimitCounters();
  }

  /** After a pre-copy round: applies the limit once the trigger rule fires. Returns an event line when it does. */
  afterRound(sample: RoundSample, pageSize: number, elapsedMs: number): string | undefined {
    if (!this.o.dirtyLimit || this.atMs >= 0) return undefined;
    const step = autoConvergeStep(sample, pageSize, 0, this.triggers, this.o);
    this.triggers = step.triggers;
    if (step.throttle === 0) return undefined;
    this.guest.setDirtyLimit(this.o.vcpuDirtyLimit, this.o.dirtyLimitPeriodMs);
    this.counters = this.guest.dirtyLimitCounters();
    this.runAtApply = this.guest.runningMs();
    // A vCPU publishes its counters once per time slice, so at this instant they can lag by a slice of
    // unthrottled writing (hundreds of pages). Once held, it publishes at every wait: the achieved rate is
    // measured from one period after the limit applied.
    this.baseline = setTimeout(() => {
      this.baseline = undefined;
      try {
        this.counters = this.guest.dirtyLimitCounters();
        this.runAtApply = this.guest.runningMs();
      } catch {
        // the guest has gone: finish() reports from the counters taken at apply time
      }
    }, this.o.dirtyLimitPeriodMs + 5);
    this.round = sample.round;
    this.atMs = elapsedMs;
    const q = this.guest.dirtyLimit!.pagesPerPeriod;
    return (
      `dirty-limit: ${this.o.vcpuDirtyLimit} MB/s per vCPU (${q} pages per ${this.o.dirtyLimitPeriodMs} ms ` +
      `period) after round ${sample.round}`
    );
  }

  /** Lifts the limit (a guest that stays on the source runs free again) and fills the report's figures. */
  finish(r: MigrationReport): void {
    const g = this.guest;
    const n = g.config.vcpus;
    const reads = sum(g.reads());
    const runMs = g.runningMs() - this.run0;
    const now = g.dirtyLimitCounters();
    const h0 = this.held0;
    r.guest.heldMs = now.capWaitMs.map((ms, i) => ms - h0.capWaitMs[i]! + now.waitMs[i]! - h0.waitMs[i]!);
    if (reads > 0 || this.reads0 > 0) {
      const before = this.run0 > 0 ? (this.reads0 * 1000) / this.run0 : 0;
      const during = runMs > 0 ? ((reads - this.reads0) * 1000) / runMs : 0;
      const reading: Omit<GuestReads, 'heldMs'> = {
        readsPerSecBefore: before,
        readsPerSecDuring: during,
        readSlowdown: before > 0 ? Math.max(0, 1 - during / before) : 0,
      };
      Object.assign(r.guest, reading);
    }
    if (!this.o.dirtyLimit) return;
    if (this.baseline) clearTimeout(this.baseline);
    const end = g.dirtyLimitCounters();
    const c0 = this.counters ?? end;
    const heldMs = g.runningMs() - this.runAtApply;
    const pagesToMBps = (pages: number) =>
      heldMs > 0 ? (pages * g.ram.pageSize) / MiB / (heldMs / 1000) : 0;
    const each = (f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));
    const applied = this.atMs >= 0;
    r.dirtyLimit = {
      enabled: true,
      vcpuDirtyLimit: this.o.vcpuDirtyLimit,
      dirtyLimitPeriodMs: this.o.dirtyLimitPeriodMs,
      pagesPerPeriod: g.dirtyLimit?.pagesPerPeriod ?? 0,
      appliedAfterRound: this.round,
      appliedAtMs: this.atMs,
      throttleMs: each((i) => (applied ? end.waitMs[i]! - c0.waitMs[i]! : 0)),
      waits: each((i) => (applied ? end.waits[i]! - c0.waits[i]! : 0)),
      dirtyRateMBps: each((i) => (applied ? pagesToMBps(end.newDirtyPages[i]! - c0.newDirtyPages[i]!) : 0)),
    };
    try {
      if (g.dirtyLimit) g.setDirtyLimit(0);
    } catch {
      // the guest has gone (destroyed after the switch-over): nothing to lift
    }
  }
}
