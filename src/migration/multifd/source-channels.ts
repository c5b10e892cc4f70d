/**
 * The source's parallel channels (QEMU's multifd): N extra connections, each fed by its own thread (channel-worker.ts)
 * that encodes the pages whose addresses map to it. The main connection keeps the control stream: after each batch
 * of pages (a round, the stop-and-copy) every channel ends its share with SYNC k and the main connection sends SYNC k,
 * at which the destination waits until every channel has applied its pages up to k. A channel lost is the migration
 * lost: the error surfaces at the next page batch, and the guest stays here (the source is authoritative until GO).
 */
import type { Worker } from 'node:worker_threads';
import { MigrationError } from '../../errors.js';
import { startWorkerNextTo } from '../../guest/index.js';
import type { FrameConnection } from '../connection.js';
import type { MigrationOptions } from '../options.js';
import { Command, decodeChannelAck, encodeChannelHello, encodeSync, PREAMBLE } from '../protocol/index.js';
import type { MigrationReport } from '../stats.js';
import type { EncoderCounters, EncoderInit, EncoderReply, EncoderRequest } from './channel-protocol.js';
import { shardPages } from './shard.js';

/** Opens the connection of channel `index` to the destination (TCP or TLS, with the migration's pacer). */
export type ChannelDialer = (index: number) => Promise<FrameConnection>;

export interface MultifdSourceInit {
  migrationId: string;
  token: string;
  channels: number;
  bound: boolean;
  /** The guest's RAM, shared with the channel threads. */
  blocks: SharedArrayBuffer[];
  pagesPerBlock: number;
  pageSize: number;
  /** The page ledger's CRCs (shared: each channel thread writes those of the pages it sends). */
  ledger: Uint32Array;
  /** The ledger digest's running sums (shared): each channel thread keeps them with the CRCs it writes. */
  ledgerSums?: Int32Array;
  options: MigrationOptions;
  maxPayload: number;
  report: MigrationReport;
  dial: ChannelDialer;
  handshakeTimeoutMs: number;
}

/** Bytes of the cache each channel gets: the XBZRLE budget shared out (dynamic sizing runs on one cache only). */
export function channelCacheBytes(o: MigrationOptions, channels: number): number {
  if (!o.xbzrle) return 0;
  const total = o.cacheSizing === 'dynamic' ? o.xbzrleCacheMaxBytes : o.xbzrleCacheBytes;
  return Math.floor(total / channels);
}

class SourceChannel {
  readonly worker: Worker;
  /** Sends to the socket, in the order the thread sealed the frames. */
  private chain: Promise<void> = Promise.resolve();
  private syncWaiters = new Map<number, (c: EncoderCounters) => void>();
  cacheBytes = 0;
  hits = 0;
  misses = 0;

  constructor(
    readonly index: number,
    readonly conn: FrameConnection,
    worker: Worker,
    private readonly fail: (e: MigrationError) => void,
  ) {
    this.worker = worker;
    this.worker.on('message', (m: EncoderReply) => this.onReply(m));
    this.worker.on('error', (err) =>
      this.fail(new MigrationError('INTERNAL', `multifd channel ${index} thread failed: ${err.message}`)),
    );
    conn.onClose((err) =>
      this.fail(
        new MigrationError(err.code, `multifd channel ${index}: ${err.message}`, {
          ...err.context,
          channel: index,
        }),
      ),
    );
  }

  private onReply(m: EncoderReply): void {
    if (m.kind === 'frame') {
      const frame = Buffer.from(m.buffer, m.offset, m.length);
      // Once the socket is done with the bytes, the buffer goes back to the thread for its next frame.
      this.chain = this.chain.then(() =>
        this.conn.send(frame, () => this.post({ kind: 'written', buffer: m.buffer }, [m.buffer])),
      );
      this.chain.catch(() => undefined); // the connection's failure reaches fail() through onClose
      return;
    }
    if (m.kind === 'synced') {
      this.cacheBytes = m.cacheBytes;
      this.hits = m.counters.xbzrle.hits;
      this.misses = m.counters.xbzrle.misses;
      this.chain = this.chain.then(() => this.conn.sendFrame(Command.SYNC, encodeSync(m.seq)));
      this.chain.then(
        () => {
          const w = this.syncWaiters.get(m.seq);
          this.syncWaiters.delete(m.seq);
          w?.(m.counters);
        },
        () => undefined,
      );
      return;
    }
    if (m.kind === 'error')
      this.fail(new MigrationError('INTERNAL', `multifd channel ${this.index}: ${m.message}`));
  }

  post(m: EncoderRequest, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(m, transfer);
  }

  /** Resolves with the channel's counters once SYNC `seq` has followed its pages onto the socket. */
  sync(seq: number): Promise<EncoderCounters> {
    const p = new Promise<EncoderCounters>((resolve) => this.syncWaiters.set(seq, resolve));
    this.post({ kind: 'sync', seq });
    return p;
  }
}

export class MultifdSource {
  private channels: SourceChannel[] = [];
  private seq = 0;
  private failure: MigrationError | undefined;
  private failed!: (e: MigrationError) => void;
  private readonly failedP: Promise<never>;

  private constructor(private readonly init: MultifdSourceInit) {
    this.failedP = new Promise<never>((_, reject) => {
      this.failed = reject;
    });
    this.failedP.catch(() => undefined);
  }

  /** Dials every channel, presents it (CHANNEL) and starts its thread. Throws if any is refused or lost. */
  static async open(init: MultifdSourceInit): Promise<MultifdSource> {
    const m = new MultifdSource(init);
    const o = init.options;
    const encoder: EncoderInit = {
      blocks: init.blocks,
      pagesPerBlock: init.pagesPerBlock,
      pageSize: init.pageSize,
      ledger: init.ledger.buffer as SharedArrayBuffer,
      ...(init.ledgerSums ? { ledgerSums: init.ledgerSums.buffer as SharedArrayBuffer } : {}),
      compress: o.compress,
      verify: o.verify,
      cacheBytes: channelCacheBytes(o, init.channels),
      cacheWays: o.cacheWays,
      maxPayload: init.maxPayload,
    };
    // The threads boot (tens of ms, far more on a loaded host) while the channels are dialled and presented; pages
    // flow only once both are ready, so the destination never waits on a channel whose thread is still loading.
    const workers = Array.from({ length: init.channels }, () =>
      startWorkerNextTo(import.meta.url, 'channel-worker', { workerData: encoder }, true),
    );
    const [booted, opened] = await Promise.all([
      Promise.allSettled(workers.map(ready)),
      Promise.allSettled(Array.from({ length: init.channels }, (_, i) => m.handshake(i))),
    ]);
    const lost = [...opened, ...booted].find((r) => r.status === 'rejected');
    if (lost) {
      for (const r of opened) if (r.status === 'fulfilled') r.value.destroy();
      for (const w of workers) void w.terminate();
      throw lost.reason;
    }
    const conns = opened.map((r) => (r as PromiseFulfilledResult<FrameConnection>).value);
    m.channels = conns.map((conn, i) => new SourceChannel(i, conn, workers[i]!, (e) => m.fail(e)));
    return m;
  }

  private async handshake(i: number): Promise<FrameConnection> {
    const init = this.init;
    let conn: FrameConnection;
    try {
      conn = await init.dial(i);
    } catch (err) {
      throw err instanceof MigrationError
        ? err
        : new MigrationError('CONNECTION_REFUSED', `multifd channel ${i}: ${String(err)}`);
    }
    try {
      conn.writeRaw(PREAMBLE);
      if (init.bound) conn.bindFramesAfterReceiving(Command.CHANNEL_ACK, (p) => decodeChannelAck(p, true));
      await conn.sendFrame(
        Command.CHANNEL,
        encodeChannelHello({ migrationId: init.migrationId, token: init.token, channel: i }),
      );
      const ack = await conn.expect(Command.CHANNEL_ACK, init.handshakeTimeoutMs);
      decodeChannelAck(ack.payload, init.bound);
      return conn;
    } catch (err) {
      conn.destroy();
      throw err;
    }
  }

  get bytesSent(): number {
    let n = 0;
    for (const c of this.channels) n += c.conn.bytesSent;
    return n;
  }

  /** The first failure of any channel (or of the migration: `fail`) ends every channel. */
  fail(e: MigrationError): void {
    if (this.failure) return;
    this.failure = e;
    this.failed(e);
    for (const c of this.channels) {
      c.conn.destroy(e);
      void c.worker.terminate();
    }
  }

  /** The guest is paused: the last pages go unlimited (one shared budget: every channel). */
  disableRateLimit(): void {
    for (const c of this.channels) c.conn.disableRateLimit();
  }

  /**
   * Sends `pages` (ascending) over the channels, then a sync point: resolves once every channel has queued its
   * share and its SYNC on its socket and the main connection has sent the same SYNC.
   */
  async sendPages(main: FrameConnection, pages: ArrayLike<number>, fresh: boolean, allowXbzrle: boolean) {
    if (this.failure) throw this.failure;
    const shares = shardPages(pages, this.channels.length);
    for (const c of this.channels) {
      const share = shares[c.index]!;
      if (share.length > 0)
        c.post({ kind: 'pages', pages: share, fresh, allowXbzrle }, [share.buffer as ArrayBuffer]);
    }
    const seq = ++this.seq;
    const counters = await Promise.race([Promise.all(this.channels.map((c) => c.sync(seq))), this.failedP]);
    this.merge(counters);
    await main.sendFrame(Command.SYNC, encodeSync(seq));
  }

  private merge(all: EncoderCounters[]): void {
    const r = this.init.report;
    r.multifd = { channels: this.channels.length, bytes: this.channels.map((c) => c.conn.bytesSent) };
    for (const c of all) {
      for (const k of Object.keys(c.pages) as (keyof EncoderCounters['pages'])[]) r.pages[k] += c.pages[k];
      r.xbzrle.encodedBytes += c.xbzrle.encodedBytes;
      r.xbzrle.pageBytes += c.xbzrle.pageBytes;
      r.xbzrle.overflows += c.xbzrle.overflows;
    }
    if (this.init.options.xbzrle) {
      let bytes = 0;
      let hits = 0;
      let misses = 0;
      for (const c of this.channels) {
        bytes += c.cacheBytes;
        hits += c.hits;
        misses += c.misses;
      }
      r.xbzrle.cacheBytes = bytes;
      r.xbzrle.cacheBytesPeak = Math.max(r.xbzrle.cacheBytesPeak, bytes);
      r.xbzrle.cacheHits = hits;
      r.xbzrle.cacheMisses = misses;
    }
  }

  /** Ends the channels (after the switch-over, or on failure): threads stop, sockets close. */
  async close(): Promise<void> {
    for (const c of this.channels) {
      if (!c.conn.closed) c.conn.socket.end();
    }
    await Promise.all(this.channels.map((c) => c.worker.terminate()));
    for (const c of this.channels) setTimeout(() => c.conn.socket.destroy(), 2000).unref();
  }
}

/** Resolves once a channel thread has loaded its codecs and allocated its cache (its `ready` message). */
function ready(w: Worker): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onMessage = (m: EncoderReply) => {
      if (m.kind !== 'ready') return;
      w.off('message', onMessage);
      resolve();
    };
    w.on('message', onMessage);
    w.once('error', (err) =>
      reject(new MigrationError('INTERNAL', `multifd channel thread: ${err.message}`)),
    );
    w.once('exit', (code) =>
      reject(new MigrationError('INTERNAL', `multifd channel thread exited (${code})`)),
    );
  });
}
