/*
 * RLE — run-length encoding of a page on its own (no previous copy, no XOR). It needs no cache, so it
 * works on a cache miss or a first send, but compresses worse than XBZRLE: only runs of one repeated byte
 * shrink (zero-filled or pattern-filled stretches), changed data is sent as it is.
 *
 *   page   = token...                 tokens cover the page exactly, in order
 *   token  = header byte              repeat: header odd, the byte repeated (header >> 1) times
 *          | header byte...           literal: header even, (header >> 1) bytes copied verbatim
 *   header = ULEB128, 1 to 3 bytes (so runs of at most 2^20 - 1 bytes); the run length is never 0
 *
 * The encoder emits a repeat for 4 or more equal bytes (the break-even against staying in a literal) and
 * joins everything else into maximal literals. The decoder rejects a 0-length run, a header longer than
 * 3 bytes, a token that runs past the stream or past the page, and a stream that does not fill the page.
 */
import { CodecError } from '../errors.js';

const MIN_REPEAT = 4;
const MAX_RUN = (1 << 20) - 1;

/** Upper bound of an RLE encoding of an n-byte page: one literal and its header. */
export function rleMaxEncodedLength(n: number): number {
  return n + 8;
}

function putHeader(out: Uint8Array, d: number, v: number): number {
  while (v >= 0x80) {
    out[d++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[d++] = v;
  return d;
}

function headerSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : 3;
}

/** Encodes `page` into `out`; returns the length, or -1 when it would exceed `maxLength`. */
export function encodeRleInto(page: Uint8Array, out: Uint8Array, maxLength: number): number {
  const n = page.length;
  const limit = Math.floor(maxLength);
  if (!(limit >= 0) || out.length < Math.min(limit, rleMaxEncodedLength(n))) {
    throw new CodecError(`RLE: output buffer of ${out.length} bytes cannot hold maxLength ${maxLength}`);
  }
  let d = 0;
  let lit = 0; // start of the pending literal
  let i = 0;
  // Flushes the literal [lit, end); false when it does not fit.
  const flush = (end: number): boolean => {
    for (let at = lit; at < end; at += MAX_RUN) {
      const len = Math.min(MAX_RUN, end - at);
      const v = len * 2;
      if (d + headerSize(v) + len > limit) return false;
      d = putHeader(out, d, v);
      out.set(page.subarray(at, at + len), d);
      d += len;
    }
    return true;
  };
  // Skip ahead Boyer–Moore style: a run of 4 starting at i needs bytes i..i+3 equal, so the first unequal
  // neighbouring pair from the right tells how far no run can start. Runs found are maximal either side.
  while (i + MIN_REPEAT <= n) {
    if (page[i + 3] !== page[i + 2]) {
      i += 3;
      continue;
    }
    if (page[i + 2] !== page[i + 1]) {
      i += 2;
      continue;
    }
    const b = page[i]!;
    if (page[i + 1] !== b) {
      i += 1;
      continue;
    }
    let r = i + MIN_REPEAT;
    while (r < n && page[r] === b) r++;
    if (!flush(i)) return -1;
    for (let at = i; at < r; at += MAX_RUN) {
      const v = Math.min(MAX_RUN, r - at) * 2 + 1;
      if (d + headerSize(v) + 1 > limit) return -1;
      d = putHeader(out, d, v);
      out[d++] = b;
    }
    lit = r;
    i = r;
  }
  return flush(n) ? d : -1;
}

/** Encodes `page` as RLE (never fails: the output may be slightly longer than the page). */
export function encodeRle(page: Uint8Array): Uint8Array {
  const out = new Uint8Array(rleMaxEncodedLength(page.length));
  const len = encodeRleInto(page, out, out.length);
  return out.slice(0, len);
}

/** Decodes `encoded` into `page`, which it must fill exactly. CodecError on malformed input. */
export function decodeRle(encoded: Uint8Array, page: Uint8Array): void {
  const slen = encoded.length;
  const n = page.length;
  let i = 0;
  let d = 0;
  while (i < slen) {
    const at = i;
    let v = 0;
    let shift = 0;
    for (;;) {
      if (i >= slen) throw new CodecError('RLE: stream ends inside a header', at);
      if (shift > 14) throw new CodecError('RLE: header longer than 3 bytes', at);
      const b = encoded[i++]!;
      v |= (b & 0x7f) << shift;
      shift += 7;
      if ((b & 0x80) === 0) break;
    }
    const len = v >>> 1;
    if (len === 0) throw new CodecError('RLE: empty run', at);
    if (d + len > n) throw new CodecError(`RLE: run ends at ${d + len}, past the ${n}-byte page`, at);
    if (v & 1) {
      if (i >= slen) throw new CodecError('RLE: stream ends before the repeated byte', at);
      page.fill(encoded[i++]!, d, d + len);
    } else {
      if (i + len > slen) throw new CodecError('RLE: stream ends inside a literal', at);
      page.set(encoded.subarray(i, i + len), d);
      i += len;
    }
    d += len;
  }
  if (d !== n) throw new CodecError(`RLE: stream covers ${d} of the page's ${n} bytes`, i);
}
