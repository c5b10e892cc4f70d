/**
 * The XBZRLE page cache: N-way set-associative, LRU within a set, byte budget, resizable, with statistics.
 * See docs/cache.md.
 */
export { PageCache, type PageCacheOptions, type PageCacheStats } from './page-cache.js';
export { MAX_SET_BITS, type SetHash, setIndex } from './set-index.js';
