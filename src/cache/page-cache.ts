/**
 * The XBZRLE page cache of the migration source: copies of pages as they were last sent, so a resent page can be
 * XOR-encoded against what the destination already holds. A cache miss means the page goes whole.
 *
 * N-way set-associative (2 ways by default, as in Svärd et al., VEE 2011; QEMU's page_cache.c is the 1-way,
 * direct-mapped case), LRU within a set. Layout, all preallocated so lookup/insert/update never allocate:
 *
 *   slot  = set × ways + way                     (the ways of a set are adjacent)
 *   data  : one Uint8Array, slot s holds bytes [s × pageSize, (s + 1) × pageSize)
 *   tags  : Float64Array, the page number in each slot, NaN when empty (NaN equals nothing, so a lookup of any
 *           number can never hit an empty slot without a separate valid bit)
 *   stamps: Float64Array, LRU clock value of each slot's last use (a counter; 2^53 uses before it loses precision)
 *   views : one Uint8Array view per slot, made on its first slotView() (making all of them up front cost a
 *           migration's setup 2–100 ms for a 64 MiB cache) and kept until resize()
 *   pinned: Uint8Array, 1 for a pinned slot (pin(): hot-last's held pages, whose old copy the stop-and-copy needs)
 *
 * Capacity: the byte budget is rounded DOWN to ways × pageSize × 2^k (a power-of-two number of sets, so the set
 * index is a shift and a mask), with at least one set, and at most 2^30 sets and buffer.constants.MAX_LENGTH
 * bytes (4 GiB on Node 20). A page is any non-negative safe integer (page numbers up to 2^53: no bound in
 * practice, byte addresses would also work).
 */
import { constants as bufferConstants } from 'node:buffer';
import { MigrationError, UsageError } from '../errors.js';
import { MAX_SET_BITS, type SetHash } from './set-index.js';

export interface PageCacheOptions {
  /** Byte budget; rounded down to ways × pageSize × 2^k (at least one set). */
  bytes: number;
  /** Bytes per page (4096 for x86 guests). */
  pageSize: number;
  /** Associativity: 1 = direct-mapped (QEMU), 2 = Svärd et al. (default), 4 or 8 for experiments. */
  ways?: number;
  /** Set function; multiply-shift (default) or low bits of the page number. See set-index.ts. */
  setHash?: SetHash;
  /**
   * Where page storage comes from (default: a plain Uint8Array). The migration source passes an XBZRLE page
   * arena, so the WebAssembly encoder reads cached copies in place. Called again on resize().
   */
  allocate?: (bytes: number) => Uint8Array;
}

export interface PageCacheStats {
  /** lookup() calls that found the page. */
  hits: number;
  /** lookup() calls that did not. */
  misses: number;
  /** Valid entries of another page replaced by insert() (the set was full). */
  evictions: number;
  /** insert() calls. */
  inserts: number;
  /** Valid entries dropped by resize() because they no longer fit. */
  resizeDrops: number;
  /** Entries pinned now (pin()). */
  pinned: number;
  /** entries × pageSize. */
  bytesUsed: number;
  capacityBytes: number;
  entries: number;
  sets: number;
  ways: number;
}

interface Geometry {
  setBits: number;
  slots: number;
  capacityBytes: number;
}

const MAX_WAYS = 64;

/** Rounds a byte budget down to whole sets, a power of two of them, at least one. */
function geometry(bytes: number, pageSize: number, ways: number): Geometry {
  if (!(Number.isFinite(bytes) && bytes >= 0)) {
    throw new UsageError(`cache size: ${bytes} is not a byte count; give a size such as 64MiB`, 'bytes');
  }
  const setBytes = pageSize * ways;
  const maxSets = Math.max(1, Math.floor(bufferConstants.MAX_LENGTH / setBytes));
  const sets = Math.min(Math.max(1, Math.floor(bytes / setBytes)), maxSets);
  const setBits = Math.min(Math.floor(Math.log2(sets)), MAX_SET_BITS);
  const slots = 2 ** setBits * ways;
  return { setBits, slots, capacityBytes: slots * pageSize };
}

function allocate(capacityBytes: number, alloc?: (bytes: number) => Uint8Array): Uint8Array {
  try {
    return alloc ? alloc(capacityBytes) : new Uint8Array(capacityBytes);
  } catch (cause) {
    throw new MigrationError(
      'RESOURCE_LIMIT',
      `cannot allocate a ${capacityBytes}-byte page cache; choose a smaller cache size`,
      { capacityBytes },
      { cause },
    );
  }
}

/** Cold entries (insert with admit = false) are stamped coldClock − 2^52: below every admitted stamp, still exact. */
const COLD_BASE = 2 ** 52;

export class PageCache {
  readonly pageSize: number;
  readonly ways: number;
  readonly setHash: SetHash;
  private readonly alloc: ((bytes: number) => Uint8Array) | undefined;

  private setBits = 0;
  private slots = 0;
  // Hot-path copies of the set function's parameters.
  private shift = 32;
  private mask = 0;
  private lowBits: boolean;

  private data: Uint8Array;
  private tags: Float64Array;
  private stamps: Float64Array;
  private views: (Uint8Array | undefined)[];
  private pinned: Uint8Array;
  private pinnedCount = 0;
  private clock = 0;
  private coldClock = 0;
  private used = 0;

  private hits = 0;
  private misses = 0;
  private evictions = 0;
  private inserts = 0;
  private resizeDrops = 0;

  constructor(opts: PageCacheOptions) {
    const { pageSize, ways = 2, setHash = 'multiply-shift' } = opts;
    if (!(Number.isSafeInteger(pageSize) && pageSize > 0)) {
      throw new UsageError(`page size: ${pageSize} is not a positive whole number of bytes`, 'pageSize');
    }
    if (!(Number.isSafeInteger(ways) && ways >= 1 && ways <= MAX_WAYS)) {
      throw new UsageError(`cache ways: ${ways} is not a whole number from 1 to ${MAX_WAYS}`, 'ways');
    }
    if (setHash !== 'multiply-shift' && setHash !== 'low-bits') {
      throw new UsageError(`cache set hash: "${setHash}" is not multiply-shift or low-bits`, 'setHash');
    }
    this.pageSize = pageSize;
    this.ways = ways;
    this.setHash = setHash;
    this.lowBits = setHash === 'low-bits';
    const g = geometry(opts.bytes, pageSize, ways);
    this.alloc = opts.allocate;
    this.data = allocate(g.capacityBytes, this.alloc);
    this.tags = new Float64Array(g.slots).fill(Number.NaN);
    this.stamps = new Float64Array(g.slots);
    this.views = new Array<Uint8Array | undefined>(g.slots);
    this.pinned = new Uint8Array(g.slots);
    this.setGeometry(g);
  }

  /** Most pinned entries in one set: all ways but one (a set keeps a way for other pages), 1 when direct-mapped. */
  get maxPinnedPerSet(): number {
    return Math.max(1, this.ways - 1);
  }

  /** Most pinned entries in the whole cache: half of its slots (the cache keeps working for the other pages). */
  get maxPinned(): number {
    return Math.max(1, Math.floor(this.slots / 2));
  }

  /** Number of sets (a power of two). Changes on resize(). */
  get sets(): number {
    return 2 ** this.setBits;
  }

  /** Bytes of page storage: sets × ways × pageSize. Changes on resize(). */
  get capacityBytes(): number {
    return this.slots * this.pageSize;
  }

  /** Set index of `page` under the current geometry (same as setIndex(page, log2(sets), setHash)). */
  setOf(page: number): number {
    return this.setBase(page) / this.ways;
  }

  /** Slot of `page`, or -1. Counts a hit or a miss; a hit makes the entry the most recently used of its set. */
  lookup(page: number): number {
    const base = this.setBase(page);
    const end = base + this.ways;
    const tags = this.tags;
    for (let s = base; s < end; s++) {
      if (tags[s] === page) {
        this.stamps[s] = ++this.clock;
        this.hits++;
        return s;
      }
    }
    this.misses++;
    return -1;
  }

  /** Whether `page` is cached; no statistics, no LRU change. */
  has(page: number): boolean {
    const base = this.setBase(page);
    const end = base + this.ways;
    for (let s = base; s < end; s++) if (this.tags[s] === page) return true;
    return false;
  }

  /**
   * Pins `page`'s cached copy: insert() never evicts it and resize() keeps it before unpinned entries, until
   * unpin(), invalidate(), clear() or a shrink that cannot keep it. For a page whose next send must find its old
   * copy (hot-last holds a hot page for the stop-and-copy, where XBZRLE sends it as a delta against that copy).
   * Bounded (maxPinnedPerSet, maxPinned) so other pages still find room. True when the page is pinned after the
   * call; false when it is not cached or a bound is reached. No statistics, no LRU change.
   */
  pin(page: number): boolean {
    const base = this.setBase(page);
    const end = base + this.ways;
    let slot = -1;
    let inSet = 0;
    for (let s = base; s < end; s++) {
      if (this.tags[s] === page) slot = s;
      inSet += this.pinned[s]!;
    }
    if (slot < 0) return false;
    if (this.pinned[slot] === 1) return true;
    if (inSet >= this.maxPinnedPerSet || this.pinnedCount >= this.maxPinned) return false;
    this.pinned[slot] = 1;
    this.pinnedCount++;
    return true;
  }

  /** Unpins `page` if pinned: its copy becomes an ordinary entry (it keeps its place in the LRU order). */
  unpin(page: number): void {
    const base = this.setBase(page);
    for (let s = base; s < base + this.ways; s++) {
      if (this.tags[s] === page) {
        if (this.pinned[s] === 1) {
          this.pinned[s] = 0;
          this.pinnedCount--;
        }
        return;
      }
    }
  }

  /** Whether `page` is cached and pinned. */
  isPinned(page: number): boolean {
    const base = this.setBase(page);
    for (let s = base; s < base + this.ways; s++) if (this.tags[s] === page) return this.pinned[s] === 1;
    return false;
  }

  /**
   * The bytes of a slot, as a view into the cache (the same object on every call; valid until resize()).
   * Read it to XBZRLE-encode; do not keep it across an insert() that may reuse the slot.
   */
  slotView(slot: number): Uint8Array {
    const view = this.views[slot];
    if (view !== undefined) return view;
    // An out-of-range (or fractional) slot reads undefined from tags.
    if (this.tags[slot] === undefined) this.badSlot(slot);
    const made = this.data.subarray(slot * this.pageSize, (slot + 1) * this.pageSize);
    this.views[slot] = made;
    return made;
  }

  /** Page number held in a slot, or -1 when the slot is empty. */
  pageOf(slot: number): number {
    const tag = this.tags[slot];
    if (tag === undefined) this.badSlot(slot);
    return Number.isNaN(tag) ? -1 : tag;
  }

  /** Overwrites a valid slot (one lookup() just returned) with the page's new content. */
  update(slot: number, data: Uint8Array): void {
    const tag = this.tags[slot];
    // An out-of-range slot reads undefined, an empty one NaN.
    if (tag === undefined || Number.isNaN(tag)) this.badSlot(slot);
    if (data.length !== this.pageSize) this.badData(data);
    this.data.set(data, slot * this.pageSize);
    this.stamps[slot] = ++this.clock;
  }

  /**
   * Stores `data` as the content of `page` and returns its slot: the page's own slot if cached, else an empty way
   * of its set, else the least recently used way (an eviction).
   *
   * `admit = false` is for a page not expected to come back (cache admission): it takes only an empty way, never
   * evicts, and enters as its set's least recently used entry, so the next admitted page replaces it first; -1 when
   * the set is full (nothing stored, and any copy of the page is left as it was: the caller has just missed it).
   * A pinned entry is never the victim: -1 too when every way of a full set is pinned (direct-mapped only, given
   * maxPinnedPerSet).
   */
  insert(page: number, data: Uint8Array, admit = true): number {
    if (!(Number.isSafeInteger(page) && page >= 0)) this.badPage(page);
    if (data.length !== this.pageSize) this.badData(data);
    const base = this.setBase(page);
    const end = base + this.ways;
    const tags = this.tags;
    const stamps = this.stamps;
    let victim = -1;
    let empty = -1;
    let lru = base;
    let oldest = Number.POSITIVE_INFINITY;
    for (let s = base; s < end; s++) {
      const tag = tags[s]!;
      if (tag === page) {
        victim = s; // already cached: overwrite in place, neither a new entry nor an eviction
        break;
      }
      if (Number.isNaN(tag)) {
        if (empty < 0) empty = s;
      } else if (stamps[s]! < oldest && this.pinned[s] === 0) {
        lru = s;
        oldest = stamps[s]!;
      }
    }
    if (victim < 0) {
      if (empty >= 0) {
        victim = empty;
        this.used++;
      } else if (!admit || oldest === Number.POSITIVE_INFINITY) {
        return -1;
      } else {
        victim = lru;
        this.evictions++;
      }
    }
    this.data.set(data, victim * this.pageSize);
    tags[victim] = page;
    // A cold entry's stamp sorts below every admitted one (the clock starts at 1), in insertion order among cold
    // ones: first to go, and no ties, so eviction never depends on slot order.
    stamps[victim] = admit ? ++this.clock : ++this.coldClock - COLD_BASE;
    this.inserts++;
    return victim;
  }

  /** Drops `page` if cached (e.g. the guest discarded it); no statistics. */
  invalidate(page: number): void {
    const base = this.setBase(page);
    const end = base + this.ways;
    for (let s = base; s < end; s++) {
      if (this.tags[s] === page) {
        this.tags[s] = Number.NaN;
        this.used--;
        if (this.pinned[s] === 1) {
          this.pinned[s] = 0;
          this.pinnedCount--;
        }
        return;
      }
    }
  }

  /**
   * Changes the byte budget (rounded as in the constructor). Entries whose new set has room stay, contents intact;
   * where more entries map to a set than it has ways, pinned entries stay first, then the most recently used, and
   * the rest are dropped (counted in resizeDrops); pins beyond the bounds of the new geometry (a shrink merges sets)
   * are undone, least recently used first. Old slot numbers and slot views are invalid afterwards. Needs old + new
   * capacity in memory while it copies.
   */
  resize(bytes: number): void {
    const g = geometry(bytes, this.pageSize, this.ways);
    if (g.setBits === this.setBits) return;
    const oldTags = this.tags;
    const oldStamps = this.stamps;
    const oldPinned = this.pinned;
    const oldData = this.data;
    const data = allocate(g.capacityBytes, this.alloc);
    const tags = new Float64Array(g.slots).fill(Number.NaN);
    const stamps = new Float64Array(g.slots);
    const pinned = new Uint8Array(g.slots);
    // For each new slot, the old slot whose entry moves there (-1 = none); decided before any byte is copied.
    const source = new Int32Array(g.slots).fill(-1);
    this.setGeometry(g);
    let kept = 0;
    let dropped = 0;
    for (let old = 0; old < oldTags.length; old++) {
      const page = oldTags[old]!;
      if (Number.isNaN(page)) continue;
      const stamp = oldStamps[old]!;
      const pin = oldPinned[old]!;
      const base = this.setBase(page);
      let victim = -1;
      // Only an entry of lower rank can be displaced: unpinned below pinned, then less recently used.
      let lowestPin = pin;
      let oldest = stamp;
      for (let s = base; s < base + this.ways; s++) {
        if (source[s] === -1) {
          victim = s;
          break;
        }
        const sp = pinned[s]!;
        if (sp < lowestPin || (sp === lowestPin && stamps[s]! < oldest)) {
          victim = s;
          lowestPin = sp;
          oldest = stamps[s]!;
        }
      }
      if (victim === -1) {
        dropped++;
        continue;
      }
      if (source[victim] === -1) kept++;
      else dropped++;
      source[victim] = old;
      tags[victim] = page;
      stamps[victim] = stamp;
      pinned[victim] = pin;
    }
    const ps = this.pageSize;
    for (let s = 0; s < g.slots; s++) {
      const old = source[s]!;
      if (old >= 0) data.set(oldData.subarray(old * ps, (old + 1) * ps), s * ps);
    }
    this.data = data;
    this.tags = tags;
    this.stamps = stamps;
    this.views = new Array<Uint8Array | undefined>(g.slots);
    this.pinned = pinned;
    this.used = kept;
    this.resizeDrops += dropped;
    this.boundPins();
  }

  /** After a resize: undoes the pins beyond maxPinnedPerSet in each set, then beyond maxPinned, least recent first. */
  private boundPins(): void {
    const pinned = this.pinned;
    const stamps = this.stamps;
    const perSet = this.maxPinnedPerSet;
    const kept: number[] = [];
    for (let base = 0; base < this.slots; base += this.ways) {
      const inSet: number[] = [];
      for (let s = base; s < base + this.ways; s++) if (pinned[s] === 1) inSet.push(s);
      if (inSet.length > perSet) {
        inSet.sort((a, b) => stamps[b]! - stamps[a]!);
        for (const s of inSet.splice(perSet)) pinned[s] = 0;
      }
      kept.push(...inSet);
    }
    if (kept.length > this.maxPinned) {
      kept.sort((a, b) => stamps[b]! - stamps[a]!);
      for (const s of kept.splice(this.maxPinned)) pinned[s] = 0;
    }
    this.pinnedCount = kept.length;
  }

  /** Drops every entry; statistics are kept (see resetStats()). */
  clear(): void {
    this.tags.fill(Number.NaN);
    this.pinned.fill(0);
    this.pinnedCount = 0;
    this.used = 0;
  }

  stats(): PageCacheStats {
    return {
      hits: this.hits,
      misses: this.misses,
      evictions: this.evictions,
      inserts: this.inserts,
      resizeDrops: this.resizeDrops,
      pinned: this.pinnedCount,
      bytesUsed: this.used * this.pageSize,
      capacityBytes: this.capacityBytes,
      entries: this.used,
      sets: this.sets,
      ways: this.ways,
    };
  }

  /** Zeroes the counters (hits, misses, evictions, inserts, resizeDrops); entries stay. */
  resetStats(): void {
    this.hits = 0;
    this.misses = 0;
    this.evictions = 0;
    this.inserts = 0;
    this.resizeDrops = 0;
  }

  private setGeometry(g: Geometry): void {
    this.setBits = g.setBits;
    this.slots = g.slots;
    this.shift = 32 - g.setBits;
    this.mask = 2 ** g.setBits - 1;
  }

  /** First slot of the page's set: setIndex() inlined (see set-index.ts) times ways. */
  private setBase(page: number): number {
    const lo = page >>> 0;
    if (this.lowBits) return (lo & this.mask) * this.ways;
    const hi = (page - lo) / 4294967296;
    return (
      ((Math.imul(lo ^ Math.imul(hi, 0x85ebca6b | 0), 0x9e3779b9 | 0) >>> this.shift) & this.mask) * this.ways
    );
  }

  private badSlot(slot: number): never {
    throw new MigrationError('BAD_ARGUMENT', `page cache: slot ${slot} is not a valid slot of this cache`, {
      slot,
      slots: this.slots,
    });
  }

  private badPage(page: number): never {
    throw new MigrationError(
      'BAD_ARGUMENT',
      `page cache: ${page} is not a page number (a non-negative integer)`,
      {
        page,
      },
    );
  }

  private badData(data: Uint8Array): never {
    throw new MigrationError(
      'BAD_ARGUMENT',
      `page cache: got ${data.length} bytes for a ${this.pageSize}-byte page`,
      { length: data.length, pageSize: this.pageSize },
    );
  }
}
