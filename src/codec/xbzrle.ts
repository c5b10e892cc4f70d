/*
 * XBZRLE — XOR-based zero run-length encoding of a page against the copy sent last time, byte-compatible
 * with QEMU's `migration/xbzrle.c` (Svärd et al., VEE 2011).
 *
 *   page  = zrun nzrun | zrun nzrun page
 *   zrun  = length                  bytes unchanged since the previous copy (only the first may be 0)
 *   nzrun = length byte...          changed bytes, copied from the current page (not the XOR); never empty
 *   length = ULEB128, 1 byte below 128, else 2 bytes; at most 16383
 *
 * Unchanged bytes at the end of the page are not encoded; identical pages encode to nothing. Runs are
 * maximal: a zrun stops at the first changed byte, an nzrun at the first unchanged byte.
 *
 * Overflow (the encoder gives up, QEMU's -1): the encoder needs 2 free bytes of the limit before it starts
 * each zrun/nzrun pair (which is also before it scans a trailing unchanged tail), 2 free bytes before the
 * nzrun, and room for the nzrun's length and bytes. So a limit below 2 overflows even for identical pages,
 * and an encoding followed by unchanged bytes needs 2 spare bytes, while one that reaches the last byte of
 * the page may use the limit exactly.
 *
 * Decoding is in place on the receiver's copy: a zrun skips bytes, an nzrun overwrites them. The decoder
 * accepts what QEMU's does — non-minimal 2-byte lengths, streams longer than the page — and rejects the
 * rest: a length with a third byte, a 0-length zrun after the first, a 0-length nzrun, a stream that ends
 * inside a pair (fewer than 2 bytes left where a length is due), and any run past the end of the page.
 */
import { CodecError } from '../errors.js';
import { type RawXbzrleEncoder, wasmXbzrleEncoder } from './xbzrle-wasm.js';

/** Longest run a 2-byte ULEB128 length can state, so also the largest page XBZRLE can encode. */
export const XBZRLE_MAX_RUN = 0x3fff;

// Equal stretches are found natively (memcmp) where a whole remaining tail may be unchanged: the common
// case for a resent page, and far faster than any JavaScript loop. Inside a page, runs are found a 32-bit
// word at a time over Int32Array views of the whole backing buffer, cached so that the hot path allocates
// nothing.
const nativeCompare = Buffer.prototype.compare as (
  this: Uint8Array,
  target: Uint8Array,
  targetStart: number,
  targetEnd: number,
  sourceStart: number,
  sourceEnd: number,
) => number;
const wordViews = new WeakMap<ArrayBufferLike, Int32Array>();
function wordsOf(buffer: ArrayBufferLike): Int32Array {
  let view = wordViews.get(buffer);
  if (view === undefined || view.length !== buffer.byteLength >>> 2) {
    view = new Int32Array(buffer, 0, buffer.byteLength >>> 2);
    wordViews.set(buffer, view);
  }
  return view;
}
/** Native compare of [from, to) only for the first few zruns of a page: each call costs ~0.1 µs. */
const NATIVE_TAIL_CHECKS = 2;

/** Bytes of the ULEB128 form of a run length (1..16383). */
function ulebSize(n: number): number {
  return n < 0x80 ? 1 : 2;
}

function putUleb(out: Uint8Array, d: number, n: number): number {
  if (n < 0x80) {
    out[d] = n;
    return d + 1;
  }
  out[d] = (n & 0x7f) | 0x80;
  out[d + 1] = n >>> 7;
  return d + 2;
}

/** First offset at or after `i` where the pages differ, or `n`. Word steps need equal alignment mod 4. */
function unchangedRunEnd(
  previous: Uint8Array,
  current: Uint8Array,
  pw: Int32Array | undefined,
  cw: Int32Array | undefined,
  i: number,
  n: number,
): number {
  if (pw !== undefined && cw !== undefined) {
    const cOff = current.byteOffset;
    while (i < n && ((cOff + i) & 3) !== 0) {
      if (previous[i] !== current[i]) return i;
      i++;
    }
    if (i >= n) return n;
    const delta = (previous.byteOffset - cOff) / 4;
    const wEnd = (cOff + n) >>> 2;
    let w = (cOff + i) >>> 2;
    while (w < wEnd && cw[w] === pw[w + delta]) w++;
    i = w * 4 - cOff;
  }
  while (i < n && previous[i] === current[i]) i++;
  return i;
}

/** First offset at or after `i` where the pages are equal, or `n`. */
function changedRunEnd(
  previous: Uint8Array,
  current: Uint8Array,
  pw: Int32Array | undefined,
  cw: Int32Array | undefined,
  i: number,
  n: number,
): number {
  if (pw !== undefined && cw !== undefined) {
    const cOff = current.byteOffset;
    while (i < n && ((cOff + i) & 3) !== 0) {
      if (previous[i] === current[i]) return i;
      i++;
    }
    if (i >= n) return n;
    const delta = (previous.byteOffset - cOff) / 4;
    const wEnd = (cOff + n) >>> 2;
    let w = (cOff + i) >>> 2;
    // The XOR of two words has a zero byte exactly when some byte is unchanged.
    while (w < wEnd) {
      const x = cw[w]! ^ pw[w + delta]!;
      if (((x - 0x01010101) & ~x & 0x80808080) !== 0) break;
      w++;
    }
    i = w * 4 - cOff;
  }
  while (i < n && previous[i] !== current[i]) i++;
  return i;
}

/** Upper bound of an encoding of an n-byte page (alternating bytes cost 3 per 2). */
function maxEncodedLength(n: number): number {
  return 2 * n + 2;
}

/** The encoder in TypeScript, for validated arguments; runs found a word at a time. */
function encodeTypeScript(previous: Uint8Array, current: Uint8Array, out: Uint8Array, limit: number): number {
  const n = current.length;
  const aligned = ((previous.byteOffset ^ current.byteOffset) & 3) === 0;
  const pw = aligned ? wordsOf(previous.buffer) : undefined;
  const cw = aligned ? wordsOf(current.buffer) : undefined;

  let d = 0;
  let i = 0;
  let tailChecks = 0;
  while (i < n) {
    if (d + 2 > limit) return -1;
    if (tailChecks < NATIVE_TAIL_CHECKS) {
      tailChecks++;
      if (nativeCompare.call(current, previous, i, n, i, n) === 0) return d;
    }
    const z = unchangedRunEnd(previous, current, pw, cw, i, n);
    if (z === n) return d; // the unchanged tail is not encoded (identical page: d = 0)
    d = putUleb(out, d, z - i);
    i = z;

    if (d + 2 > limit) return -1;
    const e = changedRunEnd(previous, current, pw, cw, i, n);
    const len = e - i;
    if (d + ulebSize(len) + len > limit) return -1;
    d = putUleb(out, d, len);
    if (len < 32) {
      for (let k = i; k < e; k++) out[d++] = current[k]!;
    } else {
      out.set(current.subarray(i, e), d);
      d += len;
    }
    i = e;
  }
  return d;
}

export type XbzrleEngine = 'wasm-simd' | 'typescript';

/** The engine encodeXbzrleInto uses: WebAssembly SIMD where available, unless LIVEMIG_XBZRLE=typescript. */
export const XBZRLE_ENGINE: XbzrleEngine =
  wasmXbzrleEncoder !== undefined && process.env.LIVEMIG_XBZRLE !== 'typescript' ? 'wasm-simd' : 'typescript';
const engines: Record<XbzrleEngine, RawXbzrleEncoder | undefined> = {
  'wasm-simd': wasmXbzrleEncoder,
  typescript: encodeTypeScript,
};
const defaultEncoder = engines[XBZRLE_ENGINE]!;
/** The engines this runtime has (the TypeScript one always). */
export const XBZRLE_ENGINES: readonly XbzrleEngine[] =
  wasmXbzrleEncoder !== undefined ? ['wasm-simd', 'typescript'] : ['typescript'];

/**
 * Encodes `current` against `previous` into `out`. Returns the encoded length (0 for identical pages) or
 * -1 when the encoding would exceed `maxLength` (QEMU's overflow). Writes only `out[0, maxLength)`.
 * `engine` picks an implementation (tests and benchmarks compare them); both give the same bytes.
 */
export function encodeXbzrleInto(
  previous: Uint8Array,
  current: Uint8Array,
  out: Uint8Array,
  maxLength: number,
  engine?: XbzrleEngine,
): number {
  const n = current.length;
  if (previous.length !== n) {
    throw new CodecError(`XBZRLE: previous page is ${previous.length} bytes, current page ${n}`);
  }
  if (n > XBZRLE_MAX_RUN) {
    throw new CodecError(`XBZRLE: page of ${n} bytes exceeds the format's ${XBZRLE_MAX_RUN}-byte runs`);
  }
  if (Number.isNaN(maxLength)) throw new CodecError('XBZRLE: maxLength is NaN');
  // No encoding reaches 2n + 2 bytes, so a larger limit changes nothing; a negative one overflows (QEMU).
  const limit = Math.max(-1, Math.min(Math.floor(maxLength), maxEncodedLength(n) + 2));
  if (out.length < Math.min(limit, maxEncodedLength(n))) {
    throw new CodecError(`XBZRLE: output buffer of ${out.length} bytes cannot hold maxLength ${maxLength}`);
  }
  const encode = engine === undefined ? defaultEncoder : engines[engine];
  if (encode === undefined) throw new CodecError(`XBZRLE: engine ${engine} is not available here`);
  return encode(previous, current, out, limit);
}

// encodeXbzrle encodes into this one buffer (big enough for any page the format allows) and returns a right-sized
// copy: allocating and zeroing an output page per call cost more than encoding an unchanged page. Safe to share:
// encoding is synchronous, and each worker thread has its own module instance.
let scratchOut: Uint8Array | undefined;
/** What encodeXbzrle returns for an unchanged page: one frozen zero-length array, nothing to own or to write. */
const NO_CHANGE: Uint8Array = Object.freeze(new Uint8Array(0));

/**
 * Encodes `current` against `previous`; `undefined` when the encoding would exceed `maxLength`. A non-empty
 * result is a new array of exactly the encoding's length, the caller's to keep; an unchanged page gives a shared,
 * frozen empty array (check `.length === 0`, never identity). Hot paths that reuse a frame buffer call
 * encodeXbzrleInto instead and copy nothing.
 */
export function encodeXbzrle(
  previous: Uint8Array,
  current: Uint8Array,
  maxLength: number,
  engine?: XbzrleEngine,
): Uint8Array | undefined {
  scratchOut ??= new Uint8Array(maxEncodedLength(XBZRLE_MAX_RUN) + 2);
  const len = encodeXbzrleInto(previous, current, scratchOut, maxLength, engine);
  if (len < 0) return undefined;
  return len === 0 ? NO_CHANGE : scratchOut.slice(0, len);
}

/**
 * Applies `encoded` to `page` (the receiver's copy) in place and returns the offset just past the last
 * byte written, QEMU's return value (0 for an empty stream). Throws CodecError where QEMU returns -1;
 * never writes outside `page`, though runs before the error may already be applied.
 */
export function decodeXbzrleEnd(encoded: Uint8Array, page: Uint8Array): number {
  const slen = encoded.length;
  const dlen = page.length;
  let i = 0;
  let d = 0;
  while (i < slen) {
    // QEMU demands 2 bytes wherever a length starts, even a 1-byte one: a pair never ends there.
    if (slen - i < 2) throw new CodecError('XBZRLE: stream ends inside a zero-run length', i);
    let b = encoded[i]!;
    let zrun = b;
    let next = i + 1;
    if (b & 0x80) {
      const b2 = encoded[i + 1]!;
      if (b2 & 0x80) throw new CodecError('XBZRLE: zero-run length longer than 2 bytes', i);
      zrun = (b & 0x7f) | (b2 << 7);
      next = i + 2;
    }
    if (zrun === 0 && i !== 0) throw new CodecError('XBZRLE: empty zero run after the first', i);
    i = next;
    d += zrun;
    if (d > dlen) throw new CodecError(`XBZRLE: zero run ends at ${d}, past the ${dlen}-byte page`, i);

    if (slen - i < 2) throw new CodecError('XBZRLE: stream ends before a changed run', i);
    b = encoded[i]!;
    let nzrun = b;
    next = i + 1;
    if (b & 0x80) {
      const b2 = encoded[i + 1]!;
      if (b2 & 0x80) throw new CodecError('XBZRLE: changed-run length longer than 2 bytes', i);
      nzrun = (b & 0x7f) | (b2 << 7);
      next = i + 2;
    }
    if (nzrun === 0) throw new CodecError('XBZRLE: empty changed run', i);
    i = next;
    if (d + nzrun > dlen) throw new CodecError(`XBZRLE: changed run ends past the ${dlen}-byte page`, i);
    if (i + nzrun > slen) throw new CodecError('XBZRLE: stream ends inside a changed run', i);
    if (nzrun < 32) {
      for (let k = 0; k < nzrun; k++) page[d + k] = encoded[i + k]!;
    } else {
      page.set(encoded.subarray(i, i + nzrun), d);
    }
    d += nzrun;
    i += nzrun;
  }
  return d;
}

/** Applies the delta `encoded` to `page`, which holds the previous content, in place. */
export function decodeXbzrle(encoded: Uint8Array, page: Uint8Array): void {
  decodeXbzrleEnd(encoded, page);
}
