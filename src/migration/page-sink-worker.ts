/**
 * The destination's page-sink thread: applies checked PAGES payloads to the incoming guest's RAM, in the order the
 * source sent them, and writes each page's CRC into the shared ledger. It exists so that the first-touch page
 * faults of fresh guest RAM (~3 µs a page here) and the copies run beside the connection thread, which only reads
 * the socket and verifies frames.
 *
 * It can start before its migration does: `bind` then points it at the guest's RAM and ledger. An agent keeps one
 * started ahead of time (PageSinkPool), so an incoming migration does not wait for a thread to boot and load the
 * codecs.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type Compressor, compressor } from '../codec/index.js';
import { kernelThreadId } from '../thread-id.js';
import { Crc32cShifter } from './crc.js';
import { DIGEST_WORDS, initDigestSums, recordCrc } from './digest.js';
import { pageCrc, zeroPageCrc } from './ledger.js';
import { copyPageInto } from './page-copy.js';
import { decodePageInto } from './page-decode.js';
import type { SinkBatch, SinkInit, SinkReply, SinkRequest } from './page-sink.js';
import {
  Command,
  FrameBinding,
  FrameSender,
  PAGE_ENTRY_HEADER_BYTES,
  PAGES_COUNT_BYTES,
  PageEncoding,
  pageEntryScratch,
  readPageEntryHeader,
  verifyPagesFrame,
} from './protocol/index.js';

const port = parentPort!;

interface Target {
  views: Uint8Array[];
  ledger: Uint32Array;
  /** The ledger digest's running sums, updated with every CRC written here (digest.ts). */
  sums: Int32Array;
  /** Last batch applied without error (SinkInit.progress), if the main thread gave a word for it. */
  progress: Int32Array | undefined;
  pageSize: number;
  pagesPerBlock: number;
  zeroCrc: number;
  compressors: Map<number, Compressor>;
  /** A multifd channel's sink: checks each frame before applying it. */
  verify?: { pageCount: number; shifter: Crc32cShifter; binding?: FrameBinding; entryCrcs: Uint32Array };
}

/** The guest being received; undefined until `bind`. */
let target: Target | undefined;

function bind(init: SinkInit): void {
  if (init.thread) Atomics.store(new Int32Array(init.thread), 0, kernelThreadId() ?? 0);
  const compressors = new Map<number, Compressor>();
  for (const [encoding, name] of init.compressors) compressors.set(encoding, compressor(name));
  const ledger = new Uint32Array(init.ledger);
  let sums: Int32Array;
  if (init.ledgerSums) sums = new Int32Array(init.ledgerSums);
  else {
    sums = new Int32Array(DIGEST_WORDS);
    initDigestSums(ledger, sums);
  }
  target = {
    views: init.blocks.map((b) => new Uint8Array(b)),
    ledger,
    sums,
    progress: init.progress ? new Int32Array(init.progress) : undefined,
    pageSize: init.pageSize,
    pagesPerBlock: init.pagesPerBlock,
    zeroCrc: zeroPageCrc(init.pageSize),
    compressors,
    ...(init.verify
      ? {
          verify: {
            pageCount: init.verify.pageCount,
            shifter: new Crc32cShifter(init.pageSize),
            ...(init.verify.nonce
              ? { binding: new FrameBinding(init.verify.nonce, FrameSender.SOURCE) }
              : {}),
            entryCrcs: new Uint32Array(1024),
          },
        }
      : {}),
  };
}

/** Checks a channel's frame (bounds, CRC, binding) as the connection thread does for the main stream. */
function check(v: NonNullable<Target['verify']>, pageSize: number, batch: SinkBatch): void {
  const u = batch.unverified!;
  const payload = Buffer.from(batch.buffer, batch.offset, batch.length);
  const r = verifyPagesFrame(
    {
      command: Command.PAGES,
      payload,
      unverified: {
        expected: u.expected,
        headerCrc: u.headerCrc,
        ...(v.binding && u.seed !== undefined
          ? { binding: { seed: u.seed, sequence: u.sequence, of: v.binding } }
          : {}),
      },
    },
    v.pageCount,
    pageSize,
    v.shifter,
    v.entryCrcs,
  );
  v.entryCrcs = r.entryCrcs;
  batch.count = r.count;
  batch.crcs = r.entryCrcs;
}

/** The entry header `apply` reads into: one for the thread, so the loop allocates nothing per entry. */
const entry = pageEntryScratch();

/** Applies one batch; its entries were bound-checked and checksummed by the connection thread. */
function apply(t: Target, batch: SinkBatch): number {
  const { views, ledger, sums, pageSize, pagesPerBlock, zeroCrc, compressors } = t;
  if (batch.unverified) {
    if (!t.verify) throw new Error('page sink: an unchecked frame for a sink that does not check');
    check(t.verify, pageSize, batch);
  }
  const payload = new Uint8Array(batch.buffer, batch.offset, batch.length);
  const crcs = batch.crcs;
  let offset = PAGES_COUNT_BYTES;
  for (let i = 0; i < batch.count; i++) {
    readPageEntryHeader(payload, offset, entry);
    const p = entry.page;
    const encoding = entry.encoding as PageEncoding;
    const length = entry.length;
    offset += PAGE_ENTRY_HEADER_BYTES;
    const data = payload.subarray(offset, offset + length);
    offset += length;
    const b = Math.floor(p / pagesPerBlock);
    const at = (p - b * pagesPerBlock) * pageSize;
    const page = views[b]!.subarray(at, at + pageSize);
    if (encoding === PageEncoding.ZERO) {
      page.fill(0);
      recordCrc(ledger, sums, p, zeroCrc);
      continue;
    }
    if (encoding === PageEncoding.RAW) {
      copyPageInto(data, page); // through an aligned buffer: page data sits at odd offsets of the frame
      recordCrc(ledger, sums, p, crcs[i]!); // the CRC of these very bytes, computed while checking the frame
      continue;
    }
    decodePageInto(p, encoding, data, page, compressors);
    recordCrc(ledger, sums, p, pageCrc(page));
  }
  return batch.count;
}

// Started for one migration (no pool): bound from the start.
if (workerData) bind(workerData as SinkInit);

port.on('message', (m: SinkRequest) => {
  if (m.kind === 'bind') {
    bind(m.init);
    return;
  }
  let reply: SinkReply;
  try {
    if (!target) throw new Error('page sink: a batch arrived before bind');
    reply = { kind: 'applied', seq: m.seq, pages: apply(target, m), buffer: m.buffer };
    if (target.progress) {
      Atomics.store(target.progress, 0, m.seq);
      Atomics.notify(target.progress, 0);
    }
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    reply = {
      kind: 'applied',
      seq: m.seq,
      pages: 0,
      buffer: m.buffer,
      error: err instanceof Error ? err.message : String(err),
      ...(typeof code === 'string' ? { code } : {}),
    };
  }
  // Hand the frame buffer back so the connection thread can reuse it for the next large frame.
  port.postMessage(reply, m.transfer ? [m.buffer] : []);
});
