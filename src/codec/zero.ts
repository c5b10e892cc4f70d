/**
 * Zero-page detection. A page that is all zero bytes is sent as a flag alone (QEMU's RAM_SAVE_FLAG_ZERO);
 * the check runs on every page of every round, so it is a native memcmp against a shared zero block.
 */

const nativeCompare = Buffer.prototype.compare as (
  this: Uint8Array,
  target: Uint8Array,
  targetStart: number,
  targetEnd: number,
  sourceStart: number,
  sourceEnd: number,
) => number;

const ZEROS = new Uint8Array(16384);

/** True when every byte of `page` is zero (also for an empty page). */
export function isZeroPage(page: Uint8Array): boolean {
  const n = page.length;
  // Cheap early exit: most non-zero pages have a non-zero byte among a few probes, and a native call costs more.
  if (n >= 512 && (page[0]! | page[7]! | page[64]! | page[511]!) !== 0) return false;
  for (let at = 0; at < n; at += ZEROS.length) {
    const len = Math.min(ZEROS.length, n - at);
    if (nativeCompare.call(page, ZEROS, 0, len, at, at + len) !== 0) return false;
  }
  return true;
}
