/**
 * The page ledger's digest, kept up to date as pages are recorded, so that switch-over reads it in O(1) instead of
 * combining every page's CRC while the guest is paused. The combination (ledger.ts, combineCrcs) is a sum of one
 * mixed term per (page, crc) in two 32-bit lanes: replacing a page's CRC subtracts its old term and adds its new
 * one, so the running sums always equal the full combination — the digest is exactly the same 64 bits.
 *
 * The sums live in two Int32 words that may be shared (SharedArrayBuffer): the destination's page-sink thread
 * updates them beside the CRCs it writes, and the connection thread reads them once the sink has drained.
 */

/** Int32 words of the running sums. */
export const DIGEST_WORDS = 2;
const LO = 0;
const HI = 1;

/** The mixed term of page `i` with CRC `c` (the same mixing as combineCrcs). */
export function mixTerm(i: number, c: number): number {
  let x = Math.imul(c ^ Math.imul(i, 0x9e3779b1), 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x;
}

/** The second lane's contribution of a term. */
function hiTerm(x: number, i: number): number {
  return Math.imul(x ^ i, 0x27d4eb2f);
}

/** Renders the two lanes as the 16 hex digits of the digest (hi, then lo). */
export function digestHex(lo: number, hi: number): string {
  return (hi >>> 0).toString(16).padStart(8, '0') + (lo >>> 0).toString(16).padStart(8, '0');
}

/** Sums every (page, crc) term of `crcs` into `sums` (overwriting them). O(pages): at setup, never while paused. */
export function initDigestSums(crcs: Uint32Array, sums: Int32Array): void {
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < crcs.length; i++) {
    const x = mixTerm(i, crcs[i]!);
    lo = (lo + x) | 0;
    hi = (hi + hiTerm(x, i)) | 0;
  }
  sums[LO] = lo;
  sums[HI] = hi;
}

/**
 * Records page `p`'s new CRC: updates `crcs[p]` and the running sums. One thread writes a given page at a time (a
 * page sink until it drains, the connection thread after); the sums are shared by every writer, so they are added to
 * atomically.
 */
export function recordCrc(crcs: Uint32Array, sums: Int32Array, p: number, crc: number): void {
  const old = crcs[p]!;
  if (old === crc >>> 0) return;
  const a = mixTerm(p, old);
  const b = mixTerm(p, crc);
  crcs[p] = crc;
  // Atomic adds (mod 2^32): several page sinks (multifd channels) may update the shared sums at once; each page is
  // written by one of them at a time, so its old CRC read above is its own.
  Atomics.add(sums, LO, (b - a) | 0);
  Atomics.add(sums, HI, (hiTerm(b, p) - hiTerm(a, p)) | 0);
}

/** The digest the running sums stand for. */
export function sumsDigest(sums: Int32Array): string {
  return digestHex(Atomics.load(sums, LO), Atomics.load(sums, HI));
}
