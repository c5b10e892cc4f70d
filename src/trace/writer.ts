/**
 * Writing traces: records go out one by one (to memory or to a file as they are made); the header is written
 * first with zero counts and rewritten at the end with the real page and record counts (same length: the meta
 * is padded with room to spare).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { CodecError } from '../errors.js';
import {
  defaultChunkPages,
  encodeHeader,
  encodeRecord,
  type TraceCompression,
  type TraceEffort,
  type TraceHeader,
  type TraceHeaderInit,
  type TraceMethod,
  TraceReader,
} from './format.js';

export class TraceWriter {
  readonly header: Pick<TraceHeader, 'pageSize' | 'compression' | 'chunkPages'>;
  private init: TraceHeaderInit;
  private readonly sink: (bytes: Uint8Array) => void;
  private readonly parts: Uint8Array[] | null;
  private records = 0;
  private lastTs = -1;
  /** Room for the meta JSON, so the final header (which may say more) fits where the first one was. */
  private readonly metaBytes: number;
  /** Bytes written so far (header included). */
  bytes = 0;

  /** Without `sink` the trace is kept in memory (`finish()` returns it). */
  constructor(
    init: TraceHeaderInit,
    sink?: (bytes: Uint8Array) => void,
    private readonly effort: TraceEffort = 'small',
  ) {
    this.init = { ...init, chunkPages: init.chunkPages ?? defaultChunkPages(init.pageSize) };
    this.header = {
      pageSize: init.pageSize,
      compression: init.compression,
      chunkPages: this.init.chunkPages!,
    };
    this.parts = sink ? null : [];
    this.sink = sink ?? ((b) => this.parts!.push(b));
    this.metaBytes = Buffer.byteLength(JSON.stringify(init.meta)) + 512;
    this.put(encodeHeader(this.init, this.metaBytes));
  }

  get recordCount(): number {
    return this.records;
  }

  /** Appends a record: `pages` ascending, `deltas` their XOR deltas (pages.length x pageSize bytes). */
  add(timestampMs: number, pages: ArrayLike<number>, deltas: Uint8Array): number {
    if (this.records === 0 && timestampMs !== 0)
      throw new CodecError('trace: the first record (snapshot) is at 0 ms');
    if (timestampMs < this.lastTs)
      throw new CodecError(`trace: timestamp ${timestampMs} ms goes back in time`);
    const rec = encodeRecord(this.header, timestampMs, pages, deltas, this.effort);
    this.put(rec);
    this.records++;
    this.lastTs = timestampMs;
    return rec.length;
  }

  /** Changes the method the final header states (a recorder that fell back), with its reason in the meta. */
  setMethod(method: TraceMethod, reason: string): void {
    this.init = { ...this.init, method, meta: { ...this.init.meta, methodReason: reason.slice(0, 400) } };
  }

  /** The final header (with counts). In memory, returns the whole trace. */
  finish(pageCount: number): { header: Uint8Array; trace?: Uint8Array } {
    const header = encodeHeader({ ...this.init, pageCount, recordCount: this.records }, this.metaBytes);
    if (this.parts) {
      this.parts[0] = header;
      return { header, trace: Buffer.concat(this.parts) };
    }
    return { header };
  }

  private put(b: Uint8Array): void {
    this.sink(b);
    this.bytes += b.length;
  }
}

/** A TraceWriter onto a file: records are appended as they come; `close` rewrites the header in place. */
export class TraceFileWriter {
  private readonly fd: number;
  readonly writer: TraceWriter;

  constructor(path: string, init: TraceHeaderInit, effort: TraceEffort = 'small') {
    this.fd = openSync(path, 'w');
    const fd = this.fd;
    this.writer = new TraceWriter(
      init,
      (b) => {
        writeSync(fd, b);
      },
      effort,
    );
  }

  close(pageCount: number): void {
    try {
      const header = this.writer.finish(pageCount).header;
      writeSync(this.fd, header, 0, header.length, 0);
    } finally {
      closeSync(this.fd);
    }
  }
}

/**
 * Re-encodes a whole trace with another compressor at the `small` effort (what a recording does at the end:
 * it records with fast deflate so a snapshot fits in its interval, then packs).
 */
export function packTrace(bytes: Uint8Array, compression: TraceCompression): Uint8Array {
  const r = TraceReader.open(bytes);
  const { header } = r;
  const w = new TraceWriter({ ...header, compression });
  for (let i = 0; i < r.records.length; i++) {
    const pages = r.pages(i);
    const deltas = new Uint8Array(pages.length * header.pageSize);
    let k = 0;
    r.forEachPage(i, (_p, d) => {
      deltas.set(d, k * header.pageSize);
      k++;
    });
    w.add(r.records[i]!.timestampMs, pages, deltas);
  }
  return w.finish(header.pageCount).trace!;
}
