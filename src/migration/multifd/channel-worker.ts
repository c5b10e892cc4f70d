/**
 * A multifd channel's thread on the source: encodes its share of each round's pages (zero check, XBZRLE against its
 * own cache, compression, CRC32C into the shared ledger) into sealed PAGES frames, and hands them to the main thread,
 * which writes them to the channel's socket (a socket cannot move to another thread in Node). At most a few frames
 * are in flight: a slow link or the rate limit slows this thread, not memory.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PageCache } from '../../cache/index.js';
import { allocatePageArena, type Compressor, compressor } from '../../codec/index.js';
import { DIGEST_WORDS, recordCrc } from '../digest.js';
import { zeroPageCrc } from '../ledger.js';
// pages.ts, not the folder's index: the index's message schemas (zod) cost each channel's new thread ~40 ms of CPU.
import { PagesFrameBuilder } from '../protocol/pages.js';
import { PageEncoder } from '../source/page-encoder.js';
import type { EncoderCounters, EncoderInit, EncoderReply, EncoderRequest } from './channel-protocol.js';
import { SHARD_PAGES } from './shard.js';

const port = parentPort!;
const init = workerData as EncoderInit;
const { pageSize, pagesPerBlock } = init;
const views = init.blocks.map((b) => new Uint8Array(b));
const ledgerCrcs = new Uint32Array(init.ledger);
/** Without the shared sums (an older main thread), private ones: the CRCs are still right, the sums unused. */
const ledgerSums = new Int32Array(init.ledgerSums ?? new SharedArrayBuffer(DIGEST_WORDS * 4));
const zeroCrc = zeroPageCrc(pageSize);

/** Frames posted and not yet written to the socket, beyond which encoding waits. */
const MAX_IN_FLIGHT = 4;
let inFlight = 0;
let wakeCredit: (() => void) | undefined;

function post(m: EncoderReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(m, transfer);
}

const builder = new PagesFrameBuilder(
  init.maxPayload,
  (frame) => {
    // The buffer moves to the main thread (no copy); the builder takes a fresh one for the next frame.
    inFlight++;
    const buffer = frame.buffer as ArrayBuffer;
    post({ kind: 'frame', buffer, offset: frame.byteOffset, length: frame.length }, [buffer]);
  },
  pageSize,
);

function fresh(): EncoderCounters {
  return {
    pages: { zero: 0, raw: 0, xbzrle: 0, rle: 0, compressed: 0, skipped: 0 },
    xbzrle: { encodedBytes: 0, pageBytes: 0, overflows: 0, hits: 0, misses: 0 },
  };
}
let counters = fresh();
const reportPages = { ...counters.pages, redirtied: 0 };
const reportXbzrle = { encodedBytes: 0, pageBytes: 0, overflows: 0 };

const generic: Compressor | undefined =
  init.compress === 'deflate' || init.compress === 'zstd' || init.compress === 'lz4'
    ? compressor(init.compress)
    : undefined;

function page(p: number): Uint8Array {
  const b = Math.floor(p / pagesPerBlock);
  const at = (p - b * pagesPerBlock) * pageSize;
  return views[b]!.subarray(at, at + pageSize);
}

const encoder = new PageEncoder({
  ram: { page, pageSize },
  // Hot-last skipping needs the dirty log, which stays on the main thread: a channel sends every page it is given.
  dirtyLog: { isDirty: () => false },
  ledger: {
    set: (p, crc) => recordCrc(ledgerCrcs, ledgerSums, p, crc),
    setZero: (p) => recordCrc(ledgerCrcs, ledgerSums, p, zeroCrc),
  },
  compressor: generic,
  frames: { builder },
  counters: { pages: reportPages, xbzrle: reportXbzrle },
  compress: init.compress,
  verify: init.verify,
});

if (init.cacheBytes >= pageSize * init.cacheWays) {
  encoder.cache = new PageCache({
    bytes: init.cacheBytes,
    pageSize,
    ways: init.cacheWays,
    allocate: (bytes) => {
      const arena = allocatePageArena(bytes + pageSize);
      encoder.scratch = arena.subarray(bytes, bytes + pageSize);
      return arena.subarray(0, bytes);
    },
  });
}

const zeros = new Uint8Array(SHARD_PAGES * pageSize);

/** True when the SHARD_PAGES pages from `p` (aligned, inside one block) are all zero. */
function zeroRun(p: number): boolean {
  const b = Math.floor(p / pagesPerBlock);
  if (Math.floor((p + SHARD_PAGES - 1) / pagesPerBlock) !== b) return false;
  const at = (p - b * pagesPerBlock) * pageSize;
  return Buffer.compare(views[b]!.subarray(at, at + zeros.length), zeros) === 0;
}

async function credit(): Promise<void> {
  while (inFlight >= MAX_IN_FLIGHT) await new Promise<void>((resolve) => (wakeCredit = resolve));
}

async function encodePages(pages: Uint32Array, isFresh: boolean, allowXbzrle: boolean): Promise<void> {
  const cache = encoder.cache;
  for (let i = 0; i < pages.length; i++) {
    const p = pages[i]!;
    // First round: skip a whole shard of untouched pages with one compare (the destination starts zeroed).
    if (
      isFresh &&
      p % SHARD_PAGES === 0 &&
      i + SHARD_PAGES <= pages.length &&
      pages[i + SHARD_PAGES - 1] === p + SHARD_PAGES - 1 &&
      zeroRun(p)
    ) {
      reportPages.zero += SHARD_PAGES;
      if (cache) for (let q = p; q < p + SHARD_PAGES; q++) cache.invalidate(q);
      i += SHARD_PAGES - 1;
      continue;
    }
    encoder.encode(p, isFresh, allowXbzrle);
    if (inFlight >= MAX_IN_FLIGHT) await credit();
  }
}

/** Counters since the last sync point. */
function take(): EncoderCounters {
  const c = counters;
  const { redirtied: _r, ...pages } = reportPages;
  c.pages = pages;
  c.xbzrle.encodedBytes = reportXbzrle.encodedBytes;
  c.xbzrle.pageBytes = reportXbzrle.pageBytes;
  c.xbzrle.overflows = reportXbzrle.overflows;
  const st = encoder.cache?.stats();
  c.xbzrle.hits = st?.hits ?? 0;
  c.xbzrle.misses = st?.misses ?? 0;
  counters = fresh();
  for (const k of Object.keys(pages) as (keyof typeof pages)[]) reportPages[k] = 0;
  reportXbzrle.encodedBytes = 0;
  reportXbzrle.pageBytes = 0;
  reportXbzrle.overflows = 0;
  return c;
}

// Requests are served one after the other, in order: a sync point follows every page queued before it.
const queue: EncoderRequest[] = [];
let running = false;

async function serve(): Promise<void> {
  if (running) return;
  running = true;
  try {
    for (let m = queue.shift(); m; m = queue.shift()) {
      if (m.kind === 'pages') await encodePages(m.pages, m.fresh, m.allowXbzrle);
      else if (m.kind === 'sync') {
        builder.finishFrame();
        await credit();
        post({
          kind: 'synced',
          seq: m.seq,
          counters: take(),
          cacheBytes: encoder.cache?.capacityBytes ?? 0,
        });
      }
    }
  } catch (err) {
    post({ kind: 'error', message: err instanceof Error ? err.message : String(err) });
  } finally {
    running = false;
  }
}

port.on('message', (m: EncoderRequest) => {
  if (m.kind === 'written') {
    inFlight--;
    // Fresh frame buffers cost a page fault per 4 KiB: the ones the socket is done with are reused.
    builder.recycle(Buffer.from(m.buffer));
    const w = wakeCredit;
    wakeCredit = undefined;
    w?.();
    return;
  }
  queue.push(m);
  void serve();
});

post({ kind: 'ready' });
