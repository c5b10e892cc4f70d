/**
 * Encoding one page into the current PAGES frame. Like QEMU's ram_save_target_page, small savers are tried in order:
 * save_zero_page, save_xbzrle_page, then the whole page (RLE, the generic compressor, or raw, whichever is smaller).
 * The encoder gets only what it needs: the RAM and dirty log, the XBZRLE cache, the compressor, the ledger, the
 * frame output and a few counters (the report's own objects: updating them costs nothing per page).
 *
 * The live page is first copied to `scratch` so that a vCPU writing it meanwhile cannot make the bytes sent, the
 * XBZRLE cache and the ledger disagree (QEMU copies for the same reason). Hot path: no allocation per page. While
 * the guest is paused (`pagesStable`: the stop-and-copy, a cold migration) nothing can write a page, so a raw page
 * goes into the frame as a view of guest RAM, not a copy, and leaves in the socket's writev.
 */
import type { PageCache } from '../../cache/index.js';
import { type Compressor, encodeRleInto, encodeXbzrleInto, isZeroPage } from '../../codec/index.js';
import type { DirtyLog, GuestRam } from '../../guest/index.js';
import { type PageLedger, pageCrc } from '../ledger.js';
import type { CompressMethod, VerifyMethod } from '../options.js';
// wire.ts, not the folder's index: a multifd channel's thread loads this file, and the index's message schemas (zod)
// cost each new thread about 40 ms of CPU to load.
import { PageEncoding } from '../protocol/wire.js';
import type { MigrationReport } from '../stats.js';
import type { FrameOutput } from './frame-output.js';

/** The counters the encoder keeps (shared with the report). */
export interface PageCounters {
  pages: MigrationReport['pages'];
  xbzrle: Pick<MigrationReport['xbzrle'], 'encodedBytes' | 'pageBytes' | 'overflows'>;
}

/** Cache admission (cache-sizing.ts): which missed pages take a cache slot, and growth as round 1 measures. */
export interface CacheAdmission {
  admits(p: number): boolean;
  /** After a miss in round 1 was sent (a resize may move `scratch`, so never before the send). */
  afterRound1Miss(admitted: boolean): void;
}

export interface PageEncoderDeps {
  /** What the encoder reads of the guest (a multifd channel's thread passes views of the shared RAM). */
  ram: Pick<GuestRam, 'page' | 'pageSize'>;
  dirtyLog: Pick<DirtyLog, 'isDirty'>;
  ledger: Pick<PageLedger, 'set' | 'setZero'>;
  compressor: Compressor | undefined;
  frames: Pick<FrameOutput, 'builder'>;
  counters: PageCounters;
  compress: CompressMethod;
  verify: VerifyMethod;
}

const COMPRESS_ENCODING = {
  deflate: PageEncoding.DEFLATE,
  zstd: PageEncoding.ZSTD,
  lz4: PageEncoding.LZ4,
} as const;

export class PageEncoder {
  /** Copy of the page being encoded (never the live page); inside the cache's arena once the cache exists. */
  scratch: Uint8Array;
  /** The XBZRLE cache, once allocated (cache-sizing.ts). */
  cache: PageCache | undefined;
  admission: CacheAdmission | undefined;
  /** While true, pages already dirty again are skipped (they will be in the next sync)... */
  skipRedirtied = false;
  /** ...those of them this allows (hot-last: with XBZRLE, only pages whose old copy is cached; hot-last.ts). */
  mayDefer: ((p: number) => boolean) | undefined;
  /**
   * True only while no vCPU can write guest RAM until the frames queued now have reached the socket (the guest is
   * paused): raw pages are then sent as views of RAM instead of copies (send-pages.ts sets it).
   */
  pagesStable = false;
  private readonly ram: PageEncoderDeps['ram'];
  private readonly dirtyLog: PageEncoderDeps['dirtyLog'];
  private readonly ledger: PageEncoderDeps['ledger'];
  private readonly compressor: Compressor | undefined;
  private frames: PageEncoderDeps['frames'];
  private readonly pages: PageCounters['pages'];
  private readonly xbzrle: PageCounters['xbzrle'];
  private readonly compress: CompressMethod;
  private readonly verify: boolean;
  private readonly pageSize: number;

  constructor(d: PageEncoderDeps) {
    this.ram = d.ram;
    this.dirtyLog = d.dirtyLog;
    this.ledger = d.ledger;
    this.compressor = d.compressor;
    this.frames = d.frames;
    this.pages = d.counters.pages;
    this.xbzrle = d.counters.xbzrle;
    this.compress = d.compress;
    this.verify = d.verify !== 'none';
    this.pageSize = d.ram.pageSize;
    this.scratch = new Uint8Array(this.pageSize);
  }

  /** Encodes post-copy page `p` into `out`'s frames instead of the main ones (the postcopy-preempt channel). */
  encodeInto(out: FrameOutput, p: number): void {
    const main = this.frames;
    this.frames = out;
    try {
      this.encode(p, false, false);
    } finally {
      this.frames = main;
    }
  }

  /**
   * Encodes page `p`. `fresh` = the destination still holds zeros for this page (first round), so a zero page need
   * not travel; `allowXbzrle` = a delta may be sent (never in post-copy, whose pages replace nothing).
   */
  encode(p: number, fresh: boolean, allowXbzrle: boolean): void {
    if (this.skipRedirtied && this.dirtyLog.isDirty(p) && (this.mayDefer === undefined || this.mayDefer(p))) {
      // Written again since the sync that listed it: sending it now would be wasted, the next sync has it.
      this.pages.redirtied++;
      return;
    }
    const page = this.ram.page(p);
    const cache = this.cache;
    if (cache !== undefined && allowXbzrle) {
      this.saveWithCache(cache, p, page, fresh);
      return;
    }
    if (cache !== undefined) cache.invalidate(p);
    if (this.compress === 'none') {
      this.saveRawInPlace(p, page, fresh);
      return;
    }
    const scratch = this.scratch;
    scratch.set(page);
    if (this.saveZeroPage(p, scratch, fresh)) return;
    let crc: number | undefined;
    if (this.verify) {
      crc = pageCrc(scratch);
      this.ledger.set(p, crc);
    }
    this.saveWholePage(p, scratch, crc);
  }

  /** Fast path without compression: copy the live page once, judge the copy, put it in the frame. */
  private saveRawInPlace(p: number, page: Uint8Array, fresh: boolean): void {
    const builder = this.frames.builder;
    if (this.pagesStable && this.verify && builder.takesViews) {
      // The guest is paused: the page is the copy. Judge it in place and send a view of it (no copy).
      if (this.saveZeroPage(p, page, fresh)) return;
      const crc = pageCrc(page);
      this.ledger.set(p, crc);
      builder.commitView(p, page, crc);
      this.pages.raw++;
      return;
    }
    // The live page goes to the aligned private scratch first, then into the frame: V8 copies out of shared memory
    // a byte at a time when the target is misaligned, as page data in a frame is (9-byte entry headers), so the
    // two aligned-or-memmove copies cost less than the one direct copy (page-copy.ts). The scratch is the copy the
    // zero check, the CRC and the frame all see: a vCPU writing the page meanwhile cannot make them disagree.
    const scratch = this.scratch;
    scratch.set(page);
    if (this.saveZeroPage(p, scratch, fresh)) return;
    builder.reserve(this.pageSize).set(scratch);
    if (!this.verify) {
      builder.commit(p, PageEncoding.RAW, this.pageSize);
    } else {
      // One CRC pass serves the ledger and the frame's trailer.
      const crc = pageCrc(scratch);
      this.ledger.set(p, crc);
      builder.commit(p, PageEncoding.RAW, this.pageSize, crc);
    }
    this.pages.raw++;
  }

  /** save_zero_page: true when `data` is all zeros (sent as a ZERO entry unless the destination already has zeros). */
  private saveZeroPage(p: number, data: Uint8Array, fresh: boolean): boolean {
    if (!isZeroPage(data)) return false;
    this.pages.zero++;
    this.ledger.setZero(p);
    if (fresh) return true;
    this.frames.builder.reserve(0);
    this.frames.builder.commit(p, PageEncoding.ZERO, 0);
    return true;
  }

  /** The XBZRLE path: a zero page, else a delta against the cached copy on a hit, else the whole page (a miss). */
  private saveWithCache(cache: PageCache, p: number, page: Uint8Array, fresh: boolean): void {
    const scratch = this.scratch;
    scratch.set(page);
    if (isZeroPage(scratch)) {
      cache.invalidate(p);
      this.saveZeroPage(p, scratch, fresh);
      return;
    }
    const crc = this.verify ? pageCrc(scratch) : undefined;
    const slot = cache.lookup(p);
    if (slot >= 0) {
      this.saveXbzrlePage(cache, slot, p, scratch, crc);
      return;
    }
    // A miss: no copy of p is cached, so sending it uncached keeps the cache = what the destination holds.
    const a = this.admission;
    const admit = a === undefined || a.admits(p);
    cache.insert(p, scratch, admit);
    if (crc !== undefined) this.ledger.set(p, crc);
    this.saveWholePage(p, scratch, crc);
    if (a !== undefined && fresh) a.afterRound1Miss(admit);
  }

  /** save_xbzrle_page, on a hit: the delta, nothing when unchanged, the whole page when the delta overflows. */
  private saveXbzrlePage(
    cache: PageCache,
    slot: number,
    p: number,
    data: Uint8Array,
    crc: number | undefined,
  ): void {
    const builder = this.frames.builder;
    const out = builder.reserve(this.pageSize);
    const len = encodeXbzrleInto(cache.slotView(slot), data, out, this.pageSize);
    if (len === 0) {
      // Dirty but identical to what the destination holds: nothing to send (QEMU skips these too).
      this.pages.skipped++;
      return;
    }
    cache.update(slot, data);
    if (crc !== undefined) this.ledger.set(p, crc);
    if (len > 0) {
      builder.commit(p, PageEncoding.XBZRLE, len);
      this.pages.xbzrle++;
      this.xbzrle.encodedBytes += len;
      this.xbzrle.pageBytes += this.pageSize;
      return;
    }
    this.xbzrle.overflows++;
    this.saveWholePage(p, data, crc);
  }

  /** The page without a previous copy: RLE or the generic compressor when smaller than the page, else raw. */
  private saveWholePage(p: number, data: Uint8Array, crc: number | undefined): void {
    if (this.compress === 'rle') {
      if (this.saveRlePage(p, data)) return;
    } else if (this.compressor) {
      if (this.saveCompressedPage(this.compressor, p, data)) return;
    }
    const builder = this.frames.builder;
    builder.reserve(this.pageSize).set(data);
    builder.commit(p, PageEncoding.RAW, this.pageSize, crc);
    this.pages.raw++;
  }

  private saveRlePage(p: number, data: Uint8Array): boolean {
    const builder = this.frames.builder;
    const out = builder.reserve(this.pageSize);
    const len = encodeRleInto(data, out, this.pageSize - 1);
    if (len <= 0) return false;
    builder.commit(p, PageEncoding.RLE, len);
    this.pages.rle++;
    return true;
  }

  private saveCompressedPage(compressor: Compressor, p: number, data: Uint8Array): boolean {
    const c = compressor.compress(data);
    if (c.length >= this.pageSize) return false;
    const builder = this.frames.builder;
    builder.reserve(c.length).set(c);
    builder.commit(p, COMPRESS_ENCODING[compressor.name], c.length);
    this.pages.compressed++;
    return true;
  }
}
