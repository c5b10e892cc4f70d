/**
 * The guest: RAM blocks, dirty log, and one worker thread per vCPU running the workload.
 *
 * The main thread steers the vCPUs through the shared control block (control.ts) and learns that they parked
 * from their messages; `pause` first waits for them synchronously (Atomics.wait on the park words, a bounded
 * wait of about one time slice), so a pause does not queue behind unrelated work on the event loop. A source guest comes from `create` (RAM initialised by the workload);
 * a destination from `createIncoming` (RAM zero, optionally every page absent for post-copy).
 */
import { readFileSync } from 'node:fs';
import { MessageChannel, type MessagePort, receiveMessageOnPort, type Worker } from 'node:worker_threads';
import { MigrationError, UsageError } from '../errors.js';
import { type GuestConfig, type ResolvedGuestConfig, resolveConfig, sameConfig } from './config.js';
import { sharedCorpus } from './content.js';
import {
  allocControl,
  CAP,
  CMD,
  CMD_PAUSE,
  CMD_RUN,
  CMD_STOP,
  DIRTY_PERIOD_MS,
  DIRTY_QUOTA,
  FREQ_PPM,
  GEN,
  MSG_SEQ,
  PARKED_GEN,
  readSlot,
  type SharedControl,
  SLEEP,
  V_BUSY_NS,
  V_CAP_WAIT_NS,
  V_DIRTY_WAIT_NS,
  V_DIRTY_WAITS,
  V_NEW_DIRTY,
  V_READS,
  V_STEP,
  V_TARGET,
  VCPU_STRIDE,
} from './control.js';
import { DirtyLog } from './dirty-log.js';
import type { SharedGuestMemory } from './memory.js';
import { GuestRam } from './ram.js';
import { startWorker } from './spawn.js';
import { guestTrace, sharedTrace } from './trace-bytes.js';
import type { VcpuState } from './vcpu.js';
import type { MainToWorker, VcpuWorkerData, WorkerToMain } from './vcpu-worker.js';
import { WriteProtect } from './write-protect.js';

export type { VcpuState } from './vcpu.js';

/** Dirty-rate limit in force (QEMU's vcpu-dirty-limit and dirty-limit period). */
export interface DirtyLimitSetting {
  /** MB/s per vCPU (MB = 2^20 bytes, as QEMU counts it). */
  vcpuDirtyLimit: number;
  periodMs: number;
  /** The quota it comes to: new pages each vCPU may dirty per period. */
  pagesPerPeriod: number;
}

/** What the dirty-rate limit did, per vCPU, since the guest started. */
export interface DirtyLimitCounters {
  /** Time held waiting for a new period, ms. */
  waitMs: number[];
  /** Number of such waits. */
  waits: number[];
  /** Pages newly dirtied (set a clear dirty bit). */
  newDirtyPages: number[];
  /** Time descheduled by the CAP (auto-converge's throttle or a power CAP), ms: to set beside waitMs. */
  capWaitMs: number[];
}

/** Everything needed to continue a paused guest elsewhere (JSON-serialisable). */
export interface GuestState {
  config: ResolvedGuestConfig;
  vcpus: VcpuState[];
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

/** How long a pause polls the park words before it sleeps on them (ms). */
const PARK_SPIN_MS = 0.3;

export class Guest {
  readonly config: ResolvedGuestConfig;
  readonly ram: GuestRam;
  readonly dirtyLog: DirtyLog;
  /** True for a destination created with `postcopy: true`. */
  readonly postcopy: boolean;
  readonly #control: SharedControl;
  readonly #ctl: Int32Array;
  readonly #v: BigInt64Array;
  readonly #presence: Int32Array | null;
  readonly #requested: Int32Array | null;
  #missing: number;
  #workers: Worker[] = [];
  #ports: MessagePort[] = [];
  #tids: number[];
  #cpuMs: number[];
  #gen = 0;
  #parkedGen: number[];
  #states: VcpuState[];
  #msgSeq: number[];
  /** Each vCPU's register names, in its state slot's order (from its `ready` message). */
  #registerNames: (string[] | undefined)[];
  readonly #slots: Float64Array;
  /** Pauses, and vCPUs a pause claimed asleep instead of waking them (control.ts, SLEEP). */
  #pauses = 0;
  #claims = 0;
  #waiters: Waiter[] = [];
  #faultListeners: ((page: number) => void)[] = [];
  #running = false;
  #cap = 0;
  #frequency = 1;
  #dirtyLimit: DirtyLimitSetting | null = null;
  /** Time spent running (resumed), ms, up to #runSince; and when the current run began (NaN while paused). */
  #runMs = 0;
  #runSince = Number.NaN;
  #error: Error | null = null;
  #destroyed = false;
  /** A live snapshot's write protection, while one runs (startWriteProtect). */
  #wp: WriteProtect | null = null;
  /** A `trace` guest's recording, read (or received by migration) once, shared with the vCPU threads. */
  readonly #trace: Uint8Array | undefined;
  /** This guest's resolved config as JSON (#checkStateConfig), made once. */
  #configJson: string | undefined;

  private constructor(config: ResolvedGuestConfig, postcopy: boolean, trace?: Uint8Array) {
    this.config = config;
    this.postcopy = postcopy;
    this.#trace = trace;
    this.ram = new GuestRam(config);
    this.dirtyLog = new DirtyLog(this.ram);
    this.#control = allocControl(config.vcpus);
    this.#ctl = new Int32Array(this.#control.ctl);
    this.#v = new BigInt64Array(this.#control.vcpu);
    const words = Math.ceil(this.ram.pageCount / 32);
    this.#presence = postcopy ? new Int32Array(new SharedArrayBuffer(words * 4)) : null;
    this.#requested = postcopy ? new Int32Array(new SharedArrayBuffer(words * 4)) : null;
    this.#missing = postcopy ? this.ram.pageCount : 0;
    const n = config.vcpus;
    this.#tids = new Array<number>(n).fill(-1);
    this.#cpuMs = new Array<number>(n).fill(0);
    this.#parkedGen = new Array<number>(n).fill(-1);
    this.#msgSeq = new Array<number>(n).fill(0);
    this.#registerNames = new Array<string[] | undefined>(n).fill(undefined);
    this.#slots = new Float64Array(this.#control.slots);
    this.#states = [];
  }

  /** A source guest: RAM zeroed, the workload's working set initialised deterministically, vCPUs paused. */
  static async create(config: GuestConfig): Promise<Guest> {
    const resolved = resolveConfig(config);
    const trace = guestTrace(resolved);
    const guest = new Guest(resolved, false, trace);
    // RAM is all zero until the init below: from here the dirty log knows which pages were never written (round 1
    // of a migration sends those as zero pages without reading them).
    guest.dirtyLog.trackWritesFromZero();
    await guest.#start(true);
    // Init writes are not migration-relevant history: the log starts clean.
    guest.dirtyLog.reset();
    return guest;
  }

  /**
   * A destination guest: same config, RAM zero, vCPUs paused until `resume()` (after `loadState`). With
   * `postcopy`, every page starts absent and a vCPU touching one faults and blocks until `placePage`.
   */
  static async createIncoming(
    config: GuestConfig,
    opts: { postcopy?: boolean; trace?: Uint8Array } = {},
  ): Promise<Guest> {
    const { guest, ready } = Guest.beginIncoming(config, opts);
    await ready;
    return guest;
  }

  /**
   * `createIncoming` without waiting for the vCPU threads: the RAM exists at once (pages can be written into it),
   * and `ready` resolves once every vCPU has started and parked — await it before `loadState`/`resume`. Lets a
   * migration destination answer the handshake while its vCPU threads start. On failure the guest is destroyed.
   * `trace`: a `trace` guest's recording as received (no file is opened); without it, the config's file is read.
   */
  static beginIncoming(
    config: GuestConfig,
    opts: { postcopy?: boolean; trace?: Uint8Array } = {},
  ): { guest: Guest; ready: Promise<void> } {
    // Received bytes: resolved from them (no file is opened). Else as `create`: the operator's file.
    const received = opts.trace ? sharedTrace(opts.trace) : undefined;
    const resolved = resolveConfig(config, { trace: received });
    const trace = received ?? guestTrace(resolved);
    const guest = new Guest(resolved, opts.postcopy ?? false, trace);
    const ready = guest.#start(false);
    ready.catch(() => undefined); // observed by whoever awaits it; never an unhandled rejection
    return { guest, ready };
  }

  get running(): boolean {
    return this.#running;
  }
  /** A `trace` guest's recording (what a migration carries to the destination); undefined for other workloads. */
  get trace(): Uint8Array | undefined {
    return this.#trace;
  }
  get cap(): number {
    return this.#cap;
  }
  get frequency(): number {
    return this.#frequency;
  }

  async #start(init: boolean): Promise<void> {
    const memory: SharedGuestMemory = {
      pageSize: this.ram.pageSize,
      pageCount: this.ram.pageCount,
      pagesPerBlock: this.ram.pagesPerBlock,
      blocks: this.ram.blocks.map((b) => b.buffer),
      bitmaps: this.dirtyLog.buffers.bitmaps,
      counters: this.dirtyLog.buffers.counters,
      presence: (this.#presence?.buffer as SharedArrayBuffer | undefined) ?? null,
      requested: (this.#requested?.buffer as SharedArrayBuffer | undefined) ?? null,
    };
    for (let index = 0; index < this.config.vcpus; index++) {
      const { port1, port2 } = new MessageChannel();
      const data: VcpuWorkerData = {
        config: this.config,
        index,
        memory,
        control: this.#control,
        init,
        port: port2,
        corpus: sharedCorpus(this.config.seed),
        trace: this.#trace ?? null,
      };
      const worker = startWorker('vcpu-worker', {
        workerData: data,
        transferList: [port2],
        name: `vcpu${index}`,
      });
      worker.on('message', (m: WorkerToMain) => this.#onMessage(index, m));
      // Park reports come on the vCPU's port (taken synchronously by #parkSync, else delivered here).
      port1.on('message', (m: WorkerToMain) => this.#onMessage(index, m));
      port1.unref();
      worker.on('error', (err) =>
        this.#fail(new MigrationError('INTERNAL', `vCPU ${index} crashed: ${err.message}`)),
      );
      worker.on('exit', (code) => {
        if (!this.#destroyed)
          this.#fail(new MigrationError('INTERNAL', `vCPU ${index} exited (code ${code})`));
      });
      this.#workers.push(worker);
      this.#ports.push(port1);
    }
    try {
      await this.#allParked();
    } catch (err) {
      await this.destroy();
      throw err;
    }
  }

  #onMessage(index: number, m: WorkerToMain): void {
    switch (m.type) {
      case 'ready':
        this.#tids[index] = m.tid;
        this.#registerNames[index] = m.registers;
        return;
      case 'parked':
        if (m.gen !== this.#gen) return; // raced with a newer command; the vCPU will report again
        this.#states[index] = m.state;
        this.#parkedGen[index] = m.gen;
        this.#checkWaiters();
        return;
      case 'fault':
        for (const listener of this.#faultListeners) listener(m.page);
        return;
      case 'error':
        this.#fail(new MigrationError('INTERNAL', `vCPU ${index} failed: ${m.message}`, { stack: m.stack }));
        return;
    }
  }

  #fail(err: Error): void {
    if (this.#error) return;
    this.#error = err;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(err);
  }

  #isAllParked(): boolean {
    return this.#parkedGen.every((g) => g === this.#gen);
  }

  #checkWaiters(): void {
    if (!this.#isAllParked()) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.resolve();
  }

  #allParked(): Promise<void> {
    if (this.#error) return Promise.reject(this.#error);
    if (this.#isAllParked()) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /**
   * Publishes a command: targets and command word first, then the generation bump that wakes the vCPUs (`wake`
   * false: the caller notifies, or has no vCPU to wake).
   */
  #command(cmd: number, targets: readonly number[] | null, wake = true): void {
    for (let i = 0; i < this.config.vcpus; i++) {
      Atomics.store(this.#v, i * VCPU_STRIDE + V_TARGET, BigInt(targets ? targets[i]! : -1));
    }
    Atomics.store(this.#ctl, CMD, cmd);
    this.#gen = Atomics.add(this.#ctl, GEN, 1) + 1;
    if (wake) Atomics.notify(this.#ctl, GEN);
  }

  /**
   * Claims vCPU `i` as parked at the current generation if it sleeps with its state in its slot, taken at
   * generation `before` (the one this pause replaced) with every message applied (control.ts, SLEEP). The vCPU is
   * not woken: its thread stays asleep, and when it wakes it finds itself claimed and runs no step.
   */
  #claim(i: number, before: number): boolean {
    const names = this.#registerNames[i];
    const w = SLEEP + i;
    const asleep = Atomics.load(this.#ctl, w);
    if (!names || asleep <= 0 || (asleep & 1) === 0) return false;
    const slot = readSlot(this.#slots, i);
    if (slot.gen !== before || slot.seq !== this.#msgSeq[i] || slot.registers.length !== names.length)
      return false;
    const registers: Record<string, number> = {};
    for (let k = 0; k < names.length; k++) registers[names[k]!] = slot.registers[k]!;
    const state: VcpuState = { index: i, step: slot.step, rng: [...slot.rng], registers };
    // The slot was written before the odd word was stored and is rewritten only after the vCPU swapped it: if the
    // swap below succeeds, the vCPU was asleep all along and what was read is its state.
    if (Atomics.compareExchange(this.#ctl, w, asleep, -1 - this.#gen) !== asleep) return false;
    this.#states[i] = state;
    this.#parkedGen[i] = this.#gen;
    Atomics.store(this.#ctl, PARKED_GEN + i, this.#gen);
    return true;
  }

  /** Pauses so far, and vCPUs they claimed asleep rather than woke (a pause's cost: docs/engines.md). */
  pauseStats(): { pauses: number; claimed: number } {
    return { pauses: this.#pauses, claimed: this.#claims };
  }

  #usable(what: string): void {
    if (this.#destroyed) throw new MigrationError('GUEST_NOT_FOUND', `${what}: the guest was destroyed`);
    if (this.#error) throw this.#error;
  }

  /** Starts or continues every vCPU. */
  resume(): void {
    this.#usable('resume');
    this.#command(CMD_RUN, null);
    this.#running = true;
    if (Number.isNaN(this.#runSince)) this.#runSince = performance.now();
  }

  #stoppedRunning(): void {
    if (!Number.isNaN(this.#runSince)) this.#runMs += performance.now() - this.#runSince;
    this.#runSince = Number.NaN;
  }

  /** Wall time the guest has spent resumed (running its workload), ms. */
  runningMs(): number {
    return this.#runMs + (Number.isNaN(this.#runSince) ? 0 : performance.now() - this.#runSince);
  }

  /**
   * Waits (blocking, at most `maxMs`) until every vCPU has parked at the current generation, and takes their park
   * reports from their ports. True when all are parked; false leaves the rest to the event loop (#allParked).
   */
  #parkSync(maxMs: number): boolean {
    const start = performance.now();
    const end = start + maxMs;
    for (let i = 0; i < this.config.vcpus; i++) {
      for (;;) {
        const at = Atomics.load(this.#ctl, PARKED_GEN + i);
        if (at === this.#gen) break;
        const now = performance.now();
        const left = end - now;
        if (left <= 0) return false;
        // A vCPU parks within a wake-up (tens to hundreds of µs): poll that long rather than sleep, so that this
        // thread does not pay a wake-up of its own on top (the pause is downtime); then sleep on the word.
        if (now - start < PARK_SPIN_MS) continue;
        Atomics.wait(this.#ctl, PARKED_GEN + i, at, left);
      }
      // The report was posted before the word was stored; it is normally there at once.
      while (this.#parkedGen[i] !== this.#gen) {
        const got = receiveMessageOnPort(this.#ports[i]!);
        if (got) this.#onMessage(i, got.message as WorkerToMain);
        else if (performance.now() >= end) return false;
      }
    }
    return this.#isAllParked();
  }

  /**
   * Resolves when every vCPU is parked between two steps (within about one time slice). Waits synchronously for up
   * to `syncMs` first (default one time slice's worth and some), then on the event loop.
   */
  async pause(syncMs = 20): Promise<void> {
    this.#usable('pause');
    if (!this.#running && this.#isAllParked()) return;
    const before = this.#gen;
    this.#command(CMD_PAUSE, null, false);
    this.#pauses++;
    // A sleeping vCPU is claimed where it sleeps (no wake-up, park and report: 0.2–0.6 ms of a switch-over);
    // the others are woken to park.
    let woken = false;
    for (let i = 0; i < this.config.vcpus; i++) {
      if (this.#claim(i, before)) this.#claims++;
      else woken = true;
    }
    if (woken) Atomics.notify(this.#ctl, GEN);
    if (!(syncMs > 0 && this.#parkSync(syncMs))) await this.#allParked();
    this.#running = false;
    this.#stoppedRunning();
  }

  /**
   * Runs every vCPU until its step count equals its target exactly, then parks it (the determinism oracle).
   * Ignores writeRate pacing (it only shapes timing); CAP and frequency still apply.
   */
  async runToStep(step: number | readonly number[]): Promise<void> {
    await this.pause();
    const n = this.config.vcpus;
    const targets = typeof step === 'number' ? new Array<number>(n).fill(step) : [...step];
    if (targets.length !== n)
      throw new UsageError(`runToStep: need ${n} targets (one per vCPU), got ${targets.length}`);
    targets.forEach((t, i) => {
      const at = this.#states[i]!.step;
      if (!Number.isSafeInteger(t) || t < at) {
        throw new UsageError(
          `runToStep: vCPU ${i} is at step ${at}; target ${t} must be an integer >= ${at}`,
        );
      }
    });
    this.#command(CMD_RUN, targets);
    this.#running = true;
    try {
      await this.#allParked();
    } finally {
      this.#running = false;
    }
    const off = this.#states.findIndex((s, i) => s.step !== targets[i]);
    if (off >= 0) {
      throw new MigrationError(
        'CANCELLED',
        `runToStep: vCPU ${off} parked at ${this.#states[off]!.step}, not at the target`,
      );
    }
  }

  /** The vCPU states (only while paused). */
  state(): GuestState {
    this.#usable('state');
    if (this.#running)
      throw new MigrationError('GUEST_BUSY', 'state() needs a paused guest: await pause() first');
    return structuredClone({ config: this.config, vcpus: this.#states });
  }

  /** Loads vCPU states (only while paused; e.g. on the destination before `resume`). */
  loadState(state: GuestState): void {
    this.#usable('loadState');
    if (this.#running) throw new MigrationError('GUEST_BUSY', 'loadState() needs a paused guest');
    const states = this.checkState(state);
    states.forEach((s, i) => {
      this.#post(i, (seq) => ({ type: 'load', seq, state: s }));
      Atomics.store(this.#v, i * VCPU_STRIDE + V_STEP, BigInt(s.step));
      this.#states[i] = s;
    });
  }

  /**
   * What loadState checks, without loading: the state's config is this guest's, and each vCPU's state fits this
   * workload. Returns the checked copies; throws as loadState does. (A destination runs it before the paused window
   * to compile it: src/migration/switchover-warm.ts.)
   */
  checkState(state: GuestState): VcpuState[] {
    if (!state || typeof state !== 'object' || !Array.isArray(state.vcpus)) {
      throw new MigrationError('BAD_ARGUMENT', 'loadState: expected { config, vcpus: [...] }');
    }
    this.#checkStateConfig(state.config);
    if (state.vcpus.length !== this.config.vcpus) {
      throw new MigrationError(
        'BAD_ARGUMENT',
        `loadState: ${state.vcpus.length} vCPU states for ${this.config.vcpus} vCPUs`,
      );
    }
    return state.vcpus.map((s, i) => checkVcpuState(s, i, this.#states[i]!));
  }

  /**
   * Refuses a state whose config is not this guest's. A migration's state carries the source's resolved config,
   * which is this guest's own when its JSON text is (a resolved config resolves to itself: config.test.ts), and then
   * is not resolved again: loadState runs in a switch-over's paused window, where the resolve and the comparison took
   * 0.03–0.07 ms with cold caches. Any other text is resolved and compared as before.
   */
  #checkStateConfig(given: unknown): void {
    this.#configJson ??= JSON.stringify(this.config);
    if (JSON.stringify(given) === this.#configJson) return;
    // This guest's own trace bytes (none: an empty trace, which no state resolves with): a state never makes the
    // guest open a file it names.
    const config = resolveConfig(given as GuestConfig, { trace: this.#trace ?? NO_TRACE });
    if (!sameConfig(config, this.config)) {
      throw new MigrationError(
        'BAD_ARGUMENT',
        'loadState: the state belongs to a guest with a different config',
        {
          expected: this.config,
          got: config,
        },
      );
    }
  }

  /** Queues a message for vCPU `i`, applied before its next step (the sequence word announces it). */
  #post(i: number, msg: (seq: number) => MainToWorker): void {
    const seq = ++this.#msgSeq[i]!;
    this.#ports[i]!.postMessage(msg(seq));
    Atomics.store(this.#ctl, MSG_SEQ + i, seq);
  }

  /**
   * A live snapshot begins (write-protect.ts): every page is protected from now on, so that the snapshot writer
   * saves RAM as it is at this instant. Needs a paused guest (its vCPU state is the same instant's); the vCPUs apply
   * the protection before their next step. One at a time; `stopWriteProtect` ends it. `wp`: one made beforehand
   * for this guest's RAM (its copy pool committed before the instant), else a default one is made now.
   */
  startWriteProtect(wp: WriteProtect = new WriteProtect(this.ram)): WriteProtect {
    this.#usable('startWriteProtect');
    if (this.#running) throw new MigrationError('GUEST_BUSY', 'startWriteProtect() needs a paused guest');
    if (this.#wp) throw new MigrationError('GUEST_BUSY', 'a snapshot of this guest is already being taken');
    if (this.#missing > 0) {
      throw new MigrationError('GUEST_BUSY', `${this.#missing} pages have not arrived yet (post-copy)`);
    }
    if (wp.ram !== this.ram) throw new UsageError('startWriteProtect: that protection is for another guest');
    this.#wp = wp;
    for (let i = 0; i < this.config.vcpus; i++)
      this.#post(i, (seq) => ({ type: 'protect', seq, shared: wp.shared }));
    return wp;
  }

  /** Ends the write protection (the snapshot is written, or given up: vCPUs waiting on it go on at once). */
  stopWriteProtect(): void {
    if (!this.#wp) return;
    this.#wp.abandon();
    this.#wp = null;
    if (this.#destroyed) return;
    for (let i = 0; i < this.config.vcpus; i++)
      this.#post(i, (seq) => ({ type: 'protect', seq, shared: null }));
  }

  /** Live step counts per vCPU (updated every time slice). */
  steps(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.config.vcpus; i++)
      out.push(Number(Atomics.load(this.#v, i * VCPU_STRIDE + V_STEP)));
    return out;
  }

  /** CAP in percent of one physical CPU per 30 ms period, per vCPU; 0 = uncapped. */
  setCap(percent: number): void {
    this.#usable('setCap');
    if (!Number.isInteger(percent) || percent < 0 || percent > 100) {
      throw new UsageError(
        `cap: ${percent} is not accepted; use an integer percent 0..100 (0 = uncapped)`,
        'cap',
      );
    }
    this.#cap = percent;
    Atomics.store(this.#ctl, CAP, percent);
  }

  get dirtyLimit(): DirtyLimitSetting | null {
    return this.#dirtyLimit ? { ...this.#dirtyLimit } : null;
  }

  /**
   * Dirty-rate limit (QEMU's dirty-limit): each vCPU may newly dirty at most `vcpuDirtyLimit` MB/s, counted per
   * `periodMs` period; a vCPU that has used its quota waits for the next period. Steps that only read never wait.
   * 0 lifts the limit.
   */
  setDirtyLimit(vcpuDirtyLimit: number, periodMs = 1000): void {
    this.#usable('setDirtyLimit');
    if (!(Number.isFinite(vcpuDirtyLimit) && vcpuDirtyLimit >= 0)) {
      throw new UsageError(
        `dirty limit: ${vcpuDirtyLimit} is not accepted; use MB/s per vCPU >= 0 (0 = no limit)`,
        'vcpuDirtyLimit',
      );
    }
    if (!(Number.isInteger(periodMs) && periodMs >= 1 && periodMs <= 1000)) {
      throw new UsageError(
        `dirty-limit period: ${periodMs} is not accepted; use an integer 1..1000 ms (QEMU's range)`,
        'dirtyLimitPeriodMs',
      );
    }
    if (vcpuDirtyLimit === 0) {
      this.#dirtyLimit = null;
      Atomics.store(this.#ctl, DIRTY_QUOTA, 0);
      return;
    }
    const perPeriod = (vcpuDirtyLimit * 1024 * 1024 * periodMs) / 1000 / this.config.pageSize;
    const pagesPerPeriod = Math.min(2 ** 31 - 1, Math.max(1, Math.floor(perPeriod)));
    this.#dirtyLimit = { vcpuDirtyLimit, periodMs, pagesPerPeriod };
    Atomics.store(this.#ctl, DIRTY_PERIOD_MS, periodMs);
    Atomics.store(this.#ctl, DIRTY_QUOTA, pagesPerPeriod);
  }

  /** Per-vCPU dirty-limit waits and newly-dirtied pages (updated every time slice). */
  dirtyLimitCounters(): DirtyLimitCounters {
    const field = (f: number) =>
      Array.from({ length: this.config.vcpus }, (_, i) => Number(Atomics.load(this.#v, i * VCPU_STRIDE + f)));
    return {
      waitMs: field(V_DIRTY_WAIT_NS).map((ns) => ns / 1e6),
      waits: field(V_DIRTY_WAITS),
      newDirtyPages: field(V_NEW_DIRTY),
      capWaitMs: field(V_CAP_WAIT_NS).map((ns) => ns / 1e6),
    };
  }

  /** Read-only operations per vCPU (workloads that count them, e.g. kv-read's GETs; 0 for the others). */
  reads(): number[] {
    return Array.from({ length: this.config.vcpus }, (_, i) =>
      Number(Atomics.load(this.#v, i * VCPU_STRIDE + V_READS)),
    );
  }

  /** Emulated DVFS: the fraction (0, 1] of the maximum frequency the vCPUs run at. */
  setFrequency(ratio: number): void {
    this.#usable('setFrequency');
    if (!(typeof ratio === 'number' && ratio > 0 && ratio <= 1)) {
      throw new UsageError(
        `frequency: ${ratio} is not accepted; use a ratio 0 < f <= 1 of the maximum`,
        'frequency',
      );
    }
    this.#frequency = ratio;
    Atomics.store(this.#ctl, FREQ_PPM, Math.max(1, Math.round(ratio * 1e6)));
  }

  /**
   * CPU time each vCPU thread has consumed, in ms: the kernel's count for the thread (schedstat) on Linux, the
   * vCPU's own clock of its busy time elsewhere.
   */
  cpuTimeMs(): number[] {
    for (let i = 0; i < this.config.vcpus; i++) {
      const tid = this.#tids[i]!;
      if (tid > 0) {
        try {
          const ns = Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'latin1').split(' ')[0]);
          if (Number.isFinite(ns)) this.#cpuMs[i] = ns / 1e6;
        } catch {
          // the thread has exited: its last reading stands
        }
      } else {
        this.#cpuMs[i] = Number(Atomics.load(this.#v, i * VCPU_STRIDE + V_BUSY_NS)) / 1e6;
      }
    }
    return [...this.#cpuMs];
  }

  /**
   * Scheduled time of all vCPUs, ms, by their own clock: the time CAP budgets (a vCPU preempted by the host kernel
   * inside its slice still spends budget), so on a loaded machine it stays at cap × wall time where the kernel's CPU
   * time falls short. Counts from this guest's start here (a migrated-in guest starts at 0).
   */
  busyTimeMs(): number {
    let ms = 0;
    for (let i = 0; i < this.config.vcpus; i++)
      ms += Number(Atomics.load(this.#v, i * VCPU_STRIDE + V_BUSY_NS)) / 1e6;
    return ms;
  }

  /** OS thread id (TID) of each vCPU worker, -1 until it has reported; the power meter reads /proc by it. */
  threadIds(): number[] {
    return [...this.#tids];
  }

  /** Post-copy: `listener` is called once per absent page a vCPU touches. */
  onFault(listener: (page: number) => void): void {
    this.#faultListeners.push(listener);
  }

  /**
   * Post-copy: stores a page (null = zero page), marks it present and wakes vCPUs waiting for it. Returns false
   * (and changes nothing) if the page is already present: the guest may have written it since.
   */
  placePage(index: number, data: Uint8Array | null): boolean {
    const presence = this.#presence;
    if (!presence) throw new UsageError('placePage: the guest was not created with { postcopy: true }');
    if (this.isPresent(index)) return false;
    if (data === null) this.ram.zeroPage(index);
    else this.ram.writePage(index, data);
    return this.markPresent(index);
  }

  /**
   * Post-copy: declares an absent page present whose content the migration already wrote into RAM in place
   * (decoded there while no vCPU could touch it), and wakes vCPUs waiting on it. No copy.
   */
  markPresent(index: number): boolean {
    const presence = this.#presence;
    if (!presence) throw new UsageError('markPresent: the guest was not created with { postcopy: true }');
    const w = index >>> 5;
    const bit = 1 << (index & 31);
    if ((Atomics.or(presence, w, bit) & bit) !== 0) return false;
    this.#missing--;
    Atomics.notify(presence, w);
    return true;
  }

  isPresent(index: number): boolean {
    if (!this.#presence) return true;
    return (Atomics.load(this.#presence, index >>> 5) & (1 << (index & 31))) !== 0;
  }

  /** Post-copy: pages still absent. */
  missingPages(): number {
    return this.#missing;
  }

  /** Stops the vCPU threads. RAM stays readable. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#fail(new MigrationError('CANCELLED', 'the guest was destroyed'));
    this.#command(CMD_STOP, null);
    this.#running = false;
    this.#stoppedRunning();
    await Promise.all(
      this.#workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.threadId === -1) return resolve();
            const timer = setTimeout(() => void w.terminate(), 2000);
            w.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
          }),
      ),
    );
    for (const p of this.#ports) p.close();
  }
}

const NO_TRACE = new Uint8Array(0);

function checkVcpuState(s: VcpuState, index: number, current: VcpuState): VcpuState {
  const bad = (why: string): never => {
    throw new MigrationError('BAD_ARGUMENT', `loadState: vCPU ${index}: ${why}`, { state: s });
  };
  if (!s || typeof s !== 'object') bad('not an object');
  if (s.index !== index) bad(`index ${s.index} in position ${index}`);
  if (!Number.isSafeInteger(s.step) || s.step < 0) bad(`step ${s.step} is not a non-negative integer`);
  if (
    !Array.isArray(s.rng) ||
    s.rng.length !== 4 ||
    s.rng.some((v) => !Number.isInteger(v) || v < 0 || v > 0xffffffff) ||
    s.rng.every((v) => v === 0)
  ) {
    bad('rng must be four uint32, not all zero');
  }
  const want = Object.keys(current.registers).sort().join(',');
  const got = Object.keys(s.registers ?? {})
    .sort()
    .join(',');
  if (want !== got) bad(`registers {${got}} do not match this workload's {${want}}`);
  for (const [k, v] of Object.entries(s.registers)) if (!Number.isSafeInteger(v)) bad(`register ${k} = ${v}`);
  return { index, step: s.step, rng: [...s.rng], registers: { ...s.registers } };
}
