/**
 * The migration destination: accepts one incoming migration on a connection, rebuilds the guest's RAM from page
 * frames, verifies the digest, and resumes the guest only after the source said GO. Anything that goes wrong
 * before GO discards the incoming guest; the source still has it.
 */

import { timingSafeEqual } from 'node:crypto';
import { type Compressor, type CompressorName, compressor } from '../codec/index.js';
import { asMigrationError, CodecError, MigrationError } from '../errors.js';
import { Guest, type GuestConfig, type GuestState } from '../guest/index.js';
import { openPausedWindow, type PausedWindow, yieldCore } from '../paused-window.js';
import { holdSwitchoverPriority, type PriorityHold } from '../switchover-priority.js';
import type { FrameConnection } from './connection.js';
import { Crc32cShifter } from './crc.js';
import { answerApplied } from './destination-applied.js';
import { SwitchoverClock } from './destination-times.js';
import { fullRamDigest, PageLedger, pageCrc, vcpuDigest } from './ledger.js';
import { MultifdSink } from './multifd/channel-sink.js';
import type { ChannelRegistry } from './multifd/registry.js';
import type { OwnershipHandle, OwnershipRegistry } from './ownership.js';
import { decodePageInto } from './page-decode.js';
import { PageSink, type PageSinkPool } from './page-sink.js';
import { type WarmTarget, warmPausedApply, warmTarget } from './paused-apply-warm.js';
import { markValidPages, warmPostcopyStart } from './postcopy-warm.js';
import type { PreemptEndpoint, PreemptRegistry } from './preempt.js';
import {
  Capability,
  Command,
  DEFAULT_MAX_FRAME,
  decodeDigest,
  decodeHello,
  decodeMultifdRequest,
  decodePostcopyStart,
  decodeReconcile,
  decodeRecover,
  decodeRound,
  decodeSync,
  decodeVcpuState,
  encodeHelloAck,
  encodeJson,
  encodeOwner,
  encodePageRequest,
  encodePreemptAck,
  encodeRecoverAck,
  encodeResumedBody,
  type Frame,
  forEachPageEntry,
  MAX_REQUEST_PAGES,
  MIN_PROTOCOL_VERSION,
  PageEncoding,
  PROTOCOL_VERSION,
  type Reconcile,
  StrategyCode,
  verifyPagesFrame,
} from './protocol/index.js';
import { warmStateLoad, warmSwitchoverCode } from './switchover-warm.js';
import { announcedTraceBytes, checkReceivedTrace, receiveTrace } from './trace-transfer.js';

export interface DestinationLimits {
  /** Largest guest RAM a peer may announce. */
  maxRamBytes: number;
  /** Longest silence from the source before the incoming migration is dropped. */
  idleTimeoutMs: number;
  /** A connection whose first frame (HELLO or RECOVER) is not complete within this is refused. */
  helloTimeoutMs?: number;
}

export const DEFAULT_DESTINATION_LIMITS: DestinationLimits = {
  maxRamBytes: 16 * 1024 ** 3,
  idleTimeoutMs: 60_000,
  helloTimeoutMs: 30_000,
};

export interface IncomingMigration {
  id: string;
  guestId: string;
  strategy: 'cold' | 'precopy' | 'postcopy' | 'hybrid';
  ramBytes: number;
  phase:
    | 'setup'
    | 'receiving'
    | 'verifying'
    | 'running'
    | 'postcopy'
    | 'postcopy-paused'
    /** Verified and paused here after a fault between READY and GO: waits for GO or a reconcile verdict. */
    | 'held'
    | 'done'
    | 'discarded';
  pagesReceived: number;
  bytesReceived: number;
  rounds: number;
  faults: number;
  /** Post-copy links that broke and were resumed over a new connection. */
  recoveries: number;
  /** postcopy-preempt: pages received on the preempt channel (answers to this side's faults). */
  preemptPages?: number;
  error?: { code: string; message: string };
}

/** A post-copy whose link broke, waiting here for its source to reconnect (RECOVER). */
export interface PausedIncoming {
  migrationId: string;
  guestId: string;
  /** The secret from HELLO; a RECOVER must present the same. */
  token: string;
  /** Hands the new connection to the waiting migration. */
  attach(conn: FrameConnection): void;
  /** Gives up waiting (the guest is being stopped): the migration ends with this error. */
  abandon(err: MigrationError): void;
}

export interface DestinationHooks {
  /** Called at once with the live record of this incoming migration (it is updated in place). */
  onStart?(migration: IncomingMigration): void;
  /** Called when the guest runs here (after GO): the agent adopts it. */
  onGuestResumed(guestId: string, guest: Guest, migration: IncomingMigration): void;
  /** Called when the incoming migration ends (successfully or not). */
  onFinished?(migration: IncomingMigration): void;
  /** Refuses a guest id the agent already hosts. */
  acceptGuestId?(guestId: string): boolean;
  /**
   * Reserves what the announced guest will hold (RAM, its trace, vCPU threads) before anything is allocated, or
   * throws (RESOURCE_LIMIT). Released when the migration ends: by then the guest is the agent's or gone.
   */
  reserve?(req: { ramBytes: number; vcpus: number; extraBytes: number }): { release(): void };
  /**
   * Post-copy recovery: a broken post-copy waits for its source (register it); and a RECOVER connection looks up
   * the one it names (return it, or undefined to refuse). Without these hooks a broken post-copy link ends it.
   */
  onPostcopyPaused?(paused: PausedIncoming): void;
  findPaused?(migrationId: string): PausedIncoming | undefined;
  /**
   * Ownership after READY (capability OWNER_RECONCILE): where RECONCILE finds a live migration and the fate of an
   * ended one. Without it the capability is not granted (the source then cannot reconcile, and says so).
   */
  ownership?: OwnershipRegistry;
  /** A verified guest is held here, paused, after a fault between READY and GO (for the log). */
  onHeld?(migration: IncomingMigration): void;
  /**
   * Parallel channels (capability MULTIFD): where a CHANNEL connection finds its migration. Without it the
   * capability is not granted. `onChannel`: a connection was accepted as a channel of an admitted migration.
   */
  channels?: ChannelRegistry;
  onChannel?(conn: FrameConnection): void;
  /**
   * postcopy-preempt: where PREEMPT connections find their migration. Without it the capability is not granted
   * (the source then refuses to start with CAPABILITY).
   */
  preempt?: PreemptRegistry;
}

const STRATEGY_NAMES = {
  [StrategyCode.COLD]: 'cold',
  [StrategyCode.PRECOPY]: 'precopy',
  [StrategyCode.POSTCOPY]: 'postcopy',
  [StrategyCode.HYBRID]: 'hybrid',
} as const;

const SUPPORTED_CAPS =
  Capability.XBZRLE |
  Capability.RLE |
  Capability.DEFLATE |
  Capability.ZSTD |
  Capability.LZ4 |
  Capability.POSTCOPY |
  Capability.POSTCOPY_RECOVER |
  Capability.FRAME_BINDING |
  Capability.OWNER_RECONCILE |
  Capability.MULTIFD |
  Capability.POSTCOPY_PREEMPT |
  Capability.SWITCHOVER_ACK |
  Capability.APPLIED_ACK;

/**
 * Serves one incoming connection: a new migration (HELLO) until it completes or fails, or a RECOVER that hands the
 * connection to a paused post-copy (then resolves undefined at once). Never throws. `sinks`: where the page-sink
 * thread comes from (an agent keeps one started); without it, one is started for this migration.
 */
export async function runDestination(
  conn: FrameConnection,
  hooks: DestinationHooks,
  limits: DestinationLimits = DEFAULT_DESTINATION_LIMITS,
  sinks?: PageSinkPool,
): Promise<IncomingMigration | undefined> {
  let first: Frame | MigrationError;
  try {
    first = await conn.receive(limits.helloTimeoutMs ?? limits.idleTimeoutMs, 'HELLO');
  } catch (err) {
    first =
      err instanceof MigrationError
        ? err
        : new MigrationError('INTERNAL', `incoming connection: ${String(err)}`);
  }
  if (!(first instanceof MigrationError) && first.command === Command.RECONCILE) {
    await answerReconcile(conn, first, hooks.ownership);
    return undefined;
  }
  if (!(first instanceof MigrationError) && first.command === Command.CHANNEL) {
    if (!hooks.channels) {
      await conn.sendErrorAndClose(
        new MigrationError('CAPABILITY', 'this agent does not accept parallel channels (multifd)'),
      );
    } else if (await hooks.channels.accept(conn, first)) hooks.onChannel?.(conn);
    return undefined;
  }
  if (!(first instanceof MigrationError) && first.command === Command.PREEMPT) {
    // Accepted as the preempt channel of an admitted migration: it counts with it, like a multifd channel.
    if (hooks.preempt) {
      if (await hooks.preempt.accept(conn, first)) hooks.onChannel?.(conn);
    } else {
      await conn.sendErrorAndClose(
        new MigrationError('CAPABILITY', 'this agent does not accept postcopy-preempt channels'),
      );
    }
    return undefined;
  }
  if (!(first instanceof MigrationError) && first.command === Command.RECOVER) {
    let paused: PausedIncoming | undefined;
    try {
      const rec = decodeRecover(first.payload);
      paused = hooks.findPaused?.(rec.migrationId);
      const a = Buffer.from(rec.token, 'hex');
      const b = Buffer.from(paused?.token ?? '', 'hex');
      if (!paused || a.length !== b.length || !timingSafeEqual(a, b)) paused = undefined;
    } catch (err) {
      await conn.sendErrorAndClose(
        err instanceof MigrationError ? err : new MigrationError('PROTOCOL', String(err)),
      );
      return undefined;
    }
    if (!paused) {
      await conn.sendErrorAndClose(
        new MigrationError(
          'RECOVER_REFUSED',
          'no post-copy migration with that id and token waits on this agent for recovery',
        ),
      );
      return undefined;
    }
    // Accepted: from now on frames may be as large as the migration's (before, MAX_HELLO_PAYLOAD).
    conn.reader.setMaxPayload(DEFAULT_MAX_FRAME);
    paused.attach(conn);
    return undefined;
  }
  const d = new Destination(conn, hooks, limits, sinks);
  return d.run(first);
}

/**
 * A RECONCILE connection: a live migration (token checked) takes the connection over; an ended or unknown one is
 * answered from the registry (OWNER), then the connection closes.
 */
async function answerReconcile(
  conn: FrameConnection,
  first: Frame,
  registry: OwnershipRegistry | undefined,
): Promise<void> {
  try {
    const rec = decodeReconcile(first.payload);
    if (!registry) {
      throw new MigrationError(
        'CAPABILITY',
        'this agent keeps no ownership records: it cannot answer RECONCILE',
      );
    }
    const live = registry.handle(rec.migrationId);
    if (live) {
      const a = Buffer.from(rec.token, 'hex');
      const b = Buffer.from(live.token, 'hex');
      if (a.length !== b.length || !timingSafeEqual(a, b)) {
        throw new MigrationError(
          'RECOVER_REFUSED',
          'RECONCILE with a token that does not match the migration',
        );
      }
      live.reconcile(conn, rec);
      return;
    }
    const state = registry.record(rec.migrationId).state;
    await conn.sendFrame(Command.OWNER, encodeOwner(state === 'in-flight' ? 'held' : state));
    conn.socket.end();
  } catch (err) {
    await conn.sendErrorAndClose(
      err instanceof MigrationError ? err : new MigrationError('PROTOCOL', String(err)),
    );
  }
}

/** How long a switch-over waits for the page sink synchronously (then on the event loop). */
const SWITCHOVER_DRAIN_SYNC_MS = 200;
/** Largest PAGES frame after VCPU_STATE applied on the connection's thread (pausedLastPages). */
const PAUSED_INLINE_BYTES = 1 << 20;

/** Why a reconcile connection took over: the old one is closed so that nothing late on it can count. */
const SUPERSEDED =
  'the source reconnected to settle who runs the guest (RECONCILE): this connection is closed';

class Destination {
  private guest: Guest | undefined;
  /** Resolves when the incoming guest's vCPU threads have started (Guest.beginIncoming). */
  private guestReady: Promise<void> = Promise.resolve();
  private ledger!: PageLedger;
  private pageCount = 0;
  private pageSize = 0;
  private vcpuState: GuestState | undefined;
  /** The vCPU digest of `vcpuState`, once computed (stateDigest). */
  private vcpuStateDigest: string | undefined;
  /** The state's load into the guest, started as it arrived (loadStateEarly). */
  private stateLoading: Promise<void> | undefined;
  private resumed = false;
  /** The source paused the guest (VCPU_STATE came) until it runs here or the migration ends: src/paused-window.ts. */
  private pausedWindow: PausedWindow | undefined;
  /** The switch-over's priority from APPLIED (the source pauses right after its answer) to the window's close. */
  private earlyPriority: PriorityHold | undefined;
  /** When VCPU_STATE was taken (performance.now()), for the switch-over's times. */
  private stateAt = 0;
  private readonly compressors = new Map<PageEncoding, Compressor>();
  /** Applies pages on another thread until the guest resumes here (then the main thread does, for post-copy). */
  private sink: PageSink | undefined;
  private shifter!: Crc32cShifter;
  private entryCrcs: Uint32Array = new Uint32Array(1024);
  private readonly m: IncomingMigration = {
    id: '',
    guestId: '',
    strategy: 'precopy',
    ramBytes: 0,
    phase: 'setup',
    pagesReceived: 0,
    bytesReceived: 0,
    rounds: 0,
    faults: 0,
    recoveries: 0,
  };
  private postcopyMode = false;
  /** Time spent on PAGES frames after VCPU_STATE (the switch-over's times: applyMs). */
  private pausedApplyMs = 0;
  /** The source may send XBZRLE deltas (capability XBZRLE). */
  private xbzrle = false;
  private faultTimes = new Map<number, number>();
  private faultLatencies: number[] = [];
  private requestBatch: number[] = [];
  private requestScheduled = false;

  /** From HELLO when the source can recover a broken post-copy link. */
  private recoveryToken: string | undefined;
  /** The source asked for frame binding (FRAME_BINDING): every connection of this migration binds its frames. */
  private framesBound = false;
  /** The source asked for APPLIED_ACK: its APPLIED frames are answered (destination-applied.ts). */
  private appliedAck = false;
  /** Bytes received over connections that broke during post-copy. */
  private bytesBeforeRecovery = 0;
  /** What the agent reserved for this guest at HELLO (released when the migration ends). */
  private reservation: { release(): void } | undefined;

  // Ownership after READY (capability OWNER_RECONCILE; docs/protocol.md).
  /** Registered with the agent's OwnershipRegistry: RECONCILE reaches this migration through it. */
  private owner: OwnershipHandle | undefined;
  /** How long to wait for GO after READY before holding the guest (the source's handover timeout, bounded here). */
  private goTimeoutMs = 0;
  private held = false;
  /** Reconcile connections and operator verdicts not yet acted on, in arrival order. */
  private verdicts: ({ conn: FrameConnection; rec: Reconcile } | 'adopt' | MigrationError)[] = [];
  private wakeHold: (() => void) | undefined;
  /** The reconcile connection being served (a newer one supersedes it). */
  private reconcileConn: FrameConnection | undefined;
  /** Resumed by this agent's operator while held: there is no source connection to answer. */
  private adopted = false;

  // Parallel channels (capability MULTIFD; multifd/).
  private multifd: MultifdSink | undefined;
  /** Channels announced in HELLO (0: none). */
  private channelCount = 0;
  /** Channels that arrived before the guest was built: attached once it is. */
  private earlyChannels: { conn: FrameConnection; index: number }[] = [];

  // postcopy-preempt (capability POSTCOPY_PREEMPT; docs/protocol.md).
  /** Registered with the agent's PreemptRegistry while the migration lives. */
  private preemptEndpoint: PreemptEndpoint | undefined;
  /** The preempt channel being read (a newer one, after a recovery, replaces it). */
  private preemptConn: FrameConnection | undefined;
  /** POSTCOPY_END arrived: the source closing its preempt channel now is the normal end. */
  private postcopyEnded = false;

  constructor(
    private conn: FrameConnection,
    private readonly hooks: DestinationHooks,
    private readonly limits: DestinationLimits,
    private readonly sinks: PageSinkPool | undefined,
  ) {}

  private async next(): Promise<Frame> {
    const f = await this.receiveMain();
    this.m.bytesReceived =
      this.bytesBeforeRecovery + this.conn.bytesReceived + (this.multifd?.bytesReceived ?? 0);
    return f;
  }

  async run(first: Frame | MigrationError): Promise<IncomingMigration> {
    this.hooks.onStart?.(this.m);
    // LIVEMIG_SWITCHOVER_PRIORITY=migration: raised from here to the end, not only in the paused window.
    const priority = holdSwitchoverPriority('migration');
    try {
      await this.setup(first);
      await this.receive();
      this.m.phase = 'done';
    } catch (err) {
      const e =
        err instanceof MigrationError
          ? err
          : err instanceof CodecError
            ? new MigrationError('PROTOCOL', `corrupt page data: ${err.message}`)
            : new MigrationError(
                'INTERNAL',
                `incoming migration failed: ${err instanceof Error ? err.message : String(err)}`,
              );
      this.m.error = { code: e.code, message: e.message };
      if (!this.resumed) {
        this.m.phase = 'discarded';
        // Tell the source first (its guest runs on at once), then drop our copy while the close lingers: until the
        // ERROR leaves, the source's bytes pile up unread here.
        const told = e.context.remote ? undefined : this.conn.sendErrorAndClose(e);
        if (!told) this.conn.destroy(e);
        await this.guest?.destroy();
        this.guest = undefined;
        await told;
      } else {
        // After GO the guest is ours: keep it. In post-copy it may wait on pages that can no longer arrive.
        this.conn.destroy(e);
      }
    } finally {
      this.pausedWindow?.close();
      this.earlyPriority?.release();
      priority.release();
      this.endChannels();
      if (this.preemptEndpoint) this.hooks.preempt?.unregister(this.m.id, this.preemptEndpoint);
      this.postcopyEnded = true;
      this.preemptConn?.destroy();
      await this.sink?.close();
      this.sink = undefined;
      this.reservation?.release();
      this.reservation = undefined;
      if (this.owner) {
        this.hooks.ownership?.settle(this.m.id, this.m.guestId, this.resumed ? 'resumed' : 'discarded');
        this.answerAsResumed();
        // Ended without resuming: a RECONCILE still waiting learns that the copy here is gone.
        for (const v of this.verdicts.splice(0)) {
          if (typeof v !== 'object' || !('conn' in v)) continue;
          void v.conn
            .sendFrame(Command.OWNER, encodeOwner('discarded'))
            .then(() => v.conn.socket.end())
            .catch(() => v.conn.destroy());
        }
      }
      this.hooks.onFinished?.(this.m);
    }
    return this.m;
  }

  private async setup(f: Frame | MigrationError): Promise<void> {
    if (f instanceof MigrationError) throw f;
    if (f.command !== Command.HELLO) {
      throw new MigrationError('PROTOCOL', `expected HELLO but the peer sent ${Command[f.command]}`);
    }
    const h = decodeHello(f.payload);
    this.m.id = h.migrationId;
    this.m.strategy = STRATEGY_NAMES[h.strategy];
    if (h.versionMax < MIN_PROTOCOL_VERSION || h.versionMin > PROTOCOL_VERSION) {
      throw new MigrationError(
        'VERSION',
        `protocol versions ${h.versionMin}..${h.versionMax} offered, this agent speaks ${MIN_PROTOCOL_VERSION}..${PROTOCOL_VERSION}`,
      );
    }
    if ((h.capabilities & ~SUPPORTED_CAPS) !== 0) {
      throw new MigrationError('CAPABILITY', `unsupported capabilities 0x${h.capabilities.toString(16)}`);
    }
    this.pageSize = h.pageSize;
    this.pageCount = h.blocks.reduce((a, b) => a + b, 0);
    const ramBytes = this.pageCount * this.pageSize;
    this.m.ramBytes = ramBytes;
    if (ramBytes > this.limits.maxRamBytes) {
      throw new MigrationError(
        'RESOURCE_LIMIT',
        `the source announced a guest of ${ramBytes} bytes; this agent accepts at most ${this.limits.maxRamBytes} (--max-ram)`,
      );
    }
    const g = h.guest as { id?: unknown; config?: unknown; recoveryToken?: unknown };
    if (
      !g ||
      typeof g.id !== 'string' ||
      !/^[\w.-]{1,64}$/.test(g.id) ||
      !g.config ||
      typeof g.config !== 'object'
    ) {
      throw new MigrationError('PROTOCOL', 'HELLO: guest description must be {id, config}');
    }
    const config = g.config as GuestConfig;
    if (config.ramBytes !== ramBytes || (config.pageSize ?? 4096) !== this.pageSize) {
      throw new MigrationError('PROTOCOL', 'HELLO: guest config disagrees with the announced RAM layout');
    }
    if ((config.vcpus ?? 1) !== h.vcpus)
      throw new MigrationError('PROTOCOL', 'HELLO: vCPU count disagrees with config');
    if (this.hooks.ownership && this.conn.socket.remoteAddress) {
      this.hooks.ownership.supersedeStale(g.id, this.conn.socket.remoteAddress);
    }
    if (this.hooks.acceptGuestId && !this.hooks.acceptGuestId(g.id)) {
      throw new MigrationError('GUEST_BUSY', `this agent already hosts a guest named ${g.id}`);
    }
    // A trace guest brings its recording; no name in a peer's config is ever opened as a file here.
    const traceBytes = isTraceWorkload(config) ? announcedTraceBytes((g as { trace?: unknown }).trace) : 0;
    // Everything the guest will hold is reserved before any of it is allocated (and before HELLO_ACK).
    this.reservation = this.hooks.reserve?.({ ramBytes, vcpus: h.vcpus, extraBytes: traceBytes });
    this.m.guestId = g.id;
    if (
      h.capabilities &
      (Capability.POSTCOPY_RECOVER |
        Capability.OWNER_RECONCILE |
        Capability.MULTIFD |
        Capability.POSTCOPY_PREEMPT)
    ) {
      if (typeof g.recoveryToken !== 'string' || !/^[0-9a-f]{32}$/.test(g.recoveryToken)) {
        throw new MigrationError(
          'PROTOCOL',
          'HELLO: post-copy recovery or ownership reconcile offered without a 32-hex-digit token',
        );
      }
      if (h.capabilities & Capability.POSTCOPY_RECOVER) this.recoveryToken = g.recoveryToken;
    }
    const handover = (g as { handoverTimeoutMs?: unknown }).handoverTimeoutMs;
    // The source's handover timeout, bounded: the sides then give up on GO / RESUMED at about the same time.
    this.goTimeoutMs =
      typeof handover === 'number' && Number.isFinite(handover)
        ? Math.min(this.limits.idleTimeoutMs, Math.max(1000, handover))
        : this.limits.idleTimeoutMs;
    let capabilities = h.capabilities;
    if (h.capabilities & Capability.OWNER_RECONCILE) {
      if (this.hooks.ownership && typeof g.recoveryToken === 'string') {
        this.registerOwnership(this.hooks.ownership, g.recoveryToken);
      } else capabilities &= ~Capability.OWNER_RECONCILE; // not granted: the source knows it cannot reconcile
    }
    if (h.capabilities & Capability.MULTIFD) {
      const { channels } = decodeMultifdRequest((g as { multifd?: unknown }).multifd);
      if (this.hooks.channels && typeof g.recoveryToken === 'string')
        this.acceptChannels(channels, g.recoveryToken);
      else capabilities &= ~Capability.MULTIFD; // not granted: the source reports CAPABILITY
    }
    if (h.capabilities & Capability.POSTCOPY_PREEMPT) {
      if (this.hooks.preempt && typeof g.recoveryToken === 'string') {
        this.preemptEndpoint = { token: g.recoveryToken, attach: (conn) => void this.servePreempt(conn) };
        this.hooks.preempt.register(this.m.id, this.preemptEndpoint);
      } else capabilities &= ~Capability.POSTCOPY_PREEMPT; // not granted: the source refuses with CAPABILITY
    }
    this.postcopyMode =
      h.strategy === StrategyCode.POSTCOPY ||
      h.strategy === StrategyCode.HYBRID ||
      (h.capabilities & Capability.POSTCOPY) !== 0;
    const sinkCompressors: [PageEncoding, CompressorName][] = [];
    for (const [cap, enc, name] of [
      [Capability.DEFLATE, PageEncoding.DEFLATE, 'deflate'],
      [Capability.ZSTD, PageEncoding.ZSTD, 'zstd'],
      [Capability.LZ4, PageEncoding.LZ4, 'lz4'],
    ] as const) {
      if (h.capabilities & cap) {
        this.compressors.set(enc, compressor(name));
        sinkCompressors.push([enc, name]);
      }
    }
    // The connection thread checks each PAGES frame's CRC in the same pass that yields the pages' ledger CRCs.
    this.conn.reader.deferChecksum(Command.PAGES);
    // Acknowledged before the guest is built: building it (RAM, dirty log, the workload's corpus, vCPU threads) takes
    // 20-200 ms here, which then overlaps the source's first dirty-log sync and round 1 (its frames wait in the
    // socket) instead of delaying both. A failure from here on still discards the guest; the source keeps its own.
    // Frame binding: what the source sends from now on is bound to this nonce, and our frames after HELLO_ACK.
    this.framesBound = (h.capabilities & Capability.FRAME_BINDING) !== 0;
    this.appliedAck = (h.capabilities & Capability.APPLIED_ACK) !== 0; // granted whenever asked
    this.xbzrle = (h.capabilities & Capability.XBZRLE) !== 0;
    const nonce = this.framesBound ? this.conn.bindFramesWithNewNonce(Command.HELLO_ACK) : undefined;
    // HELLO accepted: from now on frames may be as large as HELLO_ACK allows (before, MAX_HELLO_PAYLOAD).
    this.conn.reader.setMaxPayload(DEFAULT_MAX_FRAME);
    await this.conn.sendFrame(
      Command.HELLO_ACK,
      encodeHelloAck({
        version: Math.min(PROTOCOL_VERSION, h.versionMax),
        capabilities,
        maxFrame: DEFAULT_MAX_FRAME,
        ...(nonce ? { nonce } : {}),
      }),
    );
    let trace: Buffer | undefined;
    if (traceBytes > 0) {
      trace = await receiveTrace(this.conn, traceBytes, this.limits.idleTimeoutMs);
      checkReceivedTrace(trace, (config.workload as { params?: { traceCrc?: unknown } }).params?.traceCrc);
    }
    try {
      // The vCPU threads start while the pages stream in; the handshake does not wait for them (handOver does).
      const { guest, ready } = Guest.beginIncoming(config, {
        postcopy: this.postcopyMode,
        ...(trace ? { trace } : {}),
      });
      this.guest = guest;
      this.guestReady = ready;
      if (h.capabilities & Capability.SWITCHOVER_ACK) this.ackSwitchover(ready);
    } catch (err) {
      throw new MigrationError(
        'CAPABILITY',
        `cannot create the incoming guest: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    const blocks = this.guest.ram.blocks.map((b) => b.pageCount);
    if (blocks.length !== h.blocks.length || blocks.some((b, i) => b !== h.blocks[i])) {
      throw new MigrationError('CAPABILITY', 'this agent lays out the guest RAM in different blocks');
    }
    this.ledger = new PageLedger(this.pageCount, this.pageSize, true);
    this.shifter = new Crc32cShifter(this.pageSize);
    this.sink = new PageSink(
      this.guest,
      this.ledger.crcs,
      sinkCompressors,
      (b) => this.conn.reader.recycleBuffer(b),
      this.sinks,
      undefined,
      this.ledger.sums,
    );
    if (this.channelCount > 0) this.startChannels(sinkCompressors);
    this.m.phase = 'receiving';
  }

  // ------------------------------------------------------------------------------------------------------
  // Parallel channels

  /** Registers this migration for its CHANNEL connections (before HELLO_ACK: the source dials them right after). */
  private acceptChannels(channels: number, token: string): void {
    this.channelCount = channels;
    this.hooks.channels!.register(
      {
        migrationId: this.m.id,
        token,
        peer: this.conn.socket.remoteAddress ?? '',
        attach: (conn, index) => {
          if (this.multifd) return this.multifd.attach(conn, index);
          if (index >= channels || this.earlyChannels.some((e) => e.index === index)) {
            throw new MigrationError(
              'PROTOCOL',
              `CHANNEL refused: channel ${index} is out of range or taken`,
            );
          }
          this.earlyChannels.push({ conn, index });
        },
      },
      channels,
    );
  }

  /** The guest exists: channels get their page-sink threads (those that came early are attached now). */
  private startChannels(compressors: [PageEncoding, CompressorName][]): void {
    this.multifd = new MultifdSink({
      channels: this.channelCount,
      guest: this.guest!,
      ledger: this.ledger.crcs,
      ledgerSums: this.ledger.sums,
      compressors,
      pageCount: this.pageCount,
      bound: this.framesBound,
      idleTimeoutMs: this.limits.idleTimeoutMs,
      activity: () => this.conn.bytesReceived,
      // A channel lost is the migration lost: the main connection fails with its error (the source keeps the guest).
      onFail: (e) => void this.conn.sendErrorAndClose(e),
    });
    for (const { conn, index } of this.earlyChannels.splice(0)) {
      try {
        this.multifd.attach(conn, index);
      } catch (err) {
        void conn.sendErrorAndClose(asMigrationError(err, 'CHANNEL'));
      }
    }
  }

  /**
   * The next frame on the main connection. With parallel channels the main connection is silent while a round's
   * pages flow on the channels: the source is idle only when no connection has brought a byte for the idle timeout.
   */
  private async receiveMain(): Promise<Frame> {
    for (;;) {
      const seen = this.multifd?.bytesReceived;
      try {
        return await this.conn.receive(this.limits.idleTimeoutMs, 'the next frame from the source');
      } catch (err) {
        const busy =
          err instanceof MigrationError &&
          err.code === 'TIMEOUT' &&
          !err.context.remote &&
          this.multifd !== undefined &&
          this.multifd.bytesReceived !== seen;
        if (!busy) throw err;
      }
    }
  }

  /** SYNC on the main connection: every channel has applied its pages up to the same sync point. */
  private async sync(f: Frame): Promise<void> {
    if (!this.multifd) throw new MigrationError('PROTOCOL', 'SYNC without parallel channels');
    await this.multifd.waitSync(decodeSync(f.payload));
    this.m.pagesReceived = this.multifd.pagesApplied;
  }

  private endChannels(): void {
    if (this.channelCount === 0) return;
    this.hooks.channels?.unregister(this.m.id);
    for (const { conn } of this.earlyChannels.splice(0)) conn.destroy();
    void this.multifd?.close();
  }

  /**
   * SWITCHOVER_ACK once the vCPU threads are up (the source pauses the guest only after it); if they cannot start,
   * the migration ends here (the source still runs the guest).
   */
  private ackSwitchover(ready: Promise<void>): void {
    ready.then(
      () => {
        // The source pauses right after this ACK: a pure post-copy has had no ROUND to warm its switch-over.
        if (this.postcopyMode) warmPostcopyStart(this.guest?.config, this.pageCount);
        // The threads are up, no state has come: compile the state load now (a fresh agent's first migration).
        if (!this.vcpuState) warmStateLoad(this.guest);
        // A pure post-copy has no APPLIED: this ACK is what its pause follows (APPLIED's answer in pre-copy). A
        // hybrid's ACK comes early in round 1, long before any pause: its rounds' APPLIED raise it, as pre-copy's.
        if (this.m.strategy === 'postcopy') this.earlyPriority ??= holdSwitchoverPriority('window');
        return this.conn.sendFrame(Command.SWITCHOVER_ACK).catch(() => undefined);
      },
      (err: unknown) =>
        this.conn.destroy(
          new MigrationError(
            'CAPABILITY',
            `cannot start the incoming guest's vCPUs: ${err instanceof Error ? err.message : String(err)}`,
          ),
        ),
    );
  }

  /** Applies one page entry to RAM. Before post-copy the guest is not running, so RAM can be written in place. */
  private entryIndex = 0;
  /** Set only while warmApply runs: where applyPage's pages go instead of the guest's. */
  private warming: WarmTarget | undefined;

  /**
   * With XBZRLE on a single connection: runs applyPage, this thread's page apply, over sample deltas on a scratch
   * page, so that the stop-and-copy's last pages (applied here, pausedLastPages) do not run it cold inside the
   * downtime (paused-apply-warm.ts). Called as each round ends, while the guest still runs on the source.
   */
  private warmApply(): void {
    if (!this.xbzrle || this.channelCount > 0 || !this.guest || this.resumed || this.vcpuState) return;
    const t = warmTarget(this.pageSize);
    this.warming = t;
    try {
      this.entryIndex = 0;
      warmPausedApply(t, this.applyPage);
    } finally {
      this.warming = undefined;
    }
  }

  private applyPage = (p: number, encoding: PageEncoding, data: Buffer): void => {
    const i = this.entryIndex++;
    const guest = this.guest!;
    if (this.resumed && guest.isPresent(p)) return; // post-copy: a push raced with a request; the first one won
    // While warming (warmApply), the same steps on a scratch page and ledger: never the guest's RAM or ledger.
    const w = this.warming;
    const page = w === undefined ? guest.ram.page(p) : w.page;
    decodePageInto(p, encoding, data, page, this.compressors);
    // A raw page's CRC was computed from these very bytes while the frame was checked.
    (w === undefined ? this.ledger : w.ledger).set(
      p,
      encoding === PageEncoding.RAW ? this.entryCrcs[i]! : pageCrc(page),
    );
    if (w !== undefined) return;
    this.m.pagesReceived++;
    if (this.resumed) {
      guest.markPresent(p); // decoded in place above, while no vCPU could touch the absent page
      const t = this.faultTimes.get(p);
      if (t !== undefined) {
        this.faultLatencies.push(performance.now() - t);
        this.faultTimes.delete(p);
      }
    }
  };

  /** Checks a PAGES frame (bounds and CRC) and leaves each entry's data CRC in `entryCrcs`. */
  private verifyPages(f: Frame): number {
    const v = verifyPagesFrame(f, this.pageCount, this.pageSize, this.shifter, this.entryCrcs);
    this.entryCrcs = v.entryCrcs;
    return v.count;
  }

  /** Applies a checked PAGES frame on this thread (post-copy, where the guest runs and each page is awaited). */
  private applyPages(f: Frame, conn: FrameConnection = this.conn): void {
    this.entryIndex = 0;
    forEachPageEntry(f.payload, this.pageCount, this.pageSize, this.applyPage);
    conn.reader.recycle(f.payload); // every page was copied or decoded into RAM above
  }

  /**
   * The preempt channel: PREEMPT_ACK (with the channel's own frame-binding nonce), then PAGES frames only, each
   * checked (bounds, CRC, binding) and applied as they come — the answers to this side's faults, which never wait
   * behind the push on the main connection. Anything else on it, or losing it before POSTCOPY_END, breaks the main
   * connection too: the loss is then handled as the main link's (post-copy: pause and wait for RECOVER).
   */
  private async servePreempt(conn: FrameConnection): Promise<void> {
    const lost = (why: string): void => {
      if (this.preemptConn !== conn || this.postcopyEnded) return;
      this.preemptConn = undefined;
      this.conn.destroy(
        new MigrationError('CONNECTION_LOST', `the post-copy preempt channel was lost: ${why}`),
      );
    };
    if (this.postcopyEnded || this.m.phase === 'done' || this.m.phase === 'discarded') {
      await conn.sendErrorAndClose(new MigrationError('TOO_LATE', `migration ${this.m.id} has ended`));
      return;
    }
    this.preemptConn?.destroy(new MigrationError('CONNECTION_LOST', 'replaced by a newer preempt channel'));
    this.preemptConn = conn;
    conn.reader.setMaxPayload(DEFAULT_MAX_FRAME);
    conn.reader.deferChecksum(Command.PAGES);
    try {
      const nonce = this.framesBound ? conn.bindFramesWithNewNonce(Command.PREEMPT_ACK) : undefined;
      await conn.sendFrame(Command.PREEMPT_ACK, encodePreemptAck(nonce));
    } catch (err) {
      return lost(err instanceof Error ? err.message : String(err));
    }
    for (;;) {
      let f: Frame;
      try {
        f = await conn.receive(0, 'a page on the preempt channel');
      } catch (err) {
        return lost(err instanceof Error ? err.message : String(err));
      }
      if (this.preemptConn !== conn) return;
      try {
        if (f.command !== Command.PAGES || !this.resumed) {
          throw new MigrationError(
            'PROTOCOL',
            `unexpected ${Command[f.command]} frame on the preempt channel${this.resumed ? '' : ' before post-copy'}`,
          );
        }
        const count = this.verifyPages(f);
        this.applyPages(f, conn);
        this.m.preemptPages = (this.m.preemptPages ?? 0) + count;
      } catch (err) {
        const e = asMigrationError(err, 'preempt channel');
        void conn.sendErrorAndClose(e);
        return lost(e.message);
      }
    }
  }

  /**
   * Waits until the page sink has applied everything received, then retires it: RAM and ledger are complete.
   * `close`: stop its thread now (else the caller does, once the guest runs).
   */
  private async drainSink(close = true, syncMs = 0): Promise<void> {
    const sink = this.sink;
    if (!sink) return;
    await sink.drain(syncMs);
    this.sink = undefined;
    if (close) void sink.close(); // stopping the thread takes milliseconds: not inside the downtime
  }

  private async receive(): Promise<void> {
    for (;;) {
      const f = await this.next();
      switch (f.command) {
        case Command.PAGES: {
          const t = this.vcpuState === undefined ? 0 : performance.now();
          const count = this.verifyPages(f);
          if (this.sink && !this.pausedLastPages(f)) {
            this.m.pagesReceived += count;
            await this.sink.submit(f.payload, count, this.entryCrcs);
          } else {
            // Applied here once everything handed to the sink is applied, so pages land in the order sent.
            if (this.sink) await this.sink.drain(SWITCHOVER_DRAIN_SYNC_MS);
            this.applyPages(f);
          }
          if (t > 0) this.pausedApplyMs += performance.now() - t;
          break;
        }
        case Command.ROUND:
          this.m.rounds = decodeRound(f.payload).round;
          // A round ended: the switch-over may follow. Warm its code once the frames already here are handled:
          // with XBZRLE also this thread's page decode, which applies the stop-and-copy's deltas (paused-apply-warm.ts).
          setImmediate(() => {
            warmSwitchoverCode(this.guest?.config);
            this.warmApply();
          });
          break;
        case Command.VCPU_STATE:
          this.pausedWindow ??= openPausedWindow();
          this.stateAt = performance.now();
          // Decoded and digested now: the source sends it right after the pause, ahead of the last pages, so this
          // work overlaps theirs instead of following SWITCHOVER.
          this.vcpuState = decodeVcpuState(f.payload);
          this.vcpuStateDigest = undefined;
          // Pre-copy compares it before the guest runs: now, while the state is in the cache. A guest made ready for
          // post-copy compares it only at POSTCOPY_END: taken after the resume (postcopy), out of the downtime.
          if (!this.postcopyMode) this.stateDigest();
          this.loadStateEarly();
          break;
        case Command.SYNC:
          await this.sync(f);
          break;
        case Command.APPLIED:
          // The source pauses the guest once this is answered; its one write then wakes a raised thread
          // (src/switchover-priority.ts): the window itself opens only when that write is read.
          this.earlyPriority ??= holdSwitchoverPriority('window');
          await answerApplied(
            this.conn,
            f.payload,
            this.appliedAck,
            () => this.sink?.drain() ?? Promise.resolve(),
          );
          break;
        case Command.SWITCHOVER:
          // Every page came before the last SYNC: the channels have done their work.
          this.endChannels();
          await this.switchover(f);
          return;
        case Command.POSTCOPY_START:
          await this.postcopy(f);
          return;
        default:
          throw new MigrationError(
            'PROTOCOL',
            `unexpected ${Command[f.command]} frame while receiving pages`,
          );
      }
    }
  }

  /**
   * A stop-and-copy's last pages: PAGES after VCPU_STATE (the guest is paused on the source, which sends its state
   * first when the last pages are few: source/handover.ts, beginOneWrite) on a single connection. They are applied
   * on this thread: handing them to the page-sink thread would wake it inside the downtime and wait for it at
   * SWITCHOVER. The frame was checked (bounds, CRC) as any other; the pages and ledger end up the same.
   */
  private pausedLastPages(f: Frame): boolean {
    return this.vcpuState !== undefined && this.channelCount === 0 && f.payload.length <= PAUSED_INLINE_BYTES;
  }

  /**
   * Loads the vCPU state into the paused guest as soon as its threads are up, ahead of SWITCHOVER: the guest runs
   * only after the check passes (and is discarded if it fails), so this is work taken out of the downtime's path.
   * handOver waits for it (and gets its error, as if it had loaded the state itself).
   */
  private loadStateEarly(): void {
    const state = this.vcpuState;
    const loading = this.guestReady.then(() => {
      if (this.vcpuState === state && !this.resumed) this.loadState();
    });
    loading.catch(() => undefined); // awaited by handOver
    this.stateLoading = loading;
  }

  /**
   * The vCPU digest of the state as decoded, computed once. The decoded state is never changed (the guest loads a
   * checked copy of it: Guest.loadState), so taking it later gives the same digest as taking it on arrival.
   */
  private stateDigest(): string | undefined {
    if (this.vcpuStateDigest === undefined && this.vcpuState)
      this.vcpuStateDigest = vcpuDigest(this.vcpuState);
    return this.vcpuStateDigest;
  }

  private loadState(): void {
    if (!this.vcpuState) throw new MigrationError('PROTOCOL', 'switch-over without VCPU_STATE');
    try {
      this.guest!.loadState(this.vcpuState);
    } catch (err) {
      throw new MigrationError(
        'PROTOCOL',
        `bad vCPU state: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }

  /**
   * READY, GO, resume, RESUMED. When GO is already here (the source sent it with the digest), READY and RESUMED
   * leave in one write and the guest resumes between them, as soon as the check passed. `times`: the
   * destination's account of its part, sent back in RESUMED.
   */
  private async handOver(times?: SwitchoverClock): Promise<void> {
    try {
      await this.guestReady;
    } catch (err) {
      throw new MigrationError(
        'CAPABILITY',
        `cannot start the incoming guest's vCPUs: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    if (this.stateLoading) await this.stateLoading;
    else this.loadState();
    times?.mark('loadStateMs');
    const goHere = this.conn.peekCommand() === Command.GO;
    const socket = this.conn.socket;
    // GO is already here: corked across the (immediate) wait for it, READY and RESUMED leave together.
    if (goHere) socket.cork?.();
    let ready: Promise<void>;
    try {
      ready = this.conn.sendFrame(Command.READY, encodeJson({ ok: true }));
      ready.catch(() => undefined); // awaited below
      if (this.owner) await this.awaitGo();
      else await this.conn.expect(Command.GO, this.limits.idleTimeoutMs);
      times?.mark('goMs');
      this.resumed = true;
      this.held = false;
      this.guest!.resume();
      times?.mark('resumeMs');
      if (!this.adopted) {
        const body = encodeResumedBody({
          ok: true,
          ...(times ? { times: times.result() } : {}),
          ...(this.pausedWindow ? { priority: this.pausedWindow.priority } : {}),
        });
        void this.conn.sendFrame(Command.RESUMED, body).catch(() => undefined);
      }
    } finally {
      if (goHere) socket.uncork?.();
    }
    this.pausedWindow?.close();
    this.earlyPriority?.release();
    // The guest runs: what follows is bookkeeping, outside the downtime. After a sleep (`times`: a switch-over), so
    // that the source reads RESUMED first (src/paused-window.ts, yieldCore); post-copy's faults do not wait for it.
    if (times && !this.adopted) await yieldCore();
    this.hooks.onGuestResumed(this.m.guestId, this.guest!, this.m);
    this.answerAsResumed();
    await ready.catch(() => undefined);
  }

  // ------------------------------------------------------------------------------------------------------
  // Ownership after READY

  private registerOwnership(registry: OwnershipRegistry, token: string): void {
    this.owner = {
      migrationId: this.m.id,
      guestId: this.m.guestId,
      token,
      state: () => (this.resumed ? 'resumed' : this.held ? 'held' : 'in-flight'),
      reconcile: (conn, rec) => this.onReconcile(conn, rec),
      adopt: () => {
        if (!this.held) throw new MigrationError('TOO_LATE', `migration ${this.m.id} holds no guest here`);
        const missing = this.guest?.missingPages() ?? 0;
        if (missing > 0) {
          throw new MigrationError(
            'GUEST_BUSY',
            `guest ${this.m.guestId} lacks ${missing} pages that only its source holds (post-copy): it cannot run here`,
          );
        }
        this.verdict('adopt');
      },
      discard: (why) => this.verdict(why),
      peer: this.conn.socket.remoteAddress ?? '',
      supersede: () => {
        if (this.resumed || this.held) return;
        this.conn.destroy(
          new MigrationError(
            'CONNECTION_LOST',
            'superseded: its source started a newer migration of this guest',
          ),
        );
      },
    };
    registry.register(this.owner);
  }

  private verdict(v: (typeof this.verdicts)[number]): void {
    this.verdicts.push(v);
    this.wakeHold?.();
  }

  /**
   * A RECONCILE for this migration. Before READY it ends the migration (the source keeps the guest). Between READY
   * and GO the old connection is closed at once — a GO still travelling on it can then never arrive — and the hold
   * loop answers. After resume the answer is `resumed`; a post-copy's old link is closed so that it pauses and waits
   * for RECOVER, which the source sends next.
   */
  private onReconcile(conn: FrameConnection, rec: Reconcile): void {
    this.conn.destroy(new MigrationError('CONNECTION_LOST', SUPERSEDED));
    this.reconcileConn?.destroy(new MigrationError('CONNECTION_LOST', SUPERSEDED));
    this.verdict({ conn, rec });
    if (this.resumed) this.answerAsResumed();
  }

  /** Answers every waiting RECONCILE with `resumed` (a post-copy once it has paused for RECOVER). */
  private answerAsResumed(): void {
    if (!this.resumed) return;
    const waiting = this.verdicts.filter((v) => typeof v === 'object' && 'conn' in v) as {
      conn: FrameConnection;
    }[];
    this.verdicts = [];
    for (const { conn } of waiting) {
      void (async () => {
        // Post-copy: the closed link makes it pause (postcopy-paused) and wait for RECOVER; say so only then.
        const end = performance.now() + 5000;
        while (this.m.phase === 'postcopy' && performance.now() < end) {
          await new Promise((r) => setTimeout(r, 10));
        }
        await conn.sendFrame(Command.OWNER, encodeOwner('resumed')).catch(() => undefined);
        conn.socket.end();
      })();
    }
  }

  /** Waits for GO after READY; on any fault but the source's own ERROR/CANCEL, holds the guest for a verdict. */
  private async awaitGo(): Promise<void> {
    try {
      await this.conn.expect(Command.GO, this.goTimeoutMs);
      return;
    } catch (err) {
      const e = asMigrationError(err, 'waiting for GO');
      // The source said it keeps the guest (it sends ERROR or CANCEL only before GO): discard, as before READY.
      if (e.context.remote || e.code === 'CANCELLED') throw e;
      this.conn.destroy(e);
      await this.hold(e);
    }
  }

  /**
   * The guest is complete, verified and paused here, and the source may or may not have sent GO. Wait — with no
   * deadline: a timer must not decide ownership — for a RECONCILE (query: answer `held`, then GO on that
   * connection resumes the guest; abort: discard) or this agent's operator (adopt or discard).
   */
  private async hold(cause: MigrationError): Promise<void> {
    if (this.hooks.ownership?.closed) {
      throw new MigrationError('CANCELLED', 'the agent is shutting down: the copy held here is discarded', {
        remote: true,
      });
    }
    this.held = true;
    this.m.phase = 'held';
    const missing = this.guest?.missingPages() ?? 0;
    const api = `/v1/migrations/incoming/${this.m.id}`;
    this.m.error = {
      code: cause.code,
      message:
        missing === 0
          ? `guest ${this.m.guestId} is complete, verified and paused here, source unknown: the link to the source ` +
            `failed after READY (${cause.message}). It resumes here only on GO or the source's reconcile; if the ` +
            `source host is gone for good, resume it here with POST ${api}/adopt (or drop it: POST ${api}/discard)`
          : `guest ${this.m.guestId} is paused here without ${missing} pages that only its source holds ` +
            `(post-copy), source unknown: the link to the source failed after READY (${cause.message}). The source ` +
            `takes it back when it reconciles; if the source host is gone for good the guest is lost: drop this ` +
            `copy with POST ${api}/discard`,
    };
    this.hooks.onHeld?.(this.m);
    for (;;) {
      if (this.verdicts.length === 0) {
        await new Promise<void>((resolve) => {
          this.wakeHold = resolve;
        });
        this.wakeHold = undefined;
        continue;
      }
      const v = this.verdicts.shift()!;
      if (v === 'adopt') {
        this.adopted = true;
        this.m.error = undefined;
        return;
      }
      if (v instanceof MigrationError) throw v;
      const { conn, rec } = v;
      if (rec.action === 'abort') {
        await conn.sendFrame(Command.OWNER, encodeOwner('discarded')).catch(() => undefined);
        conn.socket.end();
        throw new MigrationError(
          'CANCELLED',
          'the source kept the guest (RECONCILE abort): the copy held here is discarded',
          { remote: true },
        );
      }
      this.reconcileConn = conn;
      try {
        await conn.sendFrame(Command.OWNER, encodeOwner('held'));
        await conn.expect(Command.GO, this.goTimeoutMs);
        this.conn = conn;
        this.m.error = undefined;
        return;
      } catch {
        conn.destroy(); // the source retries on a new connection: keep holding
      } finally {
        this.reconcileConn = undefined;
      }
    }
  }

  private async switchover(f: Frame): Promise<void> {
    const times = new SwitchoverClock();
    times.before('stateMs', this.stateAt);
    times.record('applyMs', this.pausedApplyMs);
    this.m.phase = 'verifying';
    const sink = this.sink;
    // The guest is paused on the source: wait for the sink's last pages by Atomics.wait, not the event loop.
    await this.drainSink(false, SWITCHOVER_DRAIN_SYNC_MS);
    times.mark('drainMs');
    const digest = decodeDigest(f.payload);
    const guest = this.guest!;
    if (digest.method !== 'none') {
      const ram =
        digest.method === 'full'
          ? fullRamDigest(this.pageCount, (i) => guest.ram.page(i))
          : this.ledger.digest();
      if (ram !== digest.ram) {
        throw new MigrationError(
          'DIGEST_MISMATCH',
          `RAM digest mismatch at switch-over (${digest.method}: source ${digest.ram}, destination ${ram}); ` +
            'the incoming guest was discarded and the guest keeps running on the source',
        );
      }
      if (this.stateDigest() !== digest.vcpu) {
        throw new MigrationError('DIGEST_MISMATCH', 'vCPU state digest mismatch at switch-over');
      }
    }
    if (this.postcopyMode) {
      // Created ready for post-copy, but the source converged: every page is here.
      for (let p = 0; p < this.pageCount; p++) guest.markPresent(p);
    }
    times.mark('verifyMs');
    try {
      await this.handOver(times);
    } finally {
      void sink?.close(); // stopping the thread takes milliseconds: after the guest runs, not inside the downtime
    }
    this.m.phase = 'running';
    // The source closes after RESUMED; wait for that so a late ERROR is still seen.
    if (!this.adopted) await this.conn.receive(5_000).catch(() => undefined);
  }

  private async postcopy(f: Frame): Promise<void> {
    // This side's steps go back in RESUMED, as in pre-copy (drain; "verify" = taking the start's bitmap).
    const times = new SwitchoverClock();
    const guest = this.guest!;
    times.before('stateMs', this.stateAt);
    const valid = decodePostcopyStart(f.payload, this.pageCount);
    // Stopping the sink's thread is not downtime: drained now (a hybrid's last pages), closed once the guest runs.
    const sink = this.sink;
    await this.drainSink(false, SWITCHOVER_DRAIN_SYNC_MS);
    times.mark('drainMs');
    markValidPages(valid, this.pageCount, (p) => guest.markPresent(p)); // warmed: postcopy-warm.ts
    guest.onFault((p) => this.fault(p));
    times.mark('verifyMs');
    try {
      // The guest's faults are requested from their own turn (fault()): handOver's sleep after RESUMED delays only
      // this loop's first read, by about a millisecond, and lets the source read RESUMED first.
      await this.handOver(times);
    } finally {
      void sink?.close();
    }
    // Compared at POSTCOPY_END, so taken once the guest runs here, not in the downtime (a mismatch still fails the
    // migration there: COMPLETE unverified, DIGEST_MISMATCH).
    this.stateDigest();
    this.m.phase = 'postcopy';
    for (;;) {
      let fr: Frame;
      try {
        fr = await this.next();
      } catch (err) {
        if (!this.canRecover(err)) throw err;
        await this.awaitRecovery(err as MigrationError);
        continue;
      }
      if (fr.command === Command.PAGES) {
        this.verifyPages(fr);
        this.applyPages(fr);
      } else if (fr.command === Command.POSTCOPY_END) {
        const digest = decodeDigest(fr.payload, 'POSTCOPY_END');
        await this.preemptDrained();
        this.postcopyEnded = true;
        const missing = guest.missingPages();
        const ram = this.ledger.digest();
        const verified =
          missing === 0 &&
          (digest.method === 'none' || (ram === digest.ram && this.stateDigest() === digest.vcpu));
        this.m.faults = this.faultLatencies.length + this.faultTimes.size;
        await this.conn.sendFrame(
          Command.COMPLETE,
          encodeJson({ verified, faults: this.m.faults, faultLatencyMs: this.faultLatencies, missing }),
        );
        if (!verified) {
          throw new MigrationError(
            'DIGEST_MISMATCH',
            `post-copy finished with ${missing} pages missing or a digest mismatch; the guest runs here but its memory is suspect`,
          );
        }
        await this.conn.receive(5_000).catch(() => undefined);
        return;
      } else {
        throw new MigrationError('PROTOCOL', `unexpected ${Command[fr.command]} frame during post-copy`);
      }
    }
  }

  /**
   * POSTCOPY_END came on the main connection; the last answers the source sent on the preempt channel before it may
   * still be in flight there. Wait (bounded by the idle timeout) until they have landed or the channel is gone.
   */
  private async preemptDrained(): Promise<void> {
    const deadline = performance.now() + this.limits.idleTimeoutMs;
    while (
      this.preemptConn &&
      !this.preemptConn.closed &&
      this.guest!.missingPages() > 0 &&
      performance.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  /** A broken link (not an error the source reported) during post-copy, with a source that can reconnect. */
  private canRecover(err: unknown): boolean {
    return (
      this.recoveryToken !== undefined &&
      this.hooks.onPostcopyPaused !== undefined &&
      err instanceof MigrationError &&
      !err.context.remote &&
      (err.code === 'CONNECTION_LOST' || err.code === 'TIMEOUT')
    );
  }

  /**
   * Post-copy recovery, destination side: the guest keeps running here and waits on its faults; this migration
   * waits for its source to reconnect with RECOVER, answers with the pages it holds, and asks again for every page
   * a vCPU still waits for.
   */
  private async awaitRecovery(cause: MigrationError): Promise<void> {
    this.m.phase = 'postcopy-paused';
    this.m.error = { code: cause.code, message: `post-copy paused: ${cause.message}` };
    this.bytesBeforeRecovery += this.conn.bytesReceived;
    this.conn.destroy(cause);
    // The preempt channel went with it (the source opens a new one after RECOVER).
    const preempt = this.preemptConn;
    this.preemptConn = undefined;
    preempt?.destroy(cause);
    const conn = await new Promise<FrameConnection>((resolve, reject) => {
      this.hooks.onPostcopyPaused!({
        migrationId: this.m.id,
        guestId: this.m.guestId,
        token: this.recoveryToken!,
        attach: resolve,
        abandon: reject,
      });
    });
    this.conn = conn;
    conn.reader.deferChecksum(Command.PAGES);
    const guest = this.guest!;
    const present = new Uint8Array(Math.ceil(this.pageCount / 8));
    for (let p = 0; p < this.pageCount; p++) if (guest.isPresent(p)) present[p >> 3]! |= 1 << (p & 7);
    // A new connection, a new nonce: frames of the broken one cannot be replayed into this one.
    const nonce = this.framesBound ? conn.bindFramesWithNewNonce(Command.RECOVER_ACK) : undefined;
    await conn.sendFrame(Command.RECOVER_ACK, encodeRecoverAck(present, nonce));
    this.m.phase = 'postcopy';
    this.m.recoveries++;
    this.m.error = undefined;
    const waiting = [...this.faultTimes.keys()];
    for (let i = 0; i < waiting.length; i += MAX_REQUEST_PAGES) {
      conn
        .sendFrame(Command.PAGE_REQUEST, encodePageRequest(waiting.slice(i, i + MAX_REQUEST_PAGES)))
        .catch(() => undefined);
    }
  }

  private fault(p: number): void {
    if (this.faultTimes.has(p)) return;
    this.faultTimes.set(p, performance.now());
    this.requestBatch.push(p);
    if (!this.requestScheduled) {
      this.requestScheduled = true;
      setImmediate(() => {
        this.requestScheduled = false;
        while (this.requestBatch.length > 0) {
          const batch = this.requestBatch.splice(0, MAX_REQUEST_PAGES);
          this.conn.sendFrame(Command.PAGE_REQUEST, encodePageRequest(batch)).catch(() => undefined);
        }
      });
    }
  }
}

/** Whether a peer's guest config asks for the trace workload (`trace` or `trace:NAME`). */
function isTraceWorkload(config: GuestConfig): boolean {
  const name = (config.workload as { name?: unknown } | undefined)?.name;
  return name === 'trace' || (typeof name === 'string' && name.startsWith('trace:'));
}
