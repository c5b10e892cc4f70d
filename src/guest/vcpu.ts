/**
 * A vCPU: runs its workload step by step in time slices, obeying the control block (run / pause / stop,
 * run-to-step target), the CAP and the emulated DVFS frequency. Runs inside a worker thread (vcpu-worker.ts).
 *
 * Scheduling, per loop iteration:
 *  - CAP (Xen credit-scheduler semantics): in every 30 ms period the vCPU may be scheduled for cap% of the
 *    period; when it has used that, it sleeps until the next period. 0 = uncapped. A vCPU whose stall sleeps and
 *    whose allotment is tiny takes up to 8 periods at once (work-batch.ts: its wake-ups cost more than its work).
 *  - DVFS: at frequency ratio f the vCPU does f of its full-speed work per unit of time. After a slice of w ms of
 *    real work it stalls w(1-f)/f ms: busy-spinning (default: CPU time stays 100%, like a down-clocked core, so
 *    a power model sees a busy core at a lower frequency) or sleeping (`dvfsStall: 'sleep'`, spares the host).
 *  - writeRate pacing: a token bucket filled in guest time (scheduled time x frequency), so CAP and DVFS slow a
 *    rate-limited workload too. Waiting for a token sleeps but is charged as scheduled time: it models a program
 *    that computes between its writes, without burning the host's CPU.
 *  - Dirty-rate limit (QEMU's dirty-limit): in every period the vCPU may newly dirty at most its quota of pages
 *    (a write that sets a clear dirty bit, one dirty-ring entry in KVM). Before each step it checks what is left;
 *    with nothing left it waits (Atomics.wait) until the next period. Steps that do not write never use the
 *    quota, so a vCPU that only reads or computes never waits. A step writes one page or a few, so a period holds
 *    at most quota + (pages of one step − 1).
 *  - Recorded pacing (a trace replayed with tracePacing `recorded`): a guest clock advanced by the same guest time
 *    x traceSpeed; a step runs once the clock reaches the workload's dueMs(), so the recording's bursts and quiet
 *    spells come back. The clock restarts at the next step's due time whenever the vCPU resumes: guest time does
 *    not pass while it is paused (or migrated), so a pause never turns into a catch-up burst.
 * Every wait is an Atomics.wait on the control generation, so a pause interrupts it at once; steps run in
 * batches of ~0.1 ms and the generation is checked after each batch, so a pause lands within one slice.
 */

import type { DvfsStall, WorkloadParams } from './config.js';
import {
  CAP,
  CAP_PERIOD_MS,
  CLAIM_MIN_MS,
  CMD,
  CMD_PAUSE,
  CMD_STOP,
  DIRTY_PERIOD_MS,
  DIRTY_QUOTA,
  FREQ_PPM,
  GEN,
  MSG_SEQ,
  SLEEP,
  SLICE_MS,
  V_BUSY_NS,
  V_CAP_WAIT_NS,
  V_DIRTY_WAIT_NS,
  V_DIRTY_WAITS,
  V_NEW_DIRTY,
  V_READS,
  V_STEP,
  V_TARGET,
  VCPU_STRIDE,
  writeSlot,
} from './control.js';
import type { VcpuMemory } from './memory.js';
import type { Rng } from './rng.js';
import { capStretch, fitBatch, nextStepMs } from './work-batch.js';
import type { Workload } from './workloads/index.js';

export interface VcpuState {
  index: number;
  step: number;
  rng: number[];
  registers: Record<string, number>;
}

export interface VcpuHooks {
  /** The vCPU parked at control generation `gen` with this state. */
  parked(gen: number, state: VcpuState): void;
  /** Deliver pending main-thread messages (state loads) up to sequence `seq`. */
  drain(seq: number): void;
}

const now = () => performance.now();
/** How far (trace ms) a recorded-pacing vCPU may fall behind and still catch up at full speed; older lag (a loaded
 *  host, a burst faster than this vCPU can write) is forgiven rather than replayed as a burst that never was. */
const MAX_TRACE_LAG_MS = 250;

export class Vcpu {
  step = 0;
  private readonly ctl: Int32Array;
  private readonly v: BigInt64Array;
  private readonly base: number;
  private appliedSeq = 0;
  private batch = 16;
  /** Time per step, estimated from the batches (work-batch.ts): a batch never overshoots its phase's allotment. */
  private stepMs = 0;
  private busyMs = 0;
  /** Time waited for a new dirty-limit period, and how many waits. */
  private dirtyWaitMs = 0;
  private dirtyWaits = 0;
  /** Time descheduled by the CAP (budget used up). */
  private capWaitMs = 0;
  /** This vCPU's sleep word's value while awake (even; control.ts, SLEEP). */
  private sleepSeq = 0;
  /** A pause claimed this vCPU in its last sleep: the loop restarts its clocks as after a park. */
  private claimed = false;
  private readonly slots: Float64Array | null;

  constructor(
    readonly index: number,
    ctl: SharedArrayBuffer,
    vcpu: SharedArrayBuffer,
    public rng: Rng,
    readonly workload: Workload,
    private readonly mem: VcpuMemory,
    private readonly params: WorkloadParams,
    private readonly dvfsStall: DvfsStall,
    private readonly hooks: VcpuHooks,
    /** The control block's state slots (control.ts, SLEEP); without them no sleep is claimable. */
    slots?: SharedArrayBuffer,
  ) {
    this.slots = slots ? new Float64Array(slots) : null;
    this.ctl = new Int32Array(ctl);
    this.v = new BigInt64Array(vcpu);
    this.base = index * VCPU_STRIDE;
  }

  state(): VcpuState {
    return {
      index: this.index,
      step: this.step,
      rng: this.rng.state(),
      registers: this.workload.registers(),
    };
  }

  /** Messages from the main thread were applied up to this sequence number. */
  applied(seq: number): void {
    this.appliedSeq = seq;
  }

  stopping(): boolean {
    return Atomics.load(this.ctl, CMD) === CMD_STOP;
  }

  /** The scheduling loop; returns when told to stop. */
  run(): void {
    const { ctl, v, base } = this;
    const speed = this.params.traceSpeed ?? 0;
    const clocked = this.params.tracePacing === 'recorded' && speed > 0 && this.workload.dueMs !== undefined;
    const rate = clocked ? 0 : this.params.writeRate;
    const burst = Math.max(1, (rate * 2 * SLICE_MS) / 1000);
    let periodStart = now();
    let used = 0;
    let tokens = 0;
    let clock = Number.NaN; // recorded pacing: the guest clock in trace ms, NaN until the vCPU (re)starts
    // Dirty-limit period: when it started and the vCPU's newly-dirtied count then. Wall-clock based and never
    // restarted by a pause, so no sequence of commands lets a vCPU dirty more than its quota in a period.
    let dlStart = Number.NEGATIVE_INFINITY;
    let dlBase = 0;
    for (;;) {
      if (this.claimed) {
        // Parked by a pause's claim while asleep (sleep()): as after a park, guest time did not pass.
        this.claimed = false;
        periodStart = now();
        used = 0;
        clock = Number.NaN;
      }
      const gen = Atomics.load(ctl, GEN);
      const seq = Atomics.load(ctl, MSG_SEQ + this.index);
      if (seq !== this.appliedSeq) this.hooks.drain(seq);
      const cmd = Atomics.load(ctl, CMD);
      if (cmd === CMD_STOP) return;
      const target = Number(Atomics.load(v, base + V_TARGET));
      if (cmd === CMD_PAUSE || (target >= 0 && this.step >= target)) {
        this.publish();
        this.hooks.parked(gen, this.state());
        this.parkedWait(gen);
        periodStart = now();
        used = 0;
        clock = Number.NaN;
        continue;
      }
      const quota = Atomics.load(ctl, DIRTY_QUOTA);
      let dirtyLimit = Number.POSITIVE_INFINITY; // the newDirty count at which this period's quota is used
      if (quota > 0) {
        const period = Math.max(1, Atomics.load(ctl, DIRTY_PERIOD_MS));
        const t0 = now();
        if (t0 - dlStart >= period) {
          dlStart = t0;
          dlBase = this.mem.newDirty;
        }
        dirtyLimit = dlBase + quota;
        if (this.mem.newDirty >= dirtyLimit) {
          // Quota used: held until the next period (not scheduled: no CAP budget or guest time passes).
          this.dirtyWaitMs += this.sleep(gen, dlStart + period - t0);
          this.dirtyWaits++;
          this.publish();
          continue;
        }
      }
      const cap = Atomics.load(ctl, CAP);
      const freq = Atomics.load(ctl, FREQ_PPM) / 1e6;
      let t = now();
      // A light vCPU whose stall sleeps takes its CAP periods several at a time (work-batch.ts: wake-ups cost).
      const stretch = this.dvfsStall === 'sleep' ? capStretch(cap, freq, CAP_PERIOD_MS) : 1;
      const periodMs = CAP_PERIOD_MS * stretch;
      if (t - periodStart >= periodMs) {
        periodStart = t;
        used = 0;
      }
      const capMs = cap > 0 ? (cap / 100) * periodMs : Number.POSITIVE_INFINITY;
      const budget = capMs - used;
      if (budget <= 0) {
        this.capWaitMs += this.sleep(gen, periodStart + periodMs - t); // descheduled: no guest time passes
        continue;
      }
      const timed = clocked && target < 0;
      if (timed) {
        const due = this.workload.dueMs!();
        if (Number.isNaN(clock)) clock = due;
        if (due > clock) {
          const slept = this.sleep(gen, Math.min((due - clock) / (freq * speed), budget, CAP_PERIOD_MS));
          clock += slept * freq * speed;
          used += slept;
          continue;
        }
      }
      const paced = rate > 0 && target < 0;
      if (paced && tokens < 1) {
        const need = ((1 - tokens) / (rate * freq)) * 1000;
        const slept = this.sleep(gen, Math.min(need, budget, CAP_PERIOD_MS));
        tokens = Math.min(burst, tokens + (rate * freq * slept) / 1000);
        used += slept;
        continue;
      }
      // Work phase: at most freq x slice of real work, in batches, stopping at the target or a new command. A capped
      // vCPU whose stall sleeps does its period's whole budget in one phase (the batches still check for commands):
      // in slices, a CAP above the slice (4 % and up) slept a short stall between two phases, and on a loaded host
      // such a sleep overran by milliseconds, which the budget paid for.
      t = now();
      const phaseMs = this.dvfsStall === 'sleep' && cap > 0 ? budget : Math.min(SLICE_MS * stretch, budget);
      const workEnd = t + phaseMs * freq;
      const writes0 = this.mem.pageWrites;
      const wl = this.workload;
      const mem = this.mem;
      const rng = this.rng;
      for (;;) {
        const b0 = now();
        // A vCPU whose stall sleeps (the cluster's guests) keeps each batch inside its allotment; a busy stall keeps
        // the batches as they were (its phases are long enough that the overshoot does not matter).
        let n = this.dvfsStall === 'sleep' ? fitBatch(this.batch, this.stepMs, workEnd - b0) : this.batch;
        if (target >= 0 && target - this.step < n) n = target - this.step;
        let k = 0;
        if (paced) {
          for (; k < n && mem.pageWrites - writes0 < tokens && mem.newDirty < dirtyLimit; k++)
            wl.step(mem, rng);
        } else if (timed) {
          for (; k < n && wl.dueMs!() <= clock && mem.newDirty < dirtyLimit; k++) wl.step(mem, rng);
        } else {
          for (; k < n && mem.newDirty < dirtyLimit; k++) wl.step(mem, rng);
        }
        this.step += k;
        const b1 = now();
        const took = b1 - b0;
        this.stepMs = nextStepMs(this.stepMs, took, k);
        if (took < 0.05 && n === this.batch && this.batch < 1 << 20) this.batch *= 2;
        else if (took > 0.2 && this.batch > 1) this.batch >>= 1;
        if (k < n || b1 >= workEnd || this.step === target || Atomics.load(ctl, GEN) !== gen) break;
      }
      const worked = now() - t;
      this.publish();
      const stallMs = freq < 1 ? (worked * (1 - freq)) / freq : 0;
      const toPeriodEnd = periodStart + periodMs - now();
      let stalled = 0;
      if (
        this.dvfsStall === 'sleep' &&
        stallMs > 0 &&
        used + worked + stallMs >= capMs &&
        stallMs <= toPeriodEnd
      ) {
        // The stall spends the period's CAP budget: sleep to the period's end in one wait, not a stall and then a
        // CAP wait (one wake-up per period instead of two).
        const slept = this.sleep(gen, toPeriodEnd);
        stalled = Math.min(slept, stallMs);
        this.capWaitMs += slept - stalled;
      } else if (stallMs > 0) stalled = this.stall(gen, stallMs);
      // A stall that overran (woken late, or preempted while spinning) was descheduled time past the stall: as with
      // a CAP wait, no budget is spent on it.
      used += worked + Math.min(stalled, stallMs);
      this.busyMs += worked + (this.dvfsStall === 'busy' ? stalled : 0);
      if (timed) clock = Math.min(clock + (worked + stalled) * freq * speed, wl.dueMs!() + MAX_TRACE_LAG_MS);
      if (paced) {
        tokens = Math.min(
          burst,
          tokens + (rate * freq * (worked + stalled)) / 1000 - (mem.pageWrites - writes0),
        );
      }
    }
  }

  /** Makes the step count (and own CPU-time estimate) visible to the main thread. */
  private publish(): void {
    Atomics.store(this.v, this.base + V_STEP, BigInt(this.step));
    Atomics.store(this.v, this.base + V_BUSY_NS, BigInt(Math.round(this.busyMs * 1e6)));
    Atomics.store(this.v, this.base + V_READS, BigInt(this.workload.reads?.() ?? 0));
    Atomics.store(this.v, this.base + V_DIRTY_WAIT_NS, BigInt(Math.round(this.dirtyWaitMs * 1e6)));
    Atomics.store(this.v, this.base + V_DIRTY_WAITS, BigInt(this.dirtyWaits));
    Atomics.store(this.v, this.base + V_NEW_DIRTY, BigInt(this.mem.newDirty));
    Atomics.store(this.v, this.base + V_CAP_WAIT_NS, BigInt(Math.round(this.capWaitMs * 1e6)));
  }

  /**
   * Sleeps up to `ms`, waking early on any new command; returns the time slept. A sleep of CLAIM_MIN_MS or more
   * is claimable: a pause may take this vCPU as parked without waking it (control.ts, SLEEP).
   */
  private sleep(gen: number, ms: number): number {
    const t = now();
    if (ms >= CLAIM_MIN_MS && this.slots && this.publishSlot(gen)) {
      const w = SLEEP + this.index;
      const asleep = this.sleepSeq + 1;
      Atomics.store(this.ctl, w, asleep);
      Atomics.wait(this.ctl, GEN, gen, ms);
      const was = Atomics.compareExchange(this.ctl, w, asleep, asleep + 1);
      this.sleepSeq = (asleep + 1) & 0x3fffffff; // stays even
      if (was === asleep) return now() - t;
      // Claimed by a pause at generation -1 - was: parked with the slot's state. No step runs until a new command.
      Atomics.store(this.ctl, w, this.sleepSeq);
      const slept = Math.min(now() - t, ms);
      this.parkedWait(-1 - was);
      this.claimed = true;
      return slept;
    }
    if (ms > 0) Atomics.wait(this.ctl, GEN, gen, ms);
    return now() - t;
  }

  /**
   * Parked at `gen`: waits for the next command. (Waking a parked vCPU to apply a destination's state load ahead of
   * the resume was tried: the load now arrives inside the downtime, with the digest, and the woken thread took the
   * destination's core there — VCPU_STATE → SWITCHOVER 1.35 ms median in `bench:downtime`.)
   */
  private parkedWait(gen: number): void {
    Atomics.wait(this.ctl, GEN, gen);
  }

  /** Writes the state a pause would take (as state()) to this vCPU's slot; false if it does not fit. */
  private publishSlot(gen: number): boolean {
    const ok = writeSlot(this.slots!, this.index, {
      gen,
      seq: this.appliedSeq,
      step: this.step,
      rng: this.rng.state(),
      registers: Object.values(this.workload.registers()),
    });
    if (ok) this.publish();
    return ok;
  }

  /** The DVFS stall: the time the same work would have taken longer at the lower frequency. */
  private stall(gen: number, ms: number): number {
    if (this.dvfsStall === 'sleep') return this.sleep(gen, ms);
    const t = now();
    const end = t + ms;
    let x = now();
    while (x < end && Atomics.load(this.ctl, GEN) === gen) x = now();
    return x - t;
  }
}
