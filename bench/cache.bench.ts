/**
 * Page cache benchmark: `npm run bench:cache` (node --import tsx bench/cache.bench.ts).
 *
 * - Throughput: a 256 MiB cache of 4 KiB pages serving a Zipf(0.99) stream of page numbers over 1 GiB of guest
 *   RAM, each access being what the migration source does per resent page: lookup(); on a hit slotView() and
 *   update() with the new content, on a miss insert(). Reported as accesses/s (one lookup + one update or insert
 *   each, 4 KiB copied each), for 1, 2, 4, 8 ways, against two fully associative LRU caches built on a JS Map
 *   (page -> slot; recency by Map re-insertion, or by a linked list in typed arrays), same flat page storage,
 *   measured in the same run.
 * - Hit rates of the set functions (multiply-shift vs low bits) per associativity on three placements of the hot
 *   pages: scattered over RAM, contiguous, and one per 2 MiB (a stride of 512 pages); and the bookkeeping cost
 *   alone (8-byte pages).
 * - Cost of construction and of resize() of a full 256 MiB cache.
 *
 * Writes results/bench-cache.json. Flags: --quick (fewer accesses, for a smoke run).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import v8 from 'node:v8';
import vm from 'node:vm';
import Table from 'cli-table3';
import { PageCache, type SetHash } from '../src/cache/index.js';
import { formatBytes } from '../src/units.js';

const QUICK = process.argv.includes('--quick');
const PAGE = 4096;
const CACHE_BYTES = 256 * 2 ** 20;
const RAM_BYTES = 2 ** 30;
const RAM_PAGES = RAM_BYTES / PAGE;
const ZIPF_S = 0.99;
const ACCESSES = QUICK ? 1 << 19 : 1 << 21;
const REPEATS = QUICK ? 1 : 3;
const LOAD_AT_START = os.loadavg();

/** mulberry32: a small seeded RNG, so every run measures the same access stream. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` Zipf(s) ranks in [0, n): rank 0 is the hottest page. Inverse-CDF sampling by binary search. */
function zipfRanks(n: number, s: number, count: number, seed: number): Int32Array {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 0; k < n; k++) {
    sum += 1 / (k + 1) ** s;
    cdf[k] = sum;
  }
  for (let k = 0; k < n; k++) cdf[k]! /= sum;
  const next = rng(seed);
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const u = next();
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    out[i] = lo;
  }
  return out;
}

type Placement = 'scattered' | 'contiguous' | 'stride-512';

/** Where the rank-r page lives in guest RAM. */
function placement(kind: Placement, seed: number): Int32Array {
  const map = new Int32Array(RAM_PAGES);
  if (kind === 'contiguous') for (let r = 0; r < RAM_PAGES; r++) map[r] = r;
  if (kind === 'stride-512') {
    // The hottest pages are one per 2 MiB: page 0, 512, 1024, ..., then 1, 513, ...
    const rows = RAM_PAGES / 512;
    for (let r = 0; r < RAM_PAGES; r++) map[r] = (r % rows) * 512 + Math.floor(r / rows);
  }
  if (kind === 'scattered') {
    for (let r = 0; r < RAM_PAGES; r++) map[r] = r;
    const next = rng(seed);
    for (let i = RAM_PAGES - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      const t = map[i]!;
      map[i] = map[j]!;
      map[j] = t;
    }
  }
  return map;
}

function pagesFor(ranks: Int32Array, map: Int32Array): Int32Array {
  const out = new Int32Array(ranks.length);
  for (let i = 0; i < ranks.length; i++) out[i] = map[ranks[i]!]!;
  return out;
}

/** New content for each access comes from a ring of 256 source pages (1 MiB: the guest side stays in CPU cache). */
const SOURCES = Array.from({ length: 256 }, (_, i) => new Uint8Array(PAGE).fill(i));

/** The migration source's per-page pattern. Returns hits. */
function drivePageCache(
  cache: PageCache,
  pages: Int32Array,
  from: number,
  to: number,
  src: Uint8Array[],
): number {
  let hits = 0;
  for (let i = from; i < to; i++) {
    const page = pages[i]!;
    const data = src[i & (src.length - 1)]!;
    const slot = cache.lookup(page);
    if (slot >= 0) {
      hits++;
      cache.slotView(slot); // where XBZRLE would read the old copy
      cache.update(slot, data);
    } else {
      cache.insert(page, data);
    }
  }
  return hits;
}

/** The obvious JS alternative: a Map from page to slot, fully associative, LRU by Map insertion order. */
class MapLruCache {
  readonly map = new Map<number, number>();
  readonly data: Uint8Array;
  readonly views: Uint8Array[];
  private free: number[];
  constructor(bytes: number) {
    const slots = Math.floor(bytes / PAGE);
    this.data = new Uint8Array(slots * PAGE);
    this.views = Array.from({ length: slots }, (_, s) => this.data.subarray(s * PAGE, (s + 1) * PAGE));
    this.free = Array.from({ length: slots }, (_, s) => slots - 1 - s);
  }
  lookup(page: number): number {
    const slot = this.map.get(page);
    if (slot === undefined) return -1;
    this.map.delete(page);
    this.map.set(page, slot);
    return slot;
  }
  update(slot: number, data: Uint8Array): void {
    this.data.set(data, slot * PAGE);
  }
  insert(page: number, data: Uint8Array): number {
    let slot = this.free.pop();
    if (slot === undefined) {
      const oldest = this.map.keys().next().value as number;
      slot = this.map.get(oldest)!;
      this.map.delete(oldest);
    }
    this.map.set(page, slot);
    this.data.set(data, slot * PAGE);
    return slot;
  }
}

function driveMap(cache: MapLruCache, pages: Int32Array, from: number, to: number): number {
  let hits = 0;
  for (let i = from; i < to; i++) {
    const page = pages[i]!;
    const data = SOURCES[i & 255]!;
    const slot = cache.lookup(page);
    if (slot >= 0) {
      hits++;
      void cache.views[slot];
      cache.update(slot, data);
    } else {
      cache.insert(page, data);
    }
  }
  return hits;
}

/**
 * A better Map-based fully associative LRU: the Map only indexes page -> slot, recency is an intrusive doubly
 * linked list of slots in typed arrays, so nothing iterates the Map.
 */
class MapListLruCache {
  readonly map = new Map<number, number>();
  readonly data: Uint8Array;
  readonly views: Uint8Array[];
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private readonly pageOf: Float64Array;
  private head = -1; // most recently used
  private tail = -1; // least recently used
  private used = 0;
  constructor(
    readonly slots: number,
    readonly pageSize: number,
  ) {
    this.data = new Uint8Array(slots * pageSize);
    this.views = Array.from({ length: slots }, (_, s) =>
      this.data.subarray(s * pageSize, (s + 1) * pageSize),
    );
    this.prev = new Int32Array(slots);
    this.next = new Int32Array(slots);
    this.pageOf = new Float64Array(slots);
  }
  private unlink(s: number): void {
    const p = this.prev[s]!;
    const n = this.next[s]!;
    if (p >= 0) this.next[p] = n;
    else this.head = n;
    if (n >= 0) this.prev[n] = p;
    else this.tail = p;
  }
  private pushHead(s: number): void {
    this.prev[s] = -1;
    this.next[s] = this.head;
    if (this.head >= 0) this.prev[this.head] = s;
    this.head = s;
    if (this.tail < 0) this.tail = s;
  }
  lookup(page: number): number {
    const slot = this.map.get(page);
    if (slot === undefined) return -1;
    if (slot !== this.head) {
      this.unlink(slot);
      this.pushHead(slot);
    }
    return slot;
  }
  update(slot: number, data: Uint8Array): void {
    this.data.set(data, slot * this.pageSize);
  }
  insert(page: number, data: Uint8Array): number {
    let slot: number;
    if (this.used < this.slots) slot = this.used++;
    else {
      slot = this.tail;
      this.unlink(slot);
      this.map.delete(this.pageOf[slot]!);
    }
    this.pageOf[slot] = page;
    this.map.set(page, slot);
    this.pushHead(slot);
    this.data.set(data, slot * this.pageSize);
    return slot;
  }
}

function driveMapList(
  cache: MapListLruCache,
  pages: Int32Array,
  from: number,
  to: number,
  src: Uint8Array[],
): number {
  let hits = 0;
  for (let i = from; i < to; i++) {
    const page = pages[i]!;
    const data = src[i & (src.length - 1)]!;
    const slot = cache.lookup(page);
    if (slot >= 0) {
      hits++;
      void cache.views[slot];
      cache.update(slot, data);
    } else {
      cache.insert(page, data);
    }
  }
  return hits;
}

interface ThroughputRow {
  cache: string;
  ways: number | 'full';
  setHash: SetHash | 'n/a';
  accessesPerSec: number;
  nsPerAccess: number;
  hitRate: number;
}

/** Every page of guest RAM once: fills every set (and makes the OS back every page of the cache's storage). */
const FILL = Int32Array.from({ length: RAM_PAGES }, (_, p) => p);

/**
 * Fills a fresh cache with all of RAM's pages, warms it on the first quarter of the stream (and lets V8 optimise),
 * then times the rest. Best of `repeats` runs.
 */
function timeIt(
  row: Pick<ThroughputRow, 'cache' | 'ways' | 'setHash'>,
  make: () => unknown,
  drive: (c: unknown, pages: Int32Array, from: number, to: number) => number,
  pages: Int32Array,
  repeats = REPEATS,
): ThroughputRow {
  let best = Number.POSITIVE_INFINITY;
  let hits = 0;
  const warm = pages.length >> 2;
  for (let r = 0; r < repeats; r++) {
    const c = make();
    drive(c, FILL, 0, FILL.length);
    drive(c, pages, 0, warm);
    const t0 = performance.now();
    hits = drive(c, pages, warm, pages.length);
    best = Math.min(best, performance.now() - t0);
  }
  const n = pages.length - warm;
  return {
    ...row,
    accessesPerSec: Math.round(n / (best / 1000)),
    nsPerAccess: Math.round((best * 1e6) / n),
    hitRate: hits / n,
  };
}

const SLOTS = CACHE_BYTES / PAGE;
const TINY = [new Uint8Array(8)];

/**
 * Hit rate and bookkeeping cost alone: the same number of slots with 8-byte "pages", so no 4 KiB copies dominate.
 * Same fill and warm-up as timeIt().
 */
function hitRate(
  pages: Int32Array,
  make: () => PageCache | MapListLruCache,
  repeats = 1,
): { hitRate: number; nsPerAccess: number } {
  let best = Number.POSITIVE_INFINITY;
  let hits = 0;
  const warm = pages.length >> 2;
  for (let r = 0; r < repeats; r++) {
    const cache = make();
    const drive = (stream: Int32Array, from: number, to: number) =>
      cache instanceof PageCache
        ? drivePageCache(cache, stream, from, to, TINY)
        : driveMapList(cache, stream, from, to, TINY);
    drive(FILL, 0, FILL.length);
    drive(pages, 0, warm);
    const t0 = performance.now();
    hits = drive(pages, warm, pages.length);
    best = Math.min(best, performance.now() - t0);
  }
  return {
    hitRate: hits / (pages.length - warm),
    nsPerAccess: Math.round((best * 1e6) / (pages.length - warm)),
  };
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** A full collection before reading the heap, through V8's flag (the bench runs without --expose-gc). */
function collect(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

function main(): void {
  console.log(
    `page cache bench: ${formatBytes(CACHE_BYTES)} cache of ${PAGE}-byte pages, Zipf(${ZIPF_S}) over ` +
      `${formatBytes(RAM_BYTES)} of guest RAM, ${ACCESSES} accesses (first quarter warms up), node ${process.version}`,
  );
  const ranks = zipfRanks(RAM_PAGES, ZIPF_S, ACCESSES, 1);
  const placements: Placement[] = ['scattered', 'contiguous', 'stride-512'];
  const streams = Object.fromEntries(placements.map((k) => [k, pagesFor(ranks, placement(k, 2))])) as Record<
    Placement,
    Int32Array
  >;
  const scattered = streams.scattered;

  // Throughput.
  const throughput: ThroughputRow[] = [];
  for (const ways of [1, 2, 4, 8]) {
    throughput.push(
      timeIt(
        { cache: 'PageCache', ways, setHash: 'multiply-shift' },
        () => new PageCache({ bytes: CACHE_BYTES, pageSize: PAGE, ways }),
        (c, pages, from, to) => drivePageCache(c as PageCache, pages, from, to, SOURCES),
        scattered,
      ),
    );
  }
  throughput.push(
    timeIt(
      { cache: 'PageCache', ways: 2, setHash: 'low-bits' },
      () => new PageCache({ bytes: CACHE_BYTES, pageSize: PAGE, ways: 2, setHash: 'low-bits' }),
      (c, pages, from, to) => drivePageCache(c as PageCache, pages, from, to, SOURCES),
      scattered,
    ),
  );
  throughput.push(
    timeIt(
      { cache: 'Map + linked-list LRU', ways: 'full', setHash: 'n/a' },
      () => new MapListLruCache(SLOTS, PAGE),
      (c, pages, from, to) => driveMapList(c as MapListLruCache, pages, from, to, SOURCES),
      scattered,
    ),
  );
  // Slow enough (microseconds per access) that one run says all there is to say.
  throughput.push(
    timeIt(
      { cache: 'Map, LRU by re-insertion', ways: 'full', setHash: 'n/a' },
      () => new MapLruCache(CACHE_BYTES),
      (c, pages, from, to) => driveMap(c as MapLruCache, pages, from, to),
      scattered,
      1,
    ),
  );
  const t1 = new Table({ head: ['cache', 'ways', 'set hash', 'accesses/s', 'ns/access', 'hit rate'] });
  for (const r of throughput) {
    t1.push([
      r.cache,
      r.ways,
      r.setHash,
      r.accessesPerSec.toLocaleString('en'),
      r.nsPerAccess,
      pct(r.hitRate),
    ]);
  }
  console.log(`\nThroughput, hot pages scattered over RAM, 4 KiB copied per access, best of ${REPEATS}`);
  console.log(t1.toString());

  // Hit rates of the set functions, against a fully associative LRU of as many slots.
  const hitRates: {
    placement: Placement;
    setHash: SetHash | 'full LRU';
    ways: number | 'full';
    hitRate: number;
    nsPerAccess8BytePages: number;
  }[] = [];
  for (const kind of placements) {
    for (const setHash of ['multiply-shift', 'low-bits'] as const) {
      for (const ways of [1, 2, 4, 8]) {
        const make = () => new PageCache({ bytes: SLOTS * 8, pageSize: 8, ways, setHash });
        // Only the scattered multiply-shift rows feed the bookkeeping-cost table: time those best of REPEATS.
        const r = hitRate(
          streams[kind],
          make,
          kind === 'scattered' && setHash === 'multiply-shift' ? REPEATS : 1,
        );
        hitRates.push({
          placement: kind,
          setHash,
          ways,
          hitRate: r.hitRate,
          nsPerAccess8BytePages: r.nsPerAccess,
        });
      }
    }
    const full = hitRate(
      streams[kind],
      () => new MapListLruCache(SLOTS, 8),
      kind === 'scattered' ? REPEATS : 1,
    );
    hitRates.push({
      placement: kind,
      setHash: 'full LRU',
      ways: 'full',
      hitRate: full.hitRate,
      nsPerAccess8BytePages: full.nsPerAccess,
    });
  }
  const t2 = new Table({
    head: ['hot pages', 'set hash', '1 way', '2 ways', '4 ways', '8 ways', 'full LRU'],
  });
  for (const kind of placements) {
    const full = hitRates.find((h) => h.placement === kind && h.ways === 'full')!;
    for (const setHash of ['multiply-shift', 'low-bits'] as const) {
      const row = hitRates.filter((h) => h.placement === kind && h.setHash === setHash);
      t2.push([kind, setHash, ...row.map((h) => pct(h.hitRate)), pct(full.hitRate)]);
    }
  }
  console.log(`\nHit rate by set function and associativity (${SLOTS} slots)`);
  console.log(t2.toString());
  const t2b = new Table({
    head: ['cache (8-byte pages, scattered)', '1 way', '2 ways', '4 ways', '8 ways', 'full LRU'],
  });
  const scatteredRows = hitRates.filter((h) => h.placement === 'scattered');
  t2b.push([
    'bookkeeping ns/access',
    ...scatteredRows.filter((h) => h.setHash === 'multiply-shift').map((h) => h.nsPerAccess8BytePages),
    scatteredRows.find((h) => h.ways === 'full')!.nsPerAccess8BytePages,
  ]);
  console.log(
    `\nCost of the bookkeeping alone, best of ${REPEATS} (PageCache multiply-shift; full LRU = Map + linked list)`,
  );
  console.log(t2b.toString());

  // Construction and resize of a full cache.
  collect();
  const heap0 = process.memoryUsage().heapUsed;
  let t0 = performance.now();
  const big = new PageCache({ bytes: CACHE_BYTES, pageSize: PAGE, ways: 2 });
  const constructMs = performance.now() - t0;
  collect();
  const viewsHeapBytes = process.memoryUsage().heapUsed - heap0;
  t0 = performance.now();
  drivePageCache(big, scattered, 0, scattered.length, SOURCES);
  const firstFillMs = performance.now() - t0;
  const entriesFull = big.stats().entries;
  t0 = performance.now();
  big.resize(CACHE_BYTES / 2);
  const shrinkMs = performance.now() - t0;
  const entriesAfterShrink = big.stats().entries;
  t0 = performance.now();
  big.resize(CACHE_BYTES);
  const growMs = performance.now() - t0;
  const t3 = new Table({ head: ['operation', 'ms', 'entries'] });
  const half = formatBytes(CACHE_BYTES / 2);
  const whole = formatBytes(CACHE_BYTES);
  t3.push(
    [`construct ${whole}, 2 ways (storage not yet touched)`, constructMs.toFixed(1), 0],
    [`resize ${whole} -> ${half}`, shrinkMs.toFixed(1), `${entriesFull} -> ${entriesAfterShrink}`],
    [`resize ${half} -> ${whole}`, growMs.toFixed(1), `${entriesAfterShrink} -> ${big.stats().entries}`],
  );
  console.log('\nConstruction and resize');
  console.log(t3.toString());
  console.log(`slot views on the JS heap: ${formatBytes(viewsHeapBytes)} for ${SLOTS} slots`);

  const result = {
    bench: 'cache',
    command: 'npm run bench:cache',
    date: new Date().toISOString(),
    node: process.version,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    // Other work on the machine skews the timings (not the hit rates); the load average says how much.
    loadAverage: { start: LOAD_AT_START, end: os.loadavg() },
    config: {
      cacheBytes: CACHE_BYTES,
      pageSize: PAGE,
      ramBytes: RAM_BYTES,
      zipfExponent: ZIPF_S,
      accesses: ACCESSES,
      timedAccesses: ACCESSES - (ACCESSES >> 2),
      repeats: REPEATS,
      quick: QUICK,
    },
    throughput,
    hitRates,
    resize: { constructMs, firstFillMs, shrinkMs, growMs, entriesFull, entriesAfterShrink, viewsHeapBytes },
  };
  mkdirSync('results', { recursive: true });
  writeFileSync('results/bench-cache.json', `${JSON.stringify(result, null, 2)}\n`);
  console.log(
    `load average at start ${LOAD_AT_START.map((x) => x.toFixed(2)).join(' ')}, at end ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  console.log('wrote results/bench-cache.json');
}

main();
