/**
 * Main-thread side of the destination's page sink (see page-sink-worker.ts): hands checked PAGES payloads to the
 * sink thread, zero-copy when the payload owns its buffer, keeps at most a few in flight (so a slow sink slows the
 * socket instead of growing memory), and says when everything sent has been applied.
 */
import type { Worker } from 'node:worker_threads';
import type { CompressorName } from '../codec/index.js';
import { MigrationError } from '../errors.js';
import { type Guest, startWorkerNextTo } from '../guest/index.js';
import type { PageEncoding } from './protocol.js';

export interface SinkInit {
  blocks: SharedArrayBuffer[];
  pagesPerBlock: number;
  pageSize: number;
  ledger: SharedArrayBuffer;
  compressors: [PageEncoding, CompressorName][];
}

export interface SinkBatch {
  seq: number;
  buffer: ArrayBuffer;
  offset: number;
  length: number;
  count: number;
  crcs: Uint32Array;
  /** True when `buffer` was transferred (and must come back the same way). */
  transfer: boolean;
}

export interface SinkReply {
  seq: number;
  pages: number;
  buffer: ArrayBuffer;
  error?: string;
}

/** Frames in flight before the connection thread waits: bounds memory at this many maximum frames. */
const MAX_IN_FLIGHT = 8;

export class PageSink {
  private readonly worker: Worker;
  private seq = 0;
  private done = 0;
  private failure: MigrationError | undefined;
  private waiters: { until: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  /** Pages applied so far. */
  pagesApplied = 0;

  constructor(
    guest: Guest,
    ledger: Uint32Array,
    compressors: [PageEncoding, CompressorName][],
    /** Receives each transferred frame buffer back once it is applied. */
    private readonly recycle: (buffer: Buffer) => void,
  ) {
    if (!(ledger.buffer instanceof SharedArrayBuffer)) throw new TypeError('the ledger must be shared');
    const init: SinkInit = {
      blocks: guest.ram.blocks.map((b) => b.buffer),
      pagesPerBlock: guest.ram.pagesPerBlock,
      pageSize: guest.ram.pageSize,
      ledger: ledger.buffer,
      compressors,
    };
    this.worker = startWorkerNextTo(import.meta.url, 'page-sink-worker', { workerData: init }, true);
    this.worker.on('message', (r: SinkReply) => this.onReply(r));
    this.worker.on('error', (err) =>
      this.fail(new MigrationError('INTERNAL', `page sink failed: ${err.message}`)),
    );
    this.worker.on('exit', (code) => {
      if (this.done < this.seq) this.fail(new MigrationError('INTERNAL', `page sink exited (code ${code})`));
    });
  }

  private onReply(r: SinkReply): void {
    this.done = r.seq;
    this.pagesApplied += r.pages;
    if (r.error !== undefined) {
      this.fail(new MigrationError('PROTOCOL', `corrupt page data: ${r.error}`));
      return;
    }
    this.recycle(Buffer.from(r.buffer));
    this.wake();
  }

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
  async submit(payload: Buffer, count: number, crcs: Uint32Array): Promise<void> {
    if (this.failure) throw this.failure;
    const ab = payload.buffer;
    // A payload that owns its whole buffer (large frames) moves to the sink thread without a copy.
    const transfer =
      ab instanceof ArrayBuffer &&
      payload.byteLength >= 1 << 16 &&
      ab.byteLength < 2 * payload.byteLength + (1 << 16);
    const batch: SinkBatch = {
      seq: ++this.seq,
      buffer: transfer ? ab : new Uint8Array(payload).buffer,
      offset: transfer ? payload.byteOffset : 0,
      length: payload.length,
      count,
      crcs: crcs.slice(0, count),
      transfer,
    };
    this.worker.postMessage(batch, transfer ? [batch.buffer] : []);
    await this.waitFor(this.seq - MAX_IN_FLIGHT + 1);
  }

  /** Resolves when every queued page is in RAM and in the ledger; rejects with the sink's failure. */
  drain(): Promise<void> {
    return this.waitFor(this.seq);
  }

  async close(): Promise<void> {
    this.fail(new MigrationError('CANCELLED', 'page sink closed'));
    await this.worker.terminate();
  }
}
