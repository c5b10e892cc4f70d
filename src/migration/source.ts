/**
 * The migration source: reads the running guest's pages, encodes them, and drives the strategy (cold,
 * pre-copy, post-copy, hybrid) to switch-over. The source stays authoritative until the destination has
 * verified the guest and the source has sent GO: any failure before that resumes the guest here, untouched.
 */
import { randomBytes } from 'node:crypto';
import { PageCache } from '../cache/index.js';
import {
  allocatePageArena,
  type Compressor,
  compressor,
  encodeRleInto,
  encodeXbzrleInto,
  isZeroPage,
} from '../codec/index.js';
import { MigrationError } from '../errors.js';
import type { Guest } from '../guest/index.js';
import type { FrameConnection } from './connection.js';
import { DirtyLimiter } from './dirty-limit.js';
import { fullRamDigest, PageLedger, pageCrc, vcpuDigest } from './ledger.js';
import type { MigrationOptions } from './options.js';
import { type Handover, reconcileOwnership } from './ownership-source.js';
import {
  admitToCache,
  admittedCacheGrowth,
  autoConvergeStep,
  type ConvergenceState,
  decideAfterRound,
  expectedDowntimeMs,
  initialAdmittedCacheSize,
  isNotConverging,
  isStalled,
  nextCacheSize,
  type RoundSample,
  throttleToCap,
} from './policy.js';
import {
  Capability,
  Command,
  type Digest,
  decodeHelloAck,
  decodeJson,
  decodePageRequest,
  decodeRecoverAck,
  encodeDigest,
  encodeHello,
  encodeJson,
  encodePostcopyStart,
  encodeRecover,
  encodeRound,
  MIN_PROTOCOL_VERSION,
  PageEncoding,
  PagesFrameBuilder,
  PREAMBLE,
  PROTOCOL_VERSION,
  StrategyCode,
} from './protocol.js';
import { type MigrationReport, mbps, percentile } from './stats.js';
import { sendTrace } from './trace-transfer.js';

export interface SourceRun {
  guest: Guest;
  guestId: string;
  conn: FrameConnection;
  options: MigrationOptions;
  report: MigrationReport;
  signal: AbortSignal;
  onProgress?: (report: MigrationReport) => void;
  /**
   * Called after every pre-copy round with the source's view of it; controllers (e.g. power capping) act on the
   * guest from here. The engine's own auto-converge runs before it.
   */
  onRound?: (round: { report: MigrationReport; guest: Guest; sample: RoundSample }) => void;
  /**
   * Post-copy recovery: when the link breaks after switch-over, called (repeatedly, while it throws
   * CONNECTION_REFUSED / CONNECTION_LOST) for a new connection to the destination. Throwing anything else gives up.
   * Absent: a broken post-copy link fails the migration with POSTCOPY_LINK_LOST.
   */
  recover?: (cause: MigrationError, report: MigrationReport) => Promise<FrameConnection>;
  /**
   * Ownership after GO: one new connection to the destination (throws when it cannot be reached), for RECONCILE
   * after a fault between READY and RESUMED. Absent: such a fault is reported as OWNER_UNKNOWN at once.
   */
  redial?: () => Promise<FrameConnection>;
  /** The secret of RECOVER and RECONCILE (32 hex digits); drawn here when absent. */
  recoveryToken?: string;
  /** Called once, just before GO is sent: from here on cancel and --timeout no longer apply. */
  onHandOff?: () => void;
  /** The agent is stopping: even after GO, stop waiting (the report then says where the guest was left). */
  shutdown?: AbortSignal;
}

const STRATEGY_CODES = {
  cold: StrategyCode.COLD,
  precopy: StrategyCode.PRECOPY,
  postcopy: StrategyCode.POSTCOPY,
  hybrid: StrategyCode.HYBRID,
} as const;

const COMPRESS_ENCODING = {
  deflate: PageEncoding.DEFLATE,
  zstd: PageEncoding.ZSTD,
  lz4: PageEncoding.LZ4,
} as const;

const HANDSHAKE_TIMEOUT_MS = 15_000;
const SWITCHOVER_TIMEOUT_MS = 60_000;

export function newMigrationId(): string {
  return randomBytes(16).toString('hex');
}

/** Runs one outgoing migration to completion. Resolves with the final report; never leaves the guest paused on failure. */
export async function runSource(run: SourceRun): Promise<MigrationReport> {
  const s = new Source(run);
  return s.execute();
}

class Source {
  private readonly guest: Guest;
  private conn: FrameConnection;
  /** Secret shared with the destination in HELLO; a RECOVER or RECONCILE connection must present it. */
  private readonly recoveryToken: string;
  /** Bytes sent over connections that broke during post-copy (recovered). */
  private bytesBeforeRecovery = 0;
  private readonly o: MigrationOptions;
  private readonly r: MigrationReport;
  private readonly pageSize: number;
  private readonly pageCount: number;
  private readonly ledger: PageLedger;
  /** The XBZRLE cache: allocated during the handshake (allocateCache), undefined without XBZRLE. */
  private cache: PageCache | undefined;
  /** Bytes the cache starts with; 0 = no cache (XBZRLE off, or a budget below one set). */
  private readonly cacheBytesAtStart: number;
  private readonly compressor: Compressor | undefined;
  /** Copy of the page being encoded (never the live page, which a vCPU may be writing). */
  private scratch: Uint8Array;
  private builder!: PagesFrameBuilder;
  private pendingSends: Promise<void> = Promise.resolve();
  private readonly t0 = performance.now();
  private pausedAt = 0;
  private handedOff = false;
  private wasRunning: boolean;
  private capBefore: number;
  private throttle = 0;
  private throttleTriggers = 0;
  private readonly dirtyLimiter: DirtyLimiter;
  private lastProgressAt = performance.now();
  private bestDirty = Number.POSITIVE_INFINITY;
  private liveBytes = 0;
  private livePages = 0;
  private stepsAtStart = 0;
  private stepsAtStartTime = 0;
  private lastEmit = 0;
  private downtimeLimitMs: number;
  /** hot-last: consecutive syncs at which each page was dirty, and the round of its last dirty sync. */
  private readonly streak: Uint8Array;
  private readonly lastDirtyRound: Uint32Array;
  /** Views of the dirty log's bitmaps, to see whether a page was dirtied again before we send it. */
  private readonly dirtyWords: Int32Array[];
  private readonly blockPages: number;
  /** While true, pages already dirty again are skipped (they will be in the next sync). */
  private skipRedirtied = false;
  /**
   * Cache admission (dynamic sizing): the pages written before migration (dirty at its first sync), the write
   * counters then, and how many pages round 1 admitted. Undefined until pre-copy starts, or without admission.
   */
  private admission:
    | {
        warm: Uint8Array;
        countsAtStart: Uint32Array;
        admitted: number;
        /** Round 1's progress at which growth is checked next: every 1/64 of RAM (a count reads the whole log). */
        nextCheck: number;
        /** What the previous check wanted. */
        lastWanted: number;
        /** (pages written since migration start, fraction of round 1 sent) at recent growth checks. */
        samples: { writtenPages: number; progress: number }[];
      }
    | undefined;
  private readonly useAdmission: boolean;

  constructor(private readonly spec: SourceRun) {
    this.guest = spec.guest;
    this.conn = spec.conn;
    this.recoveryToken = spec.recoveryToken ?? randomBytes(16).toString('hex');
    this.o = spec.options;
    this.r = spec.report;
    this.pageSize = this.guest.ram.pageSize;
    this.pageCount = this.guest.ram.pageCount;
    this.ledger = new PageLedger(this.pageCount, this.pageSize);
    // Dynamic sizing starts small: the smallest cache here, the warm set when pre-copy starts (startAdmission), then
    // growth from what round 1 measures, with cache admission deciding which pages take a slot (policy.ts).
    this.useAdmission = this.o.xbzrle && this.o.cacheSizing === 'dynamic';
    const cacheBytes = this.useAdmission
      ? Math.min(this.cacheMinBytes(), this.o.xbzrleCacheMaxBytes)
      : this.o.xbzrleCacheBytes;
    // The cache's copies and the scratch copy of the page being encoded share one WebAssembly arena, so the
    // SIMD XBZRLE encoder reads both in place (docs/codecs.md): the scratch copy is the only copy per page.
    this.scratch = new Uint8Array(this.pageSize);
    this.cacheBytesAtStart = this.o.xbzrle && cacheBytes >= this.pageSize * this.o.cacheWays ? cacheBytes : 0;
    this.compressor =
      this.o.compress === 'deflate' || this.o.compress === 'zstd' || this.o.compress === 'lz4'
        ? compressor(this.o.compress)
        : undefined;
    this.wasRunning = this.guest.running;
    this.capBefore = this.guest.cap;
    this.dirtyLimiter = new DirtyLimiter(this.guest, this.o);
    this.downtimeLimitMs = this.o.downtimeLimitMs;
    this.streak = new Uint8Array(this.pageCount);
    this.lastDirtyRound = new Uint32Array(this.pageCount);
    this.dirtyWords = this.guest.dirtyLog.buffers.bitmaps.map((b) => new Int32Array(b));
    this.blockPages = this.guest.ram.blocks[0]!.pageCount;
    this.newBuilder(this.o.framePayloadBytes);
  }

  private newBuilder(maxPayload: number): void {
    this.builder = new PagesFrameBuilder(
      maxPayload,
      (frame, release) => {
        this.pendingSends = this.pendingSends.then(() => this.conn.send(frame, release));
        // Awaited at the next yield point; if the run fails first, the connection's error is reported there.
        this.pendingSends.catch(() => undefined);
      },
      this.pageSize,
    );
  }

  private elapsed(): number {
    return performance.now() - this.t0;
  }

  private event(text: string): void {
    this.r.events.push(`${(this.elapsed() / 1000).toFixed(3)}s ${text}`);
  }

  private checkAbort(): void {
    if (this.stopReason) throw this.stopReason;
    if (this.conn.error) throw this.conn.error;
  }

  /** Why the operator (cancel) or the clock (--timeout) stopped the migration, if they did. */
  private stopReason: MigrationError | undefined;

  /**
   * Cancel and timeout must work even while a send is blocked on a peer that stopped reading: they fail the
   * connection, which wakes every waiter. After GO the guest belongs to the destination and neither applies.
   */
  private stop(reason: MigrationError): void {
    if (this.handedOff || this.stopReason) return;
    this.stopReason = reason;
    void this.conn.sendErrorAndClose(reason);
  }

  private totalSteps(): number {
    let n = 0;
    for (const s of this.guest.steps()) n += s;
    return n;
  }

  private emit(force = false): void {
    const now = performance.now();
    if (!force && now - this.lastEmit < 100) return;
    this.lastEmit = now;
    this.r.totalTimeMs = this.elapsed();
    this.r.transferredBytes = this.bytesBeforeRecovery + this.conn.bytesSent;
    if (this.cache) {
      const st = this.cache.stats();
      this.r.xbzrle.cacheHits = st.hits;
      this.r.xbzrle.cacheMisses = st.misses;
    }
    this.spec.onProgress?.(this.r);
  }

  async execute(): Promise<MigrationReport> {
    const r = this.r;
    const onAbort = () => this.stop(new MigrationError('CANCELLED', 'migration cancelled by the operator'));
    if (this.spec.signal.aborted) onAbort();
    this.spec.signal.addEventListener('abort', onAbort);
    // The agent stopping ends even a handed-over migration's waits (the report says where the guest was left).
    const onShutdown = () => this.conn.destroy(new MigrationError('CANCELLED', 'the agent is shutting down'));
    this.spec.shutdown?.addEventListener('abort', onShutdown);
    const timer =
      this.o.timeoutMs > 0
        ? setTimeout(
            () =>
              this.stop(
                new MigrationError(
                  'TIMEOUT',
                  `migration did not finish within ${this.o.timeoutMs} ms (--timeout); the guest keeps running on the source`,
                ),
              ),
            this.o.timeoutMs,
          )
        : undefined;
    try {
      this.stepsAtStart = this.totalSteps();
      this.stepsAtStartTime = performance.now();
      await this.handshake();
      r.setupTimeMs = this.elapsed();
      r.status = 'active';
      this.event('setup done');
      if (this.o.strategy === 'cold') await this.cold();
      else if (this.o.strategy === 'postcopy') await this.postcopy(null);
      else await this.precopy();
      r.status = 'completed';
      r.phase = 'done';
    } catch (err) {
      const e =
        err instanceof MigrationError
          ? err
          : new MigrationError(
              'INTERNAL',
              `migration failed: ${err instanceof Error ? err.message : String(err)}`,
            );
      r.status = e.code === 'CANCELLED' ? 'cancelled' : 'failed';
      r.error = { code: e.code, message: e.message };
      this.event(`failed: ${e.code} ${e.message}`);
      if (!this.handedOff) {
        // Still authoritative: put the guest back as it was. The destination discards what it received.
        if (this.guest.cap !== this.capBefore) this.guest.setCap(this.capBefore);
        if (this.wasRunning && !this.guest.running) this.guest.resume();
        this.event(`guest ${this.spec.guestId} runs on the source`);
        // cancel / --timeout already sent ERROR (stop); the report does not wait for the peer to read it.
        if (!this.stopReason) void this.conn.sendErrorAndClose(e);
        // The destination may hold a verified copy (READY sent, our ERROR lost with the link): tell it to drop it,
        // in the background. It never resumes without GO, so this is tidiness, not safety.
        if (this.readyAsked && this.ownership && !e.context.remote) {
          void this.settle('abort', e).catch(() => undefined);
        }
      } else {
        this.conn.destroy(e);
        this.event(
          e.code === 'OWNER_UNKNOWN'
            ? `guest ${this.spec.guestId} left paused on the source, destination unknown`
            : `guest ${this.spec.guestId} handed over to the destination`,
        );
      }
    } finally {
      this.spec.signal.removeEventListener('abort', onAbort);
      this.spec.shutdown?.removeEventListener('abort', onShutdown);
      if (timer) clearTimeout(timer);
      if (this.pausedAt === 0) this.measureGuestRate();
      this.dirtyLimiter.finish(r);
      r.totalTimeMs = this.elapsed();
      r.transferredBytes = this.bytesBeforeRecovery + this.conn.bytesSent;
      r.throughputMbps = mbps(r.transferredBytes, r.totalTimeMs - r.setupTimeMs);
      if (this.cache) {
        const st = this.cache.stats();
        r.xbzrle.cacheHits = st.hits;
        r.xbzrle.cacheMisses = st.misses;
      }
      this.emit(true);
    }
    return r;
  }

  private measureGuestRate(): void {
    const dt = (performance.now() - this.stepsAtStartTime) / 1000;
    if (dt > 0) this.r.guest.stepsPerSecDuring = (this.totalSteps() - this.stepsAtStart) / dt;
    const before = this.r.guest.stepsPerSecBefore;
    this.r.guest.slowdown = before > 0 ? Math.max(0, 1 - this.r.guest.stepsPerSecDuring / before) : 0;
  }

  /** Allocates the XBZRLE cache (the cache's copies and the scratch copy of the page being encoded share one arena). */
  private allocateCache(): void {
    if (this.cacheBytesAtStart === 0 || this.cache) return;
    this.cache = new PageCache({
      bytes: this.cacheBytesAtStart,
      pageSize: this.pageSize,
      ways: this.o.cacheWays,
      allocate: (bytes) => {
        const arena = allocatePageArena(bytes + this.pageSize);
        this.scratch = arena.subarray(bytes, bytes + this.pageSize);
        return arena.subarray(0, bytes);
      },
    });
    this.r.xbzrle.cacheBytes = this.cache.capacityBytes;
  }

  private async handshake(): Promise<void> {
    const caps =
      (this.cacheBytesAtStart > 0 ? Capability.XBZRLE : 0) |
      (this.o.compress === 'rle' ? Capability.RLE : 0) |
      (this.o.compress === 'deflate' ? Capability.DEFLATE : 0) |
      (this.o.compress === 'zstd' ? Capability.ZSTD : 0) |
      (this.o.compress === 'lz4' ? Capability.LZ4 : 0) |
      Capability.FRAME_BINDING |
      (this.spec.redial ? Capability.OWNER_RECONCILE : 0) |
      (this.o.strategy === 'postcopy' ||
      this.o.strategy === 'hybrid' ||
      this.o.onNonConvergence === 'postcopy'
        ? Capability.POSTCOPY | (this.spec.recover ? Capability.POSTCOPY_RECOVER : 0)
        : 0);
    const blocks = this.guest.ram.blocks.map((b) => b.pageCount);
    this.conn.writeRaw(PREAMBLE);
    this.conn.bindFramesAfterReceiving(Command.HELLO_ACK, (p) => decodeHelloAck(p).nonce);
    const hello = this.conn.sendFrame(
      Command.HELLO,
      encodeHello({
        versionMin: MIN_PROTOCOL_VERSION,
        versionMax: PROTOCOL_VERSION,
        migrationId: this.r.id,
        strategy: STRATEGY_CODES[this.o.strategy],
        pageSize: this.pageSize,
        capabilities: caps,
        blocks,
        vcpus: this.guest.config.vcpus ?? 1,
        guest: {
          id: this.spec.guestId,
          config: this.guest.config,
          ...(caps & (Capability.POSTCOPY_RECOVER | Capability.OWNER_RECONCILE)
            ? { recoveryToken: this.recoveryToken }
            : {}),
          handoverTimeoutMs: this.o.handoverTimeoutMs,
          // A trace guest carries its recording (TRACE frames after HELLO_ACK, trace-transfer.ts).
          ...(this.guest.trace ? { trace: { bytes: this.guest.trace.length } } : {}),
        },
      }),
    );
    hello.catch(() => undefined); // awaited below, unless the allocation throws first
    // Allocating the cache (tens of MiB, and the garbage collection the allocation triggers: 5-80 ms here) overlaps
    // HELLO's round trip and the destination's checks instead of preceding them. One turn of the event loop first:
    // the send passes the rate limiter (an await) before it reaches the socket.
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.allocateCache();
    await hello;
    const ack = decodeHelloAck((await this.conn.expect(Command.HELLO_ACK, HANDSHAKE_TIMEOUT_MS)).payload);
    // Ownership reconcile is optional: without it a fault after GO is reported as OWNER_UNKNOWN.
    this.ownership = (ack.capabilities & Capability.OWNER_RECONCILE) !== 0;
    const required = caps & ~Capability.OWNER_RECONCILE;
    if ((ack.capabilities & required) !== required) {
      throw new MigrationError(
        'CAPABILITY',
        `the destination does not support every requested capability (asked 0x${caps.toString(16)}, got 0x${ack.capabilities.toString(16)})`,
      );
    }
    this.framesBound = ack.nonce !== undefined;
    if (ack.maxFrame < this.o.framePayloadBytes) this.newBuilder(ack.maxFrame);
    if (this.guest.trace) await sendTrace(this.conn, this.guest.trace);
  }

  /** The destination bound this migration's frames (FRAME_BINDING): a recovery connection binds its own too. */
  private framesBound = false;
  /** The destination granted OWNER_RECONCILE: after a fault at switch-over it answers RECONCILE. */
  private ownership = false;
  /** SWITCHOVER or POSTCOPY_START was sent: the destination may come to hold a verified copy. */
  private readyAsked = false;

  /** The source's side of the handover (GO … RESUMED) and of RECONCILE (ownership-source.ts). */
  private handover(): Handover {
    return {
      migrationId: this.r.id,
      token: this.recoveryToken,
      timeoutMs: this.o.handoverTimeoutMs,
      reconcileTimeoutMs: this.o.reconcileTimeoutMs,
      redial: this.ownership ? this.spec.redial : undefined,
      shutdown: this.spec.shutdown,
      event: (text) => this.event(text),
    };
  }

  /**
   * Settles who runs the guest after a fault between READY and RESUMED (or, with `abort`, tells a destination that
   * may hold a copy to drop it). Returns who owns the guest.
   */
  private settle(action: 'query' | 'abort', cause: MigrationError) {
    return reconcileOwnership(this.handover(), action, cause);
  }

  /**
   * GO, then RESUMED. A fault in between is settled over a new connection (RECONCILE): returns 'destination' when the
   * guest runs there; ownership back to the source (resumed here by execute) or unknown (left paused) throws.
   */
  private async go(action: 'query' | 'abort'): Promise<'destination' | 'source'> {
    // A cancel, a timeout or a dead link before this point keeps the guest here (no await until handedOff is set).
    this.checkAbort();
    this.handedOff = true;
    this.spec.onHandOff?.();
    try {
      await this.conn.sendFrame(Command.GO);
      await this.conn.expect(Command.RESUMED, this.o.handoverTimeoutMs);
      return 'destination';
    } catch (err) {
      const cause =
        err instanceof MigrationError ? err : new MigrationError('INTERNAL', `switch-over: ${String(err)}`);
      this.conn.destroy(cause);
      if (this.spec.shutdown?.aborted) throw this.ownerUnknown(cause, 'the agent is shutting down');
      this.event(`switch-over: ${cause.code} after GO (${cause.message}); settling who runs the guest`);
      const owner = await this.settle(action, cause);
      if (owner === 'destination') {
        this.event('reconciled: the guest runs on the destination');
        return 'destination';
      }
      if (owner === 'source') {
        // The destination never resumed it and dropped its copy: ownership is back here (execute resumes it).
        this.handedOff = false;
        this.event('reconciled: the destination dropped its copy; the guest resumes on the source');
        throw new MigrationError(
          cause.code,
          `${cause.message}; after GO the destination was asked (RECONCILE): it never resumed the guest and ` +
            'dropped its copy, so the guest runs on the source again',
          { ...cause.context, owner: 'source' },
        );
      }
      throw this.ownerUnknown(cause, 'the destination could not be reached');
    }
  }

  private ownerUnknown(cause: MigrationError, why: string): MigrationError {
    const dst = this.r.destination;
    const src = this.r.source || 'SOURCE';
    const g = this.spec.guestId;
    return new MigrationError(
      'OWNER_UNKNOWN',
      `paused on the source, destination unknown — resume with \`livemig migrate --reconcile ${this.r.id} --from ${src}\` ` +
        `once ${dst} answers (it resumes the guest where it belongs), or, only after checking that ${dst} does not ` +
        `run it (GET /v1/migrations/incoming/${this.r.id} there says discarded or unknown, or its host is gone), ` +
        `\`livemig guest resume --agent ${src} --guest ${g}\`. Cause: ${cause.code} after GO (${cause.message}); ${why}` +
        (this.ownership ? '' : '; the destination does not support RECONCILE'),
      { owner: 'unknown', cause: cause.code },
    );
  }

  // ------------------------------------------------------------------------------------------------------
  // Encoding one page

  /**
   * Encodes page `p` into the current PAGES frame. The live page is first copied to `scratch` so that a vCPU writing
   * it meanwhile cannot make the bytes sent, the XBZRLE cache and the ledger disagree (QEMU copies for the same
   * reason). `fresh` = the destination still holds zeros for this page (first round), so a zero page need not travel.
   */
  private encodePage(p: number, fresh: boolean, allowXbzrle: boolean): void {
    const r = this.r;
    if (this.skipRedirtied && this.isDirtyNow(p)) {
      // Written again since the sync that listed it: sending it now would be wasted, the next sync has it.
      r.pages.redirtied++;
      return;
    }
    const page = this.guest.ram.page(p);
    if (this.cache && allowXbzrle) {
      this.encodeWithCache(p, page, fresh);
      return;
    }
    if (this.cache) this.cache.invalidate(p);
    if (this.o.compress === 'none') {
      // Fast path: copy the live page straight into the frame, then judge the copy (never the live page, which a
      // vCPU may be writing).
      const out = this.builder.reserve(this.pageSize);
      out.set(page);
      if (isZeroPage(out)) {
        this.zeroPage(p, fresh);
        return;
      }
      if (this.o.verify === 'none') {
        this.builder.commit(p, PageEncoding.RAW, this.pageSize);
      } else {
        // One CRC pass serves the ledger and the frame's trailer.
        const crc = pageCrc(out);
        this.ledger.set(p, crc);
        this.builder.commit(p, PageEncoding.RAW, this.pageSize, crc);
      }
      r.pages.raw++;
      return;
    }
    const scratch = this.scratch;
    scratch.set(page);
    if (isZeroPage(scratch)) {
      this.zeroPage(p, fresh);
      return;
    }
    let crc: number | undefined;
    if (this.o.verify !== 'none') {
      crc = pageCrc(scratch);
      this.ledger.set(p, crc);
    }
    this.sendWhole(p, scratch, crc);
  }

  private zeroPage(p: number, fresh: boolean): void {
    this.r.pages.zero++;
    this.ledger.setZero(p);
    if (fresh) return;
    this.builder.reserve(0);
    this.builder.commit(p, PageEncoding.ZERO, 0);
  }

  /** XBZRLE path: a delta against the cached copy on a hit, the whole page (and a cache insert) on a miss. */
  private encodeWithCache(p: number, page: Uint8Array, fresh: boolean): void {
    const r = this.r;
    const cache = this.cache!;
    const scratch = this.scratch;
    scratch.set(page);
    if (isZeroPage(scratch)) {
      cache.invalidate(p);
      this.zeroPage(p, fresh);
      return;
    }
    const crc = this.o.verify === 'none' ? undefined : pageCrc(scratch);
    const slot = cache.lookup(p);
    if (slot >= 0) {
      const out = this.builder.reserve(this.pageSize);
      const len = encodeXbzrleInto(cache.slotView(slot), scratch, out, this.pageSize);
      if (len === 0) {
        // Dirty but identical to what the destination holds: nothing to send (QEMU skips these too).
        r.pages.skipped++;
        return;
      }
      cache.update(slot, scratch);
      if (crc !== undefined) this.ledger.set(p, crc);
      if (len > 0) {
        this.builder.commit(p, PageEncoding.XBZRLE, len);
        r.pages.xbzrle++;
        r.xbzrle.encodedBytes += len;
        r.xbzrle.pageBytes += this.pageSize;
        return;
      }
      r.xbzrle.overflows++;
      this.sendWhole(p, scratch, crc);
      return;
    }
    // A miss: no copy of p is cached, so sending it uncached keeps the cache = what the destination holds.
    const a = this.admission;
    const admit = a === undefined || this.admits(p, a);
    cache.insert(p, scratch, admit);
    if (crc !== undefined) this.ledger.set(p, crc);
    this.sendWhole(p, scratch, crc);
    // Round 1 with admission: the cache grows with what is measured (after the send: a resize moves scratch).
    if (a !== undefined && fresh) {
      if (admit) a.admitted++;
      const progress = this.round1Progress();
      if (progress >= a.nextCheck) {
        a.nextCheck = progress + 1 / 64;
        this.growAdmitted(a, progress);
      }
    }
  }

  /** Fraction of round 1's pages handled so far, zero pages (skipped in runs) included. */
  private round1Progress(): number {
    const pg = this.r.pages;
    return (pg.zero + pg.raw + pg.rle + pg.compressed + pg.redirtied) / this.pageCount;
  }

  private growAdmitted(a: NonNullable<Source['admission']>, progress: number): void {
    const cache = this.cache!;
    const writtenPages = this.guest.dirtyLog.count();
    // The earliest check at least an eighth of the round back: the rate of new written pages over that span.
    const samples = a.samples;
    while (samples.length > 1 && samples[1]!.progress <= progress - 0.125) samples.shift();
    const earlier = samples[0] ?? { writtenPages: 0, progress: 0 };
    samples.push({ writtenPages, progress });
    const wanted = admittedCacheGrowth(
      cache.capacityBytes,
      { admittedPages: a.admitted, writtenPages, progress, earlier },
      { pageSize: this.pageSize, maxBytes: this.o.xbzrleCacheMaxBytes },
    );
    // Grow only when two checks in a row want it (to the smaller of the two): a send stall lets the guest write more
    // pages per page sent for a moment, and growth is never undone within the round.
    const next = Math.min(wanted, a.lastWanted);
    a.lastWanted = wanted;
    if (next > cache.capacityBytes) {
      this.setCacheSize(
        next,
        `${a.admitted} pages admitted, ${writtenPages} written at ${(progress * 100).toFixed(0)}% of round 1`,
      );
    }
  }

  private admits(p: number, a: { warm: Uint8Array; countsAtStart: Uint32Array }): boolean {
    return admitToCache({
      warm: a.warm[p] === 1,
      writtenSince: this.guest.dirtyLog.writeCounts()[p]! - a.countsAtStart[p]!,
      dirtyNow: this.isDirtyNow(p),
    });
  }

  /**
   * Admission starts with pre-copy: `warm` = the pages the first sync returned (written in the window before
   * migration). The cache grows from its smallest size to the warm set with a margin.
   */
  private startAdmission(warm: Uint32Array): void {
    if (!this.useAdmission || !this.cache) return;
    const flags = new Uint8Array(this.pageCount);
    for (const p of warm) flags[p] = 1;
    this.admission = {
      warm: flags,
      countsAtStart: this.guest.dirtyLog.writeCounts().slice(),
      admitted: 0,
      nextCheck: 0,
      lastWanted: 0,
      samples: [{ writtenPages: 0, progress: 0 }],
    };
    const size = initialAdmittedCacheSize({
      pageSize: this.pageSize,
      warmPages: warm.length,
      minBytes: this.cacheMinBytes(),
      maxBytes: this.o.xbzrleCacheMaxBytes,
    });
    this.setCacheSize(size, `${warm.length} pages written before migration`);
  }

  private cacheMinBytes(): number {
    return this.pageSize * 64 * this.o.cacheWays;
  }

  /** Resizes the cache, recording the resize and the peak. */
  private setCacheSize(bytes: number, why: string): void {
    const cache = this.cache!;
    const before = cache.capacityBytes;
    cache.resize(bytes);
    if (cache.capacityBytes !== before) {
      this.r.xbzrle.cacheBytes = cache.capacityBytes;
      this.r.xbzrle.cacheResizes.push({ round: this.r.rounds, bytes: cache.capacityBytes });
      this.event(`XBZRLE cache resized ${before} → ${cache.capacityBytes} bytes (${why})`);
    }
    this.r.xbzrle.cacheBytesPeak = Math.max(this.r.xbzrle.cacheBytesPeak, cache.capacityBytes);
  }

  /** Sends the page without a previous copy: raw, RLE or through the generic compressor, whichever is smaller. */
  private sendWhole(p: number, data: Uint8Array, crc?: number): void {
    const r = this.r;
    if (this.o.compress === 'rle') {
      const out = this.builder.reserve(this.pageSize);
      const len = encodeRleInto(data, out, this.pageSize - 1);
      if (len > 0) {
        this.builder.commit(p, PageEncoding.RLE, len);
        r.pages.rle++;
        return;
      }
    } else if (this.compressor) {
      const c = this.compressor.compress(data);
      if (c.length < this.pageSize) {
        this.builder.reserve(c.length).set(c);
        this.builder.commit(p, COMPRESS_ENCODING[this.compressor.name], c.length);
        r.pages.compressed++;
        return;
      }
    }
    this.builder.reserve(this.pageSize).set(data);
    this.builder.commit(p, PageEncoding.RAW, this.pageSize, crc);
    r.pages.raw++;
  }

  /** Sends the given pages (ascending), yielding to the socket as frames fill. */
  private async sendPages(pages: ArrayLike<number>, fresh: boolean, allowXbzrle: boolean): Promise<void> {
    const run = ZERO_RUN_PAGES;
    for (let i = 0; i < pages.length; i++) {
      const p = pages[i]!;
      // First round: skip runs of untouched (zero) pages with one native compare per run. The check reads the
      // live pages; a vCPU that writes one afterwards sets its dirty bit, so it is sent in the next round.
      if (
        fresh &&
        (p & (run - 1)) === 0 &&
        i + run <= pages.length &&
        pages[i + run - 1] === p + run - 1 &&
        this.zeroRun(p)
      ) {
        this.r.pages.zero += run;
        if (this.cache) for (let q = p; q < p + run; q++) this.cache.invalidate(q);
        i += run - 1;
        continue;
      }
      this.encodePage(p, fresh, allowXbzrle);
      if ((i & 255) === 255) {
        this.checkAbort();
        await this.pendingSends;
        this.emit();
      }
    }
    this.builder.finishFrame();
    await this.pendingSends;
  }

  /** True when the ZERO_RUN_PAGES pages from `p` (aligned, inside one RAM block) are all zero. */
  private zeroRun(p: number): boolean {
    const ram = this.guest.ram;
    const b = Math.floor(p / ram.pagesPerBlock);
    if (Math.floor((p + ZERO_RUN_PAGES - 1) / ram.pagesPerBlock) !== b) return false;
    const block = ram.blocks[b]!;
    const bytes = ZERO_RUN_PAGES * this.pageSize;
    const offset = (p - block.firstPage) * this.pageSize;
    if (this.zeroRunBuffer.length !== bytes) this.zeroRunBuffer = new Uint8Array(bytes);
    return Buffer.compare(new Uint8Array(block.buffer, offset, bytes), this.zeroRunBuffer) === 0;
  }
  private zeroRunBuffer = new Uint8Array(0);

  private isDirtyNow(p: number): boolean {
    const b = Math.floor(p / this.blockPages);
    const i = p - b * this.blockPages;
    return (this.dirtyWords[b]![i >>> 5]! & (1 << (i & 31))) !== 0;
  }

  private allPages(): Uint32Array {
    const pages = new Uint32Array(this.pageCount);
    for (let i = 0; i < pages.length; i++) pages[i] = i;
    return pages;
  }

  /** Orders a round's pages: address order, or (hot-last) least-written first so hot pages go as late as possible. */
  private order(pages: Uint32Array): Uint32Array {
    if (this.o.pageOrder !== 'hot-last') return pages;
    const counts = this.guest.dirtyLog.writeCounts();
    // Never-written pages keep address order and go first; the rest are sorted by write count.
    const cold: number[] = [];
    const warm: number[] = [];
    for (const p of pages) (counts[p] === 0 ? cold : warm).push(p);
    warm.sort((a, b) => counts[a]! - counts[b]! || a - b);
    const out = new Uint32Array(pages.length);
    out.set(cold);
    out.set(warm, cold.length);
    return out;
  }

  /**
   * After a sync: updates each page's dirty streak and, with hot-last, holds back the pages dirty at `hotStreak`
   * syncs in a row (they go in the stop-and-copy). Returns the pages to send next and those held back.
   */
  private afterSync(
    round: number,
    dirty: Uint32Array,
  ): { send: Uint32Array; held: Uint32Array; hot: number } {
    let hot = 0;
    const hotLast = this.o.pageOrder === 'hot-last';
    const send: number[] = [];
    const held: number[] = [];
    for (const p of dirty) {
      const s = this.lastDirtyRound[p] === round - 1 && round > 1 ? Math.min(255, this.streak[p]! + 1) : 1;
      this.streak[p] = s;
      this.lastDirtyRound[p] = round;
      if (s >= 2) hot++;
      if (hotLast && s >= this.o.hotStreak) held.push(p);
      else send.push(p);
    }
    return { send: hotLast ? Uint32Array.from(send) : dirty, held: Uint32Array.from(held), hot };
  }

  /** Dynamic XBZRLE cache sizing between rounds. */
  private resizeCache(
    sample: { hits: number; misses: number; pageBytes: number; encoded: number; overflows: number },
    hot: number,
    dirty: number,
  ): void {
    if (!this.cache || this.o.cacheSizing !== 'dynamic') return;
    const next = nextCacheSize(
      this.cache.capacityBytes,
      {
        hits: sample.hits,
        misses: sample.misses,
        xbzrlePageBytes: sample.pageBytes,
        xbzrleEncodedBytes: sample.encoded,
        overflows: sample.overflows,
        hotPages: hot,
        dirtyPages: dirty,
      },
      {
        pageSize: this.pageSize,
        minBytes: this.cacheMinBytes(),
        maxBytes: this.o.xbzrleCacheMaxBytes,
      },
    );
    this.setCacheSize(next, 'between rounds');
  }

  // ------------------------------------------------------------------------------------------------------
  // Strategies

  private async pause(): Promise<void> {
    this.measureGuestRate();
    this.pausedAt = performance.now();
    if (this.guest.running) await this.guest.pause();
    this.event('guest paused');
  }

  private async cold(): Promise<void> {
    this.r.phase = 'stop-and-copy';
    this.r.guest.stepsPerSecBefore = await this.sampleRate();
    await this.pause();
    this.guest.dirtyLog.sync();
    await this.sendPages(this.allPages(), true, false);
    this.r.rounds = 1;
    this.r.switchoverReason = 'cold';
    await this.switchover();
  }

  /** Steps per second of the guest over a short window, before migration starts loading the host. */
  private async sampleRate(): Promise<number> {
    if (!this.guest.running) return 0;
    const a = this.totalSteps();
    const t = performance.now();
    await new Promise((res) => setTimeout(res, 100));
    const dt = (performance.now() - t) / 1000;
    return (this.totalSteps() - a) / dt;
  }

  private async precopy(): Promise<void> {
    const r = this.r;
    r.phase = 'precopy';
    r.guest.stepsPerSecBefore = await this.sampleRate();
    this.stepsAtStart = this.totalSteps();
    this.stepsAtStartTime = performance.now();
    const log = this.guest.dirtyLog;
    // Start tracking from here (round 1 sends everything anyway); what was written before feeds cache admission.
    this.startAdmission(log.sync());
    let pages = this.allPages();
    let held: Uint32Array = new Uint32Array(0);
    const samples: RoundSample[] = [];
    let stallReported = false;
    let divergenceReported = false;
    for (let round = 1; ; round++) {
      this.checkAbort();
      const t = performance.now();
      const sentBefore = this.conn.bytesSent;
      const cacheBefore = this.cacheCounters();
      // hot-last only: a page written again since the sync that listed it waits for the next round.
      this.skipRedirtied = this.o.pageOrder === 'hot-last';
      const redirtiedBefore = r.pages.redirtied;
      await this.sendPages(this.order(pages), round === 1, true);
      this.skipRedirtied = false;
      const bytes = this.conn.bytesSent - sentBefore;
      const synced = log.sync();
      const durationMs = performance.now() - t;
      const next = this.afterSync(round, synced);
      // Held-back hot pages stay owed: they count in the remaining work and go at the latest at stop-and-copy.
      held = mergeSorted(held, next.held);
      const dirty = next.send;
      const owed = dirty.length + held.length;
      const pagesSent = pages.length - (r.pages.redirtied - redirtiedBefore);
      await this.conn.sendFrame(Command.ROUND, encodeRound({ round, pagesSent, dirtyPages: owed }));
      const sample: RoundSample = { round, pagesSent, bytesSent: bytes, durationMs, dirtyPages: owed };
      samples.push(sample);
      this.recordRound(sample);
      const cacheAfter = this.cacheCounters();
      this.resizeCache(
        {
          hits: cacheAfter.hits - cacheBefore.hits,
          misses: cacheAfter.misses - cacheBefore.misses,
          pageBytes: cacheAfter.pageBytes - cacheBefore.pageBytes,
          encoded: cacheAfter.encoded - cacheBefore.encoded,
          overflows: cacheAfter.overflows - cacheBefore.overflows,
        },
        next.hot,
        synced.length,
      );
      const state = this.convergenceState(samples);
      const expected = expectedDowntimeMs(owed, state.bytesPerPage, state.bandwidth);
      r.expectedDowntimeMs = expected;
      r.perRound[r.perRound.length - 1]!.expectedDowntimeMs = expected;
      r.perRound[r.perRound.length - 1]!.heldPages = held.length;
      if (!divergenceReported && isNotConverging(samples, this.o.nonConvergenceRounds)) {
        divergenceReported = true;
        this.event(
          `not converging: the guest dirtied pages as fast as they were sent for ${this.o.nonConvergenceRounds} rounds (action: ${this.o.onNonConvergence})`,
        );
      }
      if (!stallReported && isStalled(samples, this.o.stallRounds)) {
        stallReported = true;
        r.stalled = true;
        this.event(`stalled: no progress for ${this.o.stallRounds} rounds (action: ${this.o.onStall})`);
      }
      const decision = decideAfterRound(state, { ...this.o, downtimeLimitMs: this.downtimeLimitMs });
      this.emit(true);
      if (decision.action === 'switchover') {
        r.switchoverReason = decision.reason;
        this.event(`switch-over: ${decision.reason} (expected downtime ${expected.toFixed(1)} ms)`);
        await this.pause();
        r.phase = 'stop-and-copy';
        // --max-bandwidth spares the network while the guest runs; with the guest paused every millisecond is
        // downtime, so the last pages go unlimited (QEMU: migration_completion_precopy sets RATE_LIMIT_DISABLED).
        this.conn.pacer = undefined;
        const last = log.sync();
        const lastPages = mergeSorted(mergeSorted(dirty, held), last);
        r.dirtyPages = lastPages.length;
        await this.sendPages(lastPages, false, true);
        await this.switchover();
        return;
      }
      if (decision.action === 'postcopy') {
        r.switchoverReason = `postcopy: ${decision.reason}`;
        this.event(`switching to post-copy: ${decision.reason}`);
        await this.pause();
        const last = log.sync();
        await this.postcopy(mergeSorted(mergeSorted(dirty, held), last));
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
      this.spec.onRound?.({ report: r, guest: this.guest, sample });
      pages = dirty;
    }
  }

  private cacheCounters(): {
    hits: number;
    misses: number;
    pageBytes: number;
    encoded: number;
    overflows: number;
  } {
    const st = this.cache?.stats();
    return {
      hits: st?.hits ?? 0,
      misses: st?.misses ?? 0,
      pageBytes: this.r.xbzrle.pageBytes,
      encoded: this.r.xbzrle.encodedBytes,
      overflows: this.r.xbzrle.overflows,
    };
  }

  private recordRound(s: RoundSample): void {
    const r = this.r;
    r.rounds = s.round;
    r.dirtyPages = s.dirtyPages;
    r.remainingBytes = s.dirtyPages * this.pageSize;
    r.dirtyRatePagesPerSec = s.durationMs > 0 ? (s.dirtyPages * 1000) / s.durationMs : 0;
    r.perRound.push({
      round: s.round,
      pagesSent: s.pagesSent,
      bytes: s.bytesSent,
      dirtyPages: s.dirtyPages,
      durationMs: s.durationMs,
      throughputMbps: mbps(s.bytesSent, s.durationMs),
      expectedDowntimeMs: 0,
      throttle: this.throttle,
      heldPages: 0,
    });
    if (s.round > 1) {
      this.liveBytes += s.bytesSent;
      this.livePages += s.pagesSent;
    }
    if (s.dirtyPages < this.bestDirty) {
      this.bestDirty = s.dirtyPages;
      this.lastProgressAt = performance.now();
    }
  }

  private convergenceState(samples: RoundSample[]): ConvergenceState {
    let bytes = 0;
    let ms = 0;
    // Bandwidth from what was really sent in the last rounds (round 1 alone at the start).
    for (const s of samples.slice(-3)) {
      bytes += s.bytesSent;
      ms += s.durationMs;
    }
    const bandwidth = ms > 0 ? (bytes * 1000) / ms : 0;
    // Wire bytes per dirty page: measured on resent pages once there are some, else a full page.
    const bytesPerPage = this.livePages > 0 ? Math.max(64, this.liveBytes / this.livePages) : this.pageSize;
    return {
      rounds: samples,
      bandwidth: this.o.maxBandwidth > 0 ? Math.min(bandwidth, this.o.maxBandwidth) : bandwidth,
      bytesPerPage,
      pageSize: this.pageSize,
      throttle: this.throttle,
      throttleTriggers: this.throttleTriggers,
      downtimeLimitMs: this.downtimeLimitMs,
      elapsedMs: this.elapsed(),
      msSinceProgress: performance.now() - this.lastProgressAt,
    };
  }

  /** Auto-converge and "double the downtime on stall" act between rounds. */
  private adjustAfterRound(sample: RoundSample, samples: RoundSample[]): void {
    const o = this.o;
    const autoConverge =
      o.autoConverge || o.onNonConvergence === 'auto-converge' || o.onStall === 'auto-converge';
    if (autoConverge) {
      const step = autoConvergeStep(sample, this.pageSize, this.throttle, this.throttleTriggers, o);
      this.throttleTriggers = step.triggers;
      if (step.throttle !== this.throttle) {
        this.throttle = step.throttle;
        const cap = throttleToCap(this.throttle);
        this.guest.setCap(cap);
        this.r.cap.push({ atMs: this.elapsed(), cap, throttle: this.throttle, reason: 'auto-converge' });
        this.event(`auto-converge: throttle ${this.throttle}% (CAP ${cap})`);
      }
    }
    const limited = this.dirtyLimiter.afterRound(sample, this.pageSize, this.elapsed());
    if (limited) this.event(limited);
    if (o.onStall === 'double-downtime' && samples.length >= 2) {
      const prev = samples[samples.length - 2]!;
      if (sample.round > 1 && sample.dirtyPages >= prev.dirtyPages) {
        this.downtimeLimitMs *= 2;
        this.event(
          `no progress in round ${sample.round}: downtime limit doubled to ${this.downtimeLimitMs} ms`,
        );
      }
    }
  }

  /** Sends vCPU state and the digest; waits for READY, sends GO, waits for RESUMED. */
  private async switchover(): Promise<void> {
    const r = this.r;
    r.phase = 'switchover';
    const state = this.guest.state();
    await this.conn.sendFrame(Command.VCPU_STATE, encodeJson(state));
    const digest = this.digest(state);
    await this.conn.sendFrame(Command.SWITCHOVER, encodeDigest(digest));
    this.event('switch-over: last pages, vCPU state and digest sent');
    this.readyAsked = true;
    await this.conn.expect(Command.READY, SWITCHOVER_TIMEOUT_MS);
    this.event('switch-over: the destination verified the digest (READY)');
    // From GO on, the source never resumes the guest unless the destination says it dropped its copy.
    await this.go('query');
    r.downtimeMs = performance.now() - this.pausedAt;
    r.verified = digest.method !== 'none';
    r.remainingBytes = 0;
    this.event(`guest resumed on the destination; downtime ${r.downtimeMs.toFixed(1)} ms`);
    if (!this.conn.closed) this.conn.socket.end();
  }

  private digest(state: unknown): Digest {
    const method = this.o.verify;
    const ram =
      method === 'full'
        ? fullRamDigest(this.pageCount, (i) => this.guest.ram.page(i))
        : method === 'ledger'
          ? this.ledger.digest()
          : '0000000000000000';
    return { method, ram, vcpu: vcpuDigest(state) };
  }

  /**
   * Post-copy: hand the guest over now and push its pages behind it. `stale` = pages dirtied since they were last
   * sent (hybrid), or null when nothing was sent before (pure post-copy).
   */
  private async postcopy(stale: Uint32Array | null): Promise<void> {
    const r = this.r;
    if (this.pausedAt === 0) {
      r.guest.stepsPerSecBefore = await this.sampleRate();
      await this.pause();
    }
    r.phase = 'switchover';
    this.guest.dirtyLog.sync();
    // Pages valid at the destination: everything sent in pre-copy and not dirtied since.
    const valid = new Uint8Array(Math.ceil(this.pageCount / 8));
    const needed = new Uint8Array(this.pageCount);
    if (stale) {
      valid.fill(0xff);
      for (let i = this.pageCount; i < valid.length * 8; i++) valid[i >> 3]! &= ~(1 << (i & 7));
      for (const p of stale) {
        valid[p >> 3]! &= ~(1 << (p & 7));
        needed[p] = 1;
      }
    } else {
      needed.fill(1);
    }
    const state = this.guest.state();
    await this.conn.sendFrame(Command.VCPU_STATE, encodeJson(state));
    await this.conn.sendFrame(Command.POSTCOPY_START, encodePostcopyStart(valid));
    this.readyAsked = true;
    await this.conn.expect(Command.READY, SWITCHOVER_TIMEOUT_MS);
    // A fault before RESUMED: a destination that holds the guest is told to drop it (it lacks pages and never ran:
    // the source takes it back); one that resumed it waits in postcopy-paused, and recovery below reconnects.
    await this.go('abort');
    // The handover's link broke but the guest resumed there: recover before pushing.
    let lostAtHandover = this.conn.closed ? this.conn.error : undefined;
    r.downtimeMs = performance.now() - this.pausedAt;
    r.status = 'postcopy-active';
    r.phase = 'postcopy';
    this.event(`post-copy: guest running on the destination after ${r.downtimeMs.toFixed(1)} ms`);

    // Requests from the destination's faults jump the queue; everything else is pushed in address order.
    const requests: number[] = [];
    let wake: (() => void) | undefined;
    let completeFrame: Buffer | undefined;
    let remoteError: MigrationError | undefined;
    const listen = (): void => {
      this.conn.onFrame = (f) => {
        if (f.command === Command.PAGE_REQUEST) {
          for (const p of decodePageRequest(f.payload, this.pageCount)) requests.push(p);
        } else if (f.command === Command.COMPLETE) {
          completeFrame = f.payload;
        } else if (f.command === Command.ERROR) {
          remoteError = new MigrationError(
            'POSTCOPY_LINK_LOST',
            `destination reported an error during post-copy`,
          );
        }
        wake?.();
      };
    };
    listen();
    let remaining = 0;
    for (let i = 0; i < this.pageCount; i++) remaining += needed[i]!;
    let next = 0;
    const push = async (): Promise<void> => {
      // Small frames keep a faulting vCPU's page from queueing behind megabytes of pushed pages.
      await this.pendingSends;
      this.newBuilder(64 * 1024);
      this.conn.queueLimit = 256 * 1024;
      r.remainingBytes = remaining * this.pageSize;
      let sinceYield = 0;
      while (remaining > 0) {
        if (remoteError) throw remoteError;
        if (this.conn.error) throw this.conn.error;
        let p = -1;
        let requested = false;
        while (requests.length > 0) {
          const q = requests.shift()!;
          if (needed[q]) {
            p = q;
            requested = true;
            break;
          }
        }
        if (p < 0) {
          while (next < this.pageCount && !needed[next]) next++;
          p = next;
        }
        needed[p] = 0;
        remaining--;
        this.encodePage(p, false, false);
        if (requested) {
          r.postcopy.requestedPages++;
          this.builder.finishFrame();
        } else r.postcopy.pushedPages++;
        if (++sinceYield >= 64 || requested) {
          sinceYield = 0;
          if (this.builder.entries > 0 && requests.length > 0) this.builder.finishFrame();
          await this.pendingSends;
          r.remainingBytes = remaining * this.pageSize;
          this.emit();
        }
      }
      this.builder.finishFrame();
      await this.pendingSends;
    };
    const applyPresent = (present: Uint8Array): void => {
      remaining = 0;
      for (let p = 0; p < this.pageCount; p++) {
        needed[p] = present[p >> 3]! & (1 << (p & 7)) ? 0 : 1;
        remaining += needed[p]!;
      }
      next = 0;
      requests.length = 0;
      listen();
    };
    try {
      let digest: Digest;
      for (;;) {
        try {
          if (lostAtHandover) {
            const lost = lostAtHandover;
            lostAtHandover = undefined;
            if (!this.spec.recover) throw this.postcopyLinkLost(lost);
            applyPresent(await this.recoverLink(lost));
          }
          await push();
          digest = this.digest(state);
          await this.conn.sendFrame(Command.POSTCOPY_END, encodeDigest(digest));
          // Wait for COMPLETE (the destination verified the ledger of what it received).
          const deadline = performance.now() + SWITCHOVER_TIMEOUT_MS;
          while (!completeFrame) {
            if (remoteError) throw remoteError;
            if (this.conn.error) throw this.conn.error;
            if (performance.now() > deadline)
              throw new MigrationError('TIMEOUT', 'no COMPLETE from the destination');
            await new Promise<void>((res) => {
              wake = res;
              setTimeout(res, 50);
            });
          }
          break;
        } catch (err) {
          // Only a broken link is recovered; an error the destination reported, or our own, is final.
          const lost = this.conn.error;
          if (remoteError || !lost || lost.code === 'CANCELLED') throw err;
          if (!this.spec.recover) throw this.postcopyLinkLost(lost);
          applyPresent(await this.recoverLink(lost));
        }
      }
      const body = decodeJson(completeFrame, 'COMPLETE') as {
        verified?: boolean;
        faults?: number;
        faultLatencyMs?: number[];
      };
      const lat = (body.faultLatencyMs ?? []).slice().sort((a, b) => a - b);
      r.postcopy.faults = body.faults ?? r.postcopy.faults;
      r.postcopy.faultLatencyMs = {
        p50: percentile(lat, 50),
        p99: percentile(lat, 99),
        max: lat.length > 0 ? lat[lat.length - 1]! : 0,
      };
      r.verified = body.verified === true && digest.method !== 'none';
      r.remainingBytes = 0;
      this.event('post-copy complete');
      this.conn.socket.end();
    } finally {
      this.conn.onFrame = undefined;
    }
  }

  /**
   * The post-copy link broke: both sides keep their state (the guest runs on the destination and waits on faults;
   * only this source holds the missing pages). Get a new connection from `recover`, present the migration's token,
   * and learn which pages the destination holds. Returns that bitmap.
   */
  private async recoverLink(cause: MigrationError): Promise<Uint8Array> {
    const r = this.r;
    const pausedAt = performance.now();
    const bytesBefore = this.conn.bytesSent;
    this.conn.destroy(cause);
    r.status = 'postcopy-paused';
    this.event(`post-copy paused: ${cause.message}`);
    this.emit(true);
    try {
      for (;;) {
        const conn = await this.spec.recover!(cause, r);
        r.status = 'postcopy-recover';
        this.emit(true);
        try {
          conn.writeRaw(PREAMBLE);
          if (this.framesBound) {
            conn.bindFramesAfterReceiving(
              Command.RECOVER_ACK,
              (p) => decodeRecoverAck(p, this.pageCount, true).nonce,
            );
          }
          await conn.sendFrame(
            Command.RECOVER,
            encodeRecover({ migrationId: r.id, token: this.recoveryToken }),
          );
          const ack = await conn.expect(Command.RECOVER_ACK, HANDSHAKE_TIMEOUT_MS);
          const { present } = decodeRecoverAck(ack.payload, this.pageCount, this.framesBound);
          // The bytes of every connection count towards the report.
          this.bytesBeforeRecovery += bytesBefore;
          this.conn = conn;
          this.pendingSends = Promise.resolve();
          r.postcopy.recoveries = (r.postcopy.recoveries ?? 0) + 1;
          r.status = 'postcopy-active';
          this.event(`post-copy resumed over a new connection (recovery ${r.postcopy.recoveries})`);
          return present;
        } catch (err) {
          // The destination refused (it does not know this migration) or the new link broke too.
          conn.destroy();
          if (err instanceof MigrationError && err.code === 'RECOVER_REFUSED') throw err;
          cause = err instanceof MigrationError ? err : cause;
          r.status = 'postcopy-paused';
          this.emit(true);
        }
      }
    } finally {
      r.postcopy.pausedMs = (r.postcopy.pausedMs ?? 0) + (performance.now() - pausedAt);
    }
  }

  private postcopyLinkLost(cause: MigrationError): MigrationError {
    return new MigrationError(
      'POSTCOPY_LINK_LOST',
      'the link broke during post-copy, after switch-over: the guest now runs on the destination and waits there ' +
        'for pages only this source holds. It cannot be resumed on the source. Keep this source agent running; ' +
        `the migration cannot be completed by this version without recovery (cause: ${cause.message})`,
      { cause: cause.code },
    );
  }
}

/** Pages checked at once for zero in the first round (a power of two). */
const ZERO_RUN_PAGES = 32;

/** Union of two ascending page lists, ascending, without duplicates. */
export function mergeSorted(a: Uint32Array, b: Uint32Array): Uint32Array {
  const out = new Uint32Array(a.length + b.length);
  let i = 0;
  let j = 0;
  let n = 0;
  while (i < a.length || j < b.length) {
    const x = i < a.length ? a[i]! : Number.POSITIVE_INFINITY;
    const y = j < b.length ? b[j]! : Number.POSITIVE_INFINITY;
    const v = Math.min(x, y);
    if (x === v) i++;
    if (y === v) j++;
    if (n === 0 || out[n - 1] !== v) out[n++] = v;
  }
  return out.subarray(0, n);
}
