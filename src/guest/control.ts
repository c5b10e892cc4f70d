/**
 * The control block shared by the main thread and the vCPU workers (SharedArrayBuffers, Atomics only).
 *
 * Protocol: the main thread writes the command, targets, CAP and frequency, then bumps GEN and notifies.
 * A worker reads GEN first, then the rest, and acts; when it parks it reports the GEN it acted on and waits
 * (Atomics.wait) for GEN to change. The main thread accepts a "parked" report only for the current GEN, so a
 * report that raced with a newer command is ignored and the worker, woken by that command, reports again.
 */

/** Int32 words of `ctl`. */
export const GEN = 0;
export const CMD = 1;
export const CAP = 2;
export const FREQ_PPM = 3;
/** Dirty-rate limit (QEMU's dirty-limit): new pages each vCPU may dirty per period, 0 = off; and the period, ms. */
export const DIRTY_QUOTA = 4;
export const DIRTY_PERIOD_MS = 5;
/** Per-vCPU message sequence (main -> worker messages waiting on its port), at MSG_SEQ + index. */
export const MSG_SEQ = 8;
/**
 * Per-vCPU park report (at PARKED_GEN + index): the GEN the vCPU parked at, stored (and notified) right after it
 * posted its state on its port. The main thread can then wait for a pause with Atomics.wait and take the states
 * with receiveMessageOnPort — without waiting for its event loop, which may be busy with unrelated work.
 */
export const PARKED_GEN = MSG_SEQ + 64;
/**
 * Per-vCPU sleep word (at SLEEP + index), so that a pause can claim a sleeping vCPU instead of waking it (issue 17:
 * the wake-up, park and report of a vCPU thread cost the source 0.2–0.6 ms of downtime). Before a sleep of at least
 * {@link CLAIM_MIN_MS} (pacing, CAP, dirty-limit), a vCPU writes its state to its slot and stores an odd sequence
 * number here; when it wakes it swaps that number for the next (even) one. A pause that finds the odd number, and a
 * slot taken at the generation before the pause with every message applied, swaps it for -1 − the pause's
 * generation (compare-and-swap): from then on the vCPU counts as parked at that generation with the slot's state.
 * A vCPU whose swap fails was claimed: it runs no step and waits for the next command, as a parked vCPU does.
 * Either the vCPU's swap or the pause's wins, never both; the sequence number rules out a slot from an older sleep.
 */
export const SLEEP = PARKED_GEN + 64;
export const CTL_WORDS = SLEEP + 64;

/** Float64 words per vCPU in `slots` (at index * SLOT_WORDS + field): the state a sleeping vCPU published. */
const SLOT_WORDS = 32;
/** The control generation the vCPU went to sleep at. */
const S_GEN = 0;
/** The last main-thread message it had applied (MSG_SEQ). */
const S_SEQ = 1;
const S_STEP = 2;
/** Four words: the RNG's state. */
const S_RNG = 3;
/** How many registers follow (in the order of the names the vCPU sent in its `ready` message). */
const S_NREGS = 7;
const S_REGS = 8;
const SLOT_MAX_REGS = SLOT_WORDS - S_REGS;
/**
 * Shortest sleep a vCPU publishes as claimable (ms): shorter ones end before a pause would gain much. A vCPU paced
 * at 6000 pages/s (page-order's gap-128MiB) sleeps about 0.17 ms between pages and is asleep nearly all the time:
 * at 1 ms none of its sleeps was claimable, and each pause woke it to park (0.15–0.5 ms of the downtime, issue 17
 * point 5). Publishing the slot costs the vCPU a few µs per sleep.
 */
export const CLAIM_MIN_MS = 0.1;

/** What a sleeping vCPU publishes in its slot: the vCPU writes it (vcpu.ts), a pause reads it (guest.ts). */
export interface SlotState {
  /** The control generation the vCPU went to sleep at. */
  gen: number;
  /** The last main-thread message it had applied (MSG_SEQ). */
  seq: number;
  step: number;
  rng: readonly number[];
  /** The register values, in the order of the names the vCPU sent in its `ready` message. */
  registers: readonly number[];
}

/** Writes vCPU `index`'s slot; false (nothing written) when its registers do not fit. */
export function writeSlot(slots: Float64Array, index: number, st: SlotState): boolean {
  if (st.registers.length > SLOT_MAX_REGS) return false;
  const o = index * SLOT_WORDS;
  for (let k = 0; k < st.registers.length; k++) slots[o + S_REGS + k] = st.registers[k]!;
  slots[o + S_NREGS] = st.registers.length;
  slots[o + S_GEN] = st.gen;
  slots[o + S_SEQ] = st.seq;
  slots[o + S_STEP] = st.step;
  for (let i = 0; i < 4; i++) slots[o + S_RNG + i] = st.rng[i]!;
  return true;
}

/** Reads vCPU `index`'s slot. */
export function readSlot(slots: Float64Array, index: number): SlotState {
  const o = index * SLOT_WORDS;
  const n = slots[o + S_NREGS]!;
  return {
    gen: slots[o + S_GEN]!,
    seq: slots[o + S_SEQ]!,
    step: slots[o + S_STEP]!,
    rng: Array.from(slots.subarray(o + S_RNG, o + S_RNG + 4)),
    registers: Array.from(slots.subarray(o + S_REGS, o + S_REGS + n)),
  };
}

export const CMD_PAUSE = 0;
export const CMD_RUN = 1;
export const CMD_STOP = 2;

/** BigInt64 words per vCPU in `vcpu`: at index * VCPU_STRIDE + field. */
export const VCPU_STRIDE = 8;
export const V_STEP = 0;
/** Run-to-step target, -1 = none. */
export const V_TARGET = 1;
/** Nanoseconds the worker spent on the CPU by its own clock (fallback for cpuTimeMs off Linux). */
export const V_BUSY_NS = 2;
/** Read-only operations done (workloads that count them, e.g. kv-read's GETs). */
export const V_READS = 3;
/** Nanoseconds the vCPU waited because it had used its dirty quota (dirty-limit). */
export const V_DIRTY_WAIT_NS = 4;
/** Waits for the next dirty-limit period. */
export const V_DIRTY_WAITS = 5;
/** Pages this vCPU newly dirtied (set a clear dirty bit): the dirty ring's count, what dirty-limit caps. */
export const V_NEW_DIRTY = 6;
/** Nanoseconds the vCPU slept because its CAP budget for the period was used (descheduled by the CAP). */
export const V_CAP_WAIT_NS = 7;

/** Scheduling period of the CAP (Xen's credit scheduler accounts in 30 ms periods). */
export const CAP_PERIOD_MS = 30;
/** Time slice: the longest a vCPU runs between two looks at the control block. */
export const SLICE_MS = 1;

export interface SharedControl {
  readonly ctl: SharedArrayBuffer;
  readonly vcpu: SharedArrayBuffer;
  /** Float64 slots, SLOT_WORDS per vCPU: the state of a sleeping vCPU (SLEEP). */
  readonly slots: SharedArrayBuffer;
}

export function allocControl(vcpus: number): SharedControl {
  const ctl = new SharedArrayBuffer(CTL_WORDS * 4);
  const c = new Int32Array(ctl);
  c[FREQ_PPM] = 1_000_000;
  c.fill(-1, PARKED_GEN, PARKED_GEN + 64);
  const vcpu = new SharedArrayBuffer(vcpus * VCPU_STRIDE * 8);
  const v = new BigInt64Array(vcpu);
  for (let i = 0; i < vcpus; i++) v[i * VCPU_STRIDE + V_TARGET] = -1n;
  const slots = new SharedArrayBuffer(vcpus * SLOT_WORDS * 8);
  return { ctl, vcpu, slots };
}
