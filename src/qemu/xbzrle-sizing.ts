/**
 * Dynamic XBZRLE cache sizing for QEMU: livemig's policy (`nextCacheSize`, src/migration/policy.ts) fed from the
 * `xbzrle-cache` counters of one round, rounded to what QEMU accepts. QEMU's `xbzrle-cache-size` must be a power of
 * two of pages (migration/page_cache.c refuses anything else), and a resize allocates a new, empty cache — so a size
 * is only changed when the policy moves it by at least a factor of two (it works in powers of two anyway).
 */
import { type CacheRoundSample, nextCacheSize } from '../migration/index.js';

/** Largest power of two of pages that fits in `bytes` (one page at least). */
export function qemuCacheBytes(bytes: number, pageSize: number): number {
  const pages = Math.max(1, Math.floor(bytes / pageSize));
  return 2 ** Math.floor(Math.log2(pages)) * pageSize;
}

export function nextQemuCacheSize(
  current: number,
  s: CacheRoundSample,
  o: { pageSize: number; maxBytes: number },
): number {
  const maxBytes = qemuCacheBytes(o.maxBytes, o.pageSize);
  const minBytes = Math.min(maxBytes, o.pageSize * 64);
  return qemuCacheBytes(nextCacheSize(current, s, { pageSize: o.pageSize, minBytes, maxBytes }), o.pageSize);
}
