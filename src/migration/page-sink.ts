/**
 * Main-thread side of the destination's page sink (see page-sink-worker.ts): hands checked PAGES payloads to the
 * sink thread, zero-copy when the payload owns its buffer, keeps at most a few in flight (so a slow sink slows the
 * socket instead of growing memory), and says when everything sent has been applied.
 *
 * Starting the thread costs tens of milliseconds of CPU (and far more on a busy host, where its first pages wait
 * for it): a PageSinkPool keeps one thread started ahead of the next migration.
 */
import type { Worker } from 'node:worker_threads';
import type { CompressorName } from '../codec/index.js';
import { MigrationError } from '../errors.js';
import { type Guest, startWorkerNextTo } from '../guest/index.js';
import { addSwitchoverThread } from '../switchover-priority.js';
import type { PageEncoding } from './protocol/index.js';

export interface SinkInit {
  blocks: SharedArrayBuffer[];
  pagesPerBlock: number;
  pageSize: number;
  ledger: SharedArrayBuffer;
  /** The ledger digest's running sums (digest.ts), updated with every CRC the sink writes; absent: kept privately. */
  ledgerSums?: SharedArrayBuffer;
  /** One Int32 word: the sequence number of the last batch applied without error (stored and notified). */
  progress?: SharedArrayBuffer;
  /** One Int32 word: the sink thread stores its kernel thread id here at bind (its priority in a paused window). */
  thread?: SharedArrayBuffer;
  compressors: [PageEncoding, CompressorName][];
  /**
   * A multifd channel's sink also checks its frames (bounds, CRC32C, binding), which the channel's connection left
   * unverified: the guest's page count, and the channel's binding nonce when its frames are bound.
   */
  verify?: { pageCount: number; nonce?: Uint8Array };
}

export interface SinkBatch {
  kind: 'batch';
  seq: number;
  buffer: ArrayBuffer;
  offset: number;
  length: number;
  count: number;
  crcs: Uint32Array;
  /** True when `buffer` was transferred (and must come back the same way). */
  transfer: boolean;
  /** A frame to check first (SinkInit.verify): its trailer, header CRC and binding seed; `count`/`crcs` come from it. */
  unverified?: { expected: number; headerCrc: number; seed?: number; sequence: number };
}

/** To the sink thread: point it at a guest (once), or apply a batch. */
export type SinkRequest = { kind: 'bind'; init: SinkInit } | SinkBatch;

/** From the sink thread: a batch applied (or refused). */
export interface SinkReply {
  kind: 'applied';
  seq: number;
  pages: number;
  buffer: ArrayBuffer;
  error?: string;
  /** The error's code when the frame was refused by its check (CHECKSUM, FOREIGN_FRAME, PROTOCOL). */
  code?: string;
}

/** Frames in flight before the connection thread waits: bounds memory at this many maximum frames. */
const MAX_IN_FLIGHT = 8;

function startSinkThread(init?: SinkInit): Worker {
  return startWorkerNextTo(import.meta.url, 'page-sink-worker', { workerData: init ?? null }, true);
}

/**
 * A page-sink thread started ahead of the next incoming migration (an agent holds one). `take` hands it out (or
 * starts one when there is none: several migrations at once), `give` stops it when its migration is done, `warm`
 * starts the next spare (the agent calls it when an incoming migration has ended, not during its switch-over), and
 * `close` stops every thread this pool started, idle or in use.
 *
 * A thread serves one migration only: its isolate may reference the guest's RAM until its next garbage collection,
 * which an idle thread may never run, so reusing it could pin a departed guest's memory.
 */
export class PageSinkPool {
  private idle: Worker | undefined;
  private closed = false;
  /** Every thread started by this pool that has not exited. */
  private readonly live = new Set<Worker>();
  /** Threads started so far. */
  started = 0;
  /** Threads handed out so far (one per migration that used this pool). */
  taken = 0;
  /** Of those, the ones started by `take` because no spare was ready (the migration waited for its boot). */
  startedOnDemand = 0;

  /** Threads alive now, idle or in use. */
  get liveThreads(): number {
    return this.live.size;
  }

  /** True when a started thread waits for the next migration. */
  get ready(): boolean {
    return this.idle !== undefined;
  }

  /** Starts the spare thread now, if there is none, so that the next migration finds it booted. */
  warm(): void {
    if (this.closed || this.idle) return;
    const w = this.start();
    w.unref(); // an idle spare never keeps the process alive
    this.idle = w;
  }

  private start(): Worker {
    const w = startSinkThread();
    this.started++;
    this.live.add(w);
    w.on('error', () => undefined); // the migration using it sees the failure through its own listener
    w.once('exit', () => {
      this.live.delete(w);
      if (this.idle === w) this.idle = undefined;
    });
    return w;
  }

  /** The spare thread, or a new one when there is none. */
  take(): Worker {
    if (this.closed) throw new MigrationError('CANCELLED', 'the page-sink pool is closed');
    let w = this.idle;
    this.idle = undefined;
    if (!w) {
      w = this.start();
      this.startedOnDemand++;
    }
    this.taken++;
    w.ref();
    return w;
  }

  /** Takes back a thread whose migration is done: it is stopped (see the class comment). */
  async give(w: Worker): Promise<void> {
    await w.terminate();
  }

  /** Stops every thread of this pool, idle or in use (a migration still using one then fails and is discarded). */
  async close(): Promise<void> {
    this.closed = true;
    this.idle = undefined;
    await Promise.all([...this.live].map((w) => w.terminate()));
  }
}

export class PageSink {
  private readonly worker: Worker;
  private seq = 0;
  private done = 0;
  private failure: MigrationError | undefined;
  private closed = false;
  private waiters: { until: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  /** Pages applied so far. */
  pagesApplied = 0;
  /** The sink thread's progress word (SinkInit.progress): drain can wait for it without the event loop. */
  private readonly progress = new Int32Array(new SharedArrayBuffer(4));
  /** The sink thread's kernel id (SinkInit.thread): it drains inside the paused window, so it is raised with it. */
  private readonly thread = new Int32Array(new SharedArrayBuffer(4));
  private readonly unregisterThread: () => void;

  constructor(
    guest: Guest,
    ledger: Uint32Array,
    compressors: [PageEncoding, CompressorName][],
    /** Receives each transferred frame buffer back once it is applied. */
    private readonly recycle: (buffer: Buffer) => void,
    /** Where the thread comes from and goes back to; without one, a thread is started and stopped here. */
    private readonly pool?: PageSinkPool,
    /** A multifd channel's sink checks its frames too (SinkInit.verify). */
    verify?: SinkInit['verify'],
    /** The ledger's digest sums (shared): the sink keeps them in step with the CRCs it writes. */
    ledgerSums?: Int32Array,
  ) {
    if (!(ledger.buffer instanceof SharedArrayBuffer)) throw new TypeError('the ledger must be shared');
    if (ledgerSums && !(ledgerSums.buffer instanceof SharedArrayBuffer))
      throw new TypeError('the ledger digest sums must be shared');
    const init: SinkInit = {
      blocks: guest.ram.blocks.map((b) => b.buffer),
      pagesPerBlock: guest.ram.pagesPerBlock,
      pageSize: guest.ram.pageSize,
      ledger: ledger.buffer,
      ...(ledgerSums ? { ledgerSums: ledgerSums.buffer as SharedArrayBuffer } : {}),
      progress: this.progress.buffer as SharedArrayBuffer,
      thread: this.thread.buffer as SharedArrayBuffer,
      compressors,
      ...(verify ? { verify } : {}),
    };
    if (pool) {
      this.worker = pool.take();
      this.worker.postMessage({ kind: 'bind', init } satisfies SinkRequest);
    } else {
      this.worker = startSinkThread(init);
    }
    this.worker.on('message', this.onReply);
    this.worker.on('error', this.onError);
    this.worker.on('exit', this.onExit);
    this.unregisterThread = addSwitchoverThread(() => Atomics.load(this.thread, 0) || null);
  }

  private readonly onReply = (r: SinkReply): void => {
    this.done = r.seq;
    this.pagesApplied += r.pages;
    if (r.error !== undefined) {
      const checked = r.code === 'CHECKSUM' || r.code === 'FOREIGN_FRAME' || r.code === 'PROTOCOL';
      this.fail(
        checked
          ? new MigrationError(r.code as 'CHECKSUM' | 'FOREIGN_FRAME' | 'PROTOCOL', r.error)
          : new MigrationError('PROTOCOL', `corrupt page data: ${r.error}`),
      );
      return;
    }
    this.recycle(Buffer.from(r.buffer));
    this.wake();
  };

  private readonly onError = (err: Error): void => {
    this.fail(new MigrationError('INTERNAL', `page sink failed: ${err.message}`));
  };

  private readonly onExit = (code: number): void => {
    if (this.done < this.seq) this.fail(new MigrationError('INTERNAL', `page sink exited (code ${code})`));
  };

  private fail(e: MigrationError): void {
    if (this.failure) return;
    this.failure = e;
    for (const w of this.waiters.splice(0)) w.reject(e);
  }

  private wake(): void {
    const keep: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (this.done >= w.until) w.resolve();
      else keep.push(w);
    }
    this.waiters = keep;
  }

  private waitFor(until: number): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.done >= until) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ until, resolve, reject }));
  }

  /**
   * Queues a checked PAGES payload (its `count` entries, `crcs[i]` the CRC of entry i's data). Resolves once there is
   * room for the next one. The payload must not be used by the caller afterwards.
   */
  async submit(
    payload: Buffer,
    count: number,
    crcs: Uint32Array,
    unverified?: SinkBatch['unverified'],
  ): Promise<void> {
    if (this.failure) throw this.failure;
    const ab = payload.buffer;
    // A payload that owns its whole buffer (large frames) moves to the sink thread without a copy.
    const transfer =
      ab instanceof ArrayBuffer &&
      payload.byteLength >= 1 << 16 &&
      ab.byteLength < 2 * payload.byteLength + (1 << 16);
    const batch: SinkBatch = {
      kind: 'batch',
      seq: ++this.seq,
      buffer: transfer ? ab : new Uint8Array(payload).buffer,
      offset: transfer ? payload.byteOffset : 0,
      length: payload.length,
      count,
      crcs: crcs.slice(0, count),
      transfer,
      ...(unverified ? { unverified } : {}),
    };
    this.worker.postMessage(batch, transfer ? [batch.buffer] : []);
    await this.waitFor(this.seq - MAX_IN_FLIGHT + 1);
  }

  /**
   * Resolves when every queued page is in RAM and in the ledger; rejects with the sink's failure. Waits first for
   * up to `syncMs` on the sink's progress word (Atomics.wait), so that a switch-over does not wait for the event
   * loop to deliver the sink's last reply behind unrelated work; the replies still arrive later (buffer recycling).
   */
  drain(syncMs = 0): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const until = this.seq;
    if (syncMs > 0 && this.done < until) {
      const end = performance.now() + syncMs;
      for (;;) {
        const at = Atomics.load(this.progress, 0);
        if (at >= until) return Promise.resolve(); // applied, without error (the thread stores only successes)
        const left = end - performance.now();
        if (left <= 0) break;
        Atomics.wait(this.progress, 0, at, left);
      }
    }
    return this.waitFor(until);
  }

  /** Ends this migration's use of the thread, which stops. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unregisterThread(); // its priority back before it stops and its id can be reused
    this.fail(new MigrationError('CANCELLED', 'page sink closed'));
    this.worker.off('message', this.onReply);
    this.worker.off('error', this.onError);
    this.worker.off('exit', this.onExit);
    if (this.pool) await this.pool.give(this.worker);
    else await this.worker.terminate();
  }
}
