/**
 * The state of one outgoing migration, shared by the files of this folder (one per job), and the small helpers
 * they all use: the clock, events, progress reports, abort checks and pausing the guest.
 */
import { randomBytes } from 'node:crypto';
import { type Compressor, compressor } from '../../codec/index.js';
import type { MigrationError } from '../../errors.js';
import type { Guest, GuestState } from '../../guest/index.js';
import { openPausedWindow, type PausedWindow } from '../../paused-window.js';
import type { FrameConnection } from '../connection.js';
import { DirtyLimiter } from '../dirty-limit.js';
import { PageLedger } from '../ledger.js';
import type { MultifdSource } from '../multifd/source-channels.js';
import type { MigrationOptions } from '../options.js';
import { Command } from '../protocol/index.js';
import type { MigrationReport } from '../stats.js';
import { XbzrleCacheSizing } from './cache-sizing.js';
import { FrameOutput } from './frame-output.js';
import { HotLast } from './hot-last.js';
import { PageEncoder } from './page-encoder.js';
import type { PreemptChannel } from './preempt.js';
import { type SourceRun, SWITCHOVER_TIMEOUT_MS } from './run.js';

export class SourceState {
  readonly guest: Guest;
  conn: FrameConnection;
  /** Secret shared with the destination in HELLO; a RECOVER or RECONCILE connection must present it. */
  readonly recoveryToken: string;
  /** Bytes sent over connections that broke during post-copy (recovered). */
  bytesBeforeRecovery = 0;
  readonly o: MigrationOptions;
  readonly r: MigrationReport;
  readonly pageSize: number;
  readonly pageCount: number;
  readonly ledger: PageLedger;
  readonly frames: FrameOutput;
  readonly encoder: PageEncoder;
  readonly xbzrle: XbzrleCacheSizing;
  readonly hotLast: HotLast;
  readonly dirtyLimiter: DirtyLimiter;
  readonly t0 = performance.now();
  pausedAt = 0;
  /** When every vCPU had parked (performance.now()); 0 before the pause. */
  parkedAt = 0;
  /** Open from the pause until the guest runs on the destination (or the migration ends): src/paused-window.ts. */
  pausedWindow: PausedWindow | undefined;
  /** The vCPU state taken at the stop-and-copy's pause, its VCPU_STATE body, and when it was ready (handover.ts). */
  pausedState: GuestState | undefined;
  stateBody: Buffer | undefined;
  stateSentAt = 0;
  /** The socket is corked from VCPU_STATE to the digest: state, last pages and digest leave in one write (handover.ts). */
  oneWrite = false;
  /** VCPU_STATE is written (into the corked socket) ahead of the last pages. */
  stateWritten = false;
  /** GO is about to be or was sent: the guest belongs to the destination unless RECONCILE says otherwise. */
  handedOff = false;
  readonly wasRunning: boolean;
  readonly capBefore: number;
  /** Why the operator (cancel) or the clock (--timeout) stopped the migration, if they did. */
  stopReason: MigrationError | undefined;
  /** The destination bound this migration's frames (FRAME_BINDING): a recovery connection binds its own too. */
  framesBound = false;
  /** The destination granted OWNER_RECONCILE: after a fault at switch-over it answers RECONCILE. */
  ownership = false;
  /** postcopy-preempt: the channel the answers to page faults travel on (source/preempt.ts). */
  preempt: PreemptChannel | undefined;
  /** Bytes sent on preempt channels already closed (a recovery replaces the channel). */
  preemptBytesBefore = 0;
  /** The destination granted SWITCHOVER_ACK and has not sent it yet: the guest is not paused before it comes. */
  switchoverAck = false;
  /** The destination granted APPLIED_ACK: the source may wait for it to catch up before pausing (applied-ack.ts). */
  appliedAck = false;
  /** SWITCHOVER or POSTCOPY_START was sent: the destination may come to hold a verified copy. */
  readyAsked = false;
  stepsAtStart = 0;
  stepsAtStartTime = 0;
  /** Parallel channels, once opened (--multifd-channels ≥ 2): every page batch goes through them. */
  multifd: MultifdSource | undefined;
  private lastEmit = 0;

  constructor(readonly spec: SourceRun) {
    const guest = spec.guest;
    this.guest = guest;
    this.conn = spec.conn;
    this.recoveryToken = spec.recoveryToken ?? randomBytes(16).toString('hex');
    this.o = spec.options;
    this.r = spec.report;
    this.pageSize = guest.ram.pageSize;
    this.pageCount = guest.ram.pageCount;
    // Shared with the multifd channel threads, which record the CRCs of the pages they send.
    this.ledger = new PageLedger(this.pageCount, this.pageSize, this.o.multifdChannels > 1);
    this.frames = new FrameOutput(() => this.conn, this.pageSize, this.o.framePayloadBytes);
    const c = this.o.compress;
    const generic: Compressor | undefined =
      c === 'deflate' || c === 'zstd' || c === 'lz4' ? compressor(c) : undefined;
    this.encoder = new PageEncoder({
      ram: guest.ram,
      dirtyLog: guest.dirtyLog,
      ledger: this.ledger,
      compressor: generic,
      frames: this.frames,
      counters: { pages: this.r.pages, xbzrle: this.r.xbzrle },
      compress: c,
      verify: this.o.verify,
    });
    this.xbzrle = new XbzrleCacheSizing(this.o, this.r, guest.dirtyLog, this.encoder, this.pageCount, (t) =>
      this.event(t),
    );
    this.hotLast = new HotLast(this.pageCount, guest.dirtyLog, this.o, () => this.encoder.cache);
    this.encoder.mayDefer = (p) => this.hotLast.mayDefer(p);
    this.wasRunning = guest.running;
    this.capBefore = guest.cap;
    this.dirtyLimiter = new DirtyLimiter(guest, this.o);
  }

  /** Bytes sent on this connection and on the parallel channels. */
  sentBytes(): number {
    return this.conn.bytesSent + (this.multifd?.bytesSent ?? 0);
  }

  elapsed(): number {
    return performance.now() - this.t0;
  }

  event(text: string): void {
    // Seconds with µs resolution: the switch-over's steps are fractions of a millisecond.
    this.r.events.push(`${(this.elapsed() / 1000).toFixed(6)}s ${text}`);
  }

  checkAbort(): void {
    if (this.stopReason) throw this.stopReason;
    if (this.conn.error) throw this.conn.error;
  }

  /**
   * Cancel and timeout must work even while a send is blocked on a peer that stopped reading: they fail the
   * connection, which wakes every waiter. After GO the guest belongs to the destination and neither applies.
   */
  stop(reason: MigrationError): void {
    if (this.handedOff || this.stopReason) return;
    this.stopReason = reason;
    void this.conn.sendErrorAndClose(reason);
  }

  totalSteps(): number {
    let n = 0;
    for (const s of this.guest.steps()) n += s;
    return n;
  }

  emit(force = false): void {
    const now = performance.now();
    if (!force && now - this.lastEmit < 100) return;
    this.lastEmit = now;
    this.r.totalTimeMs = this.elapsed();
    this.r.transferredBytes = this.bytesBeforeRecovery + this.sentBytes();
    this.xbzrle.report();
    this.spec.onProgress?.(this.r);
  }

  measureGuestRate(): void {
    const dt = (performance.now() - this.stepsAtStartTime) / 1000;
    if (dt > 0) this.r.guest.stepsPerSecDuring = (this.totalSteps() - this.stepsAtStart) / dt;
    const before = this.r.guest.stepsPerSecBefore;
    this.r.guest.slowdown = before > 0 ? Math.max(0, 1 - this.r.guest.stepsPerSecDuring / before) : 0;
  }

  async pause(): Promise<void> {
    if (this.switchoverAck) {
      // QEMU's switchover-ack: the destination's vCPU threads are up, so the downtime will not wait for them.
      await this.conn.expect(Command.SWITCHOVER_ACK, SWITCHOVER_TIMEOUT_MS);
      this.switchoverAck = false;
      this.event('the destination is ready for switch-over (SWITCHOVER_ACK)');
    }
    this.measureGuestRate();
    this.pausedWindow ??= openPausedWindow();
    this.pausedAt = performance.now();
    if (this.guest.running) await this.guest.pause();
    this.parkedAt = performance.now();
    this.event('guest paused');
  }

  /** Steps per second of the guest over a short window, before migration starts loading the host. */
  async sampleRate(): Promise<number> {
    if (!this.guest.running) return 0;
    const a = this.totalSteps();
    const t = performance.now();
    await new Promise((res) => setTimeout(res, 100));
    const dt = (performance.now() - t) / 1000;
    return (this.totalSteps() - a) / dt;
  }
}
