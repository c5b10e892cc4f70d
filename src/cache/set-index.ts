/**
 * Which set of the page cache a page lives in.
 *
 * Page numbers arrive sequential and often strided (one page per 2 MiB huge page, one per row of a matrix).
 * Taking the low bits of the page number spreads a sequential run perfectly but sends a stride of 2^j pages to
 * only sets / 2^j sets; multiply-shift (Knuth's multiplicative hashing: multiply by 2^32/φ, keep the top bits)
 * spreads both. `bench/cache.bench.ts` measures the two on Zipf, sequential-hot and strided patterns; see
 * docs/cache.md. Multiply-shift is the default.
 */

export type SetHash = 'multiply-shift' | 'low-bits';

/** 2^32 / φ, odd: consecutive keys land far apart in the top bits. */
const GOLDEN = 0x9e3779b9 | 0;
/** Folds the bits above 2^32 of a page number into the low word before the multiply. */
const HIGH_MIX = 0x85ebca6b | 0;
const TWO_POW_32 = 4294967296;

/** Largest number of set bits the cache uses (2^30 sets): keeps every shift and mask inside 32-bit integers. */
export const MAX_SET_BITS = 30;

/**
 * Set index of `page` (a non-negative safe integer) among 2^setBits sets, 0 <= setBits <= MAX_SET_BITS.
 * The cache computes exactly this inline on its hot path; tests and reference models call this function.
 */
export function setIndex(page: number, setBits: number, hash: SetHash): number {
  const mask = (1 << setBits) - 1;
  const lo = page >>> 0;
  if (hash === 'low-bits') return lo & mask;
  const hi = (page - lo) / TWO_POW_32;
  // A shift count of 32 is taken mod 32 by JavaScript; the mask makes the 1-set case come out as 0.
  return (Math.imul(lo ^ Math.imul(hi, HIGH_MIX), GOLDEN) >>> (32 - setBits)) & mask;
}
