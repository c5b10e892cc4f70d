/**
 * The XBZRLE cache's life: allocation (in one WebAssembly arena with the encoder's scratch copy, so the SIMD encoder
 * reads both in place: docs/codecs.md), cache admission (which missed pages take a slot) and dynamic sizing (from the
 * warm set at pre-copy start, growth from what round 1 measures, then between rounds). The decisions are policy.ts's;
 * this file applies them and records them in the report.
 */
import { PageCache } from '../../cache/index.js';
import { allocatePageArena } from '../../codec/index.js';
import type { DirtyLog } from '../../guest/index.js';
import type { MigrationOptions } from '../options.js';
import { admitToCache, admittedCacheGrowth, initialAdmittedCacheSize, nextCacheSize } from '../policy.js';
import type { MigrationReport } from '../stats.js';
import type { CacheAdmission, PageEncoder } from './page-encoder.js';

/** Cache statistics at one point, to measure a round by difference. */
export interface CacheCounters {
  hits: number;
  misses: number;
  pageBytes: number;
  encoded: number;
  overflows: number;
}

export class XbzrleCacheSizing {
  /** Bytes the cache starts with; 0 = no cache (XBZRLE off, or a budget below one set). */
  readonly bytesAtStart: number;
  private readonly useAdmission: boolean;
  private readonly pageSize: number;

  constructor(
    private readonly o: MigrationOptions,
    private readonly r: MigrationReport,
    private readonly dirtyLog: DirtyLog,
    private readonly encoder: PageEncoder,
    private readonly pageCount: number,
    private readonly event: (text: string) => void,
  ) {
    this.pageSize = encoder.scratch.length;
    // Dynamic sizing starts small: the smallest cache here, the warm set when pre-copy starts (startAdmission), then
    // growth from what round 1 measures, with cache admission deciding which pages take a slot (policy.ts).
    this.useAdmission = o.xbzrle && o.cacheSizing === 'dynamic';
    const bytes = this.useAdmission ? Math.min(this.minBytes(), o.xbzrleCacheMaxBytes) : o.xbzrleCacheBytes;
    this.bytesAtStart = o.xbzrle && bytes >= this.pageSize * o.cacheWays ? bytes : 0;
  }

  get cache(): PageCache | undefined {
    return this.encoder.cache;
  }

  /** Allocates the cache (the cache's copies and the encoder's scratch copy share one arena). */
  allocate(): void {
    if (this.bytesAtStart === 0 || this.encoder.cache) return;
    const encoder = this.encoder;
    const pageSize = this.pageSize;
    const cache = new PageCache({
      bytes: this.bytesAtStart,
      pageSize,
      ways: this.o.cacheWays,
      allocate: (bytes) => {
        const arena = allocatePageArena(bytes + pageSize);
        encoder.scratch = arena.subarray(bytes, bytes + pageSize);
        return arena.subarray(0, bytes);
      },
    });
    encoder.cache = cache;
    this.r.xbzrle.cacheBytes = cache.capacityBytes;
  }

  /** Copies the cache's hit and miss counts into the report. */
  report(): void {
    const cache = this.encoder.cache;
    if (!cache) return;
    const st = cache.stats();
    this.r.xbzrle.cacheHits = st.hits;
    this.r.xbzrle.cacheMisses = st.misses;
  }

  counters(): CacheCounters {
    const st = this.encoder.cache?.stats();
    const x = this.r.xbzrle;
    return {
      hits: st?.hits ?? 0,
      misses: st?.misses ?? 0,
      pageBytes: x.pageBytes,
      encoded: x.encodedBytes,
      overflows: x.overflows,
    };
  }

  /**
   * Admission starts with pre-copy: `warm` = the pages the first sync returned (written in the window before
   * migration). The cache grows from its smallest size to the warm set with a margin.
   */
  startAdmission(warm: Uint32Array): void {
    if (!this.useAdmission || !this.encoder.cache) return;
    this.encoder.admission = new Admission(this, this.dirtyLog, warm, this.pageCount, this.r.pages);
    const size = initialAdmittedCacheSize({
      pageSize: this.pageSize,
      warmPages: warm.length,
      minBytes: this.minBytes(),
      maxBytes: this.o.xbzrleCacheMaxBytes,
    });
    this.setSize(size, `${warm.length} pages written before migration`);
  }

  /** Round 1's growth check (every 1/64 of RAM): grows when two checks in a row want it. */
  grow(a: Admission, progress: number): void {
    const cache = this.encoder.cache!;
    const writtenPages = this.dirtyLog.count();
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
      this.setSize(
        next,
        `${a.admitted} pages admitted, ${writtenPages} written at ${(progress * 100).toFixed(0)}% of round 1`,
      );
    }
  }

  /** Dynamic sizing between rounds, from the round's cache statistics. */
  afterRound(before: CacheCounters, after: CacheCounters, hot: number, dirty: number): void {
    const cache = this.encoder.cache;
    if (!cache || this.o.cacheSizing !== 'dynamic') return;
    const next = nextCacheSize(
      cache.capacityBytes,
      {
        hits: after.hits - before.hits,
        misses: after.misses - before.misses,
        xbzrlePageBytes: after.pageBytes - before.pageBytes,
        xbzrleEncodedBytes: after.encoded - before.encoded,
        overflows: after.overflows - before.overflows,
        hotPages: hot,
        dirtyPages: dirty,
      },
      { pageSize: this.pageSize, minBytes: this.minBytes(), maxBytes: this.o.xbzrleCacheMaxBytes },
    );
    this.setSize(
      keepPinned(next, cache.stats().pinned, this.pageSize, this.o.xbzrleCacheMaxBytes),
      'between rounds',
    );
  }

  private minBytes(): number {
    return this.pageSize * 64 * this.o.cacheWays;
  }

  /** Resizes the cache, recording the resize and the peak. */
  private setSize(bytes: number, why: string): void {
    const cache = this.encoder.cache!;
    const before = cache.capacityBytes;
    cache.resize(bytes);
    const x = this.r.xbzrle;
    if (cache.capacityBytes !== before) {
      x.cacheBytes = cache.capacityBytes;
      x.cacheResizes.push({ round: this.r.rounds, bytes: cache.capacityBytes });
      this.event(`XBZRLE cache resized ${before} → ${cache.capacityBytes} bytes (${why})`);
    }
    x.cacheBytesPeak = Math.max(x.cacheBytesPeak, cache.capacityBytes);
  }
}

/**
 * A size between rounds that keeps the pinned copies (hot-last's held pages, whose stop-and-copy deltas need them):
 * never below twice them (pins are bounded to half the cache), as a power of two, within the budget. A shrink below
 * would undo pins and release those pages into the next round.
 */
export function keepPinned(bytes: number, pinned: number, pageSize: number, maxBytes: number): number {
  if (pinned === 0) return bytes;
  const floor = 2 ** Math.ceil(Math.log2(2 * pinned * pageSize));
  return Math.max(bytes, Math.min(floor, maxBytes));
}

/**
 * Cache admission (dynamic sizing): the pages written before migration (dirty at its first sync), the write
 * counters then, and how many pages round 1 admitted.
 */
class Admission implements CacheAdmission {
  readonly warm: Uint8Array;
  readonly countsAtStart: Uint32Array;
  admitted = 0;
  /** Round 1's progress at which growth is checked next: every 1/64 of RAM (a count reads the whole log). */
  nextCheck = 0;
  /** What the previous check wanted. */
  lastWanted = 0;
  /** (pages written since migration start, fraction of round 1 sent) at recent growth checks. */
  readonly samples: { writtenPages: number; progress: number }[] = [{ writtenPages: 0, progress: 0 }];

  constructor(
    private readonly sizing: XbzrleCacheSizing,
    private readonly dirtyLog: DirtyLog,
    warm: Uint32Array,
    private readonly pageCount: number,
    private readonly pages: MigrationReport['pages'],
  ) {
    this.warm = new Uint8Array(pageCount);
    for (const p of warm) this.warm[p] = 1;
    this.countsAtStart = dirtyLog.writeCounts().slice();
  }

  admits(p: number): boolean {
    return admitToCache({
      warm: this.warm[p] === 1,
      writtenSince: this.dirtyLog.writeCounts()[p]! - this.countsAtStart[p]!,
      dirtyNow: this.dirtyLog.isDirty(p),
    });
  }

  afterRound1Miss(admitted: boolean): void {
    if (admitted) this.admitted++;
    const progress = this.round1Progress();
    if (progress >= this.nextCheck) {
      this.nextCheck = progress + 1 / 64;
      this.sizing.grow(this, progress);
    }
  }

  /** Fraction of round 1's pages handled so far, zero pages (skipped in runs) included. */
  private round1Progress(): number {
    const pg = this.pages;
    return (pg.zero + pg.raw + pg.rle + pg.compressed + pg.redirtied) / this.pageCount;
  }
}
