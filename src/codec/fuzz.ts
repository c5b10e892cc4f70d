/**
 * Hostile-input fuzzing of every decoder, shared by the unit test (a bounded loop) and `npm run fuzz:codec`
 * (millions of inputs). Each input is decoded into a page that sits inside a larger buffer filled with a
 * sentinel; the decoder must either succeed or throw CodecError, and must never touch the guard bytes.
 * XBZRLE decodes are also compared with a byte-at-a-time transcription of the format (the model).
 */
import { CodecError } from '../errors.js';
import { COMPRESSOR_NAMES, compressor } from './compressors.js';
import { decodeRle, encodeRle } from './rle.js';
import { decodeXbzrleEnd, encodeXbzrle } from './xbzrle.js';

/** Small deterministic PRNG (xorshift32): a failing seed reproduces. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return this.next() % n;
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.next() & 0xff;
    return b;
  }
}

/** The XBZRLE decoder written byte by byte from the format: the oracle for accept/reject and result. */
export function modelDecodeXbzrle(src: Uint8Array, page: Uint8Array): number {
  let i = 0;
  let d = 0;
  const uleb = (): number => {
    if (src.length - i < 2) return -1;
    const b = src[i]!;
    if (!(b & 0x80)) {
      i += 1;
      return b;
    }
    if (src[i + 1]! & 0x80) return -1;
    const v = (b & 0x7f) | (src[i + 1]! << 7);
    i += 2;
    return v;
  };
  while (i < src.length) {
    const first = i === 0;
    const z = uleb();
    if (z < 0 || (!first && z === 0)) return -1;
    d += z;
    if (d > page.length) return -1;
    const nz = uleb();
    if (nz <= 0) return -1;
    if (d + nz > page.length || i + nz > src.length) return -1;
    for (let k = 0; k < nz; k++) page[d + k] = src[i + k]!;
    d += nz;
    i += nz;
  }
  return d;
}

/** The XBZRLE encoder written byte by byte, with QEMU's overflow checks. */
export function modelEncodeXbzrle(old: Uint8Array, cur: Uint8Array, limit: number): Uint8Array | undefined {
  const out: number[] = [];
  const put = (v: number): void => {
    if (v < 0x80) out.push(v);
    else out.push((v & 0x7f) | 0x80, v >>> 7);
  };
  const n = cur.length;
  let i = 0;
  while (i < n) {
    if (out.length + 2 > limit) return undefined;
    let z = i;
    while (z < n && old[z] === cur[z]) z++;
    if (z === n) break;
    put(z - i);
    i = z;
    if (out.length + 2 > limit) return undefined;
    let e = i;
    while (e < n && old[e] !== cur[e]) e++;
    const len = e - i;
    if (out.length + (len < 0x80 ? 1 : 2) + len > limit) return undefined;
    put(len);
    for (let k = i; k < e; k++) out.push(cur[k]!);
    i = e;
  }
  return Uint8Array.from(out);
}

export interface FuzzCounts {
  inputs: number;
  accepted: number;
  rejected: number;
  /** Any failure of the contract; each entry names the codec, seed and iteration. */
  failures: string[];
}

const GUARD = 0xa5;
const GUARD_BYTES = 64;

/** A page of `size` bytes at a random offset inside a sentinel-filled buffer. */
function guardedPage(rng: Rng, size: number): { outer: Uint8Array; page: Uint8Array; at: number } {
  const at = GUARD_BYTES + rng.int(8);
  const outer = new Uint8Array(at + size + GUARD_BYTES).fill(GUARD);
  const page = outer.subarray(at, at + size);
  page.set(rng.bytes(size));
  return { outer, page, at };
}

function guardsIntact(outer: Uint8Array, at: number, size: number): boolean {
  for (let k = 0; k < at; k++) if (outer[k] !== GUARD) return false;
  for (let k = at + size; k < outer.length; k++) if (outer[k] !== GUARD) return false;
  return true;
}

/** A hostile stream: random bytes, or a valid encoding damaged by flips, cuts, splices or 0x80 bytes. */
function hostileStream(rng: Rng, valid: Uint8Array): Uint8Array {
  switch (rng.int(4)) {
    case 0:
      return rng.bytes(rng.int(48));
    case 1: {
      const s = valid.slice();
      for (let k = rng.int(4) + 1; k > 0 && s.length > 0; k--) s[rng.int(s.length)] = rng.next() & 0xff;
      return s;
    }
    case 2:
      return valid.slice(0, rng.int(valid.length + 1));
    default: {
      const extra = rng.int(3) === 0 ? new Uint8Array([0x80, 0x80, 0x01]) : rng.bytes(rng.int(8));
      const cut = rng.int(valid.length + 1);
      const s = new Uint8Array(valid.length + extra.length);
      s.set(valid.subarray(0, cut));
      s.set(extra, cut);
      s.set(valid.subarray(cut), cut + extra.length);
      return s;
    }
  }
}

/** One valid XBZRLE delta between two random small pages that differ in a few runs. */
function validDelta(rng: Rng, size: number): Uint8Array {
  const old = rng.bytes(size);
  const cur = old.slice();
  for (let r = rng.int(5); r > 0; r--) {
    const at = rng.int(size);
    const len = Math.min(size - at, 1 + rng.int(200));
    for (let k = at; k < at + len; k++) cur[k] = (cur[k]! + 1 + rng.int(255)) & 0xff;
  }
  return encodeXbzrle(old, cur, 4 * size + 8) ?? new Uint8Array(0);
}

/** Runs `iterations` hostile inputs through each decoder, from `seed`. */
export function fuzzCodecs(iterations: number, seed: number): FuzzCounts {
  const rng = new Rng(seed);
  const counts: FuzzCounts = { inputs: 0, accepted: 0, rejected: 0, failures: [] };
  const fail = (what: string, k: number, detail: string): void => {
    if (counts.failures.length < 20) counts.failures.push(`${what} seed=${seed} iteration=${k}: ${detail}`);
  };
  const compressors = COMPRESSOR_NAMES.map((name) => compressor(name));
  for (let k = 0; k < iterations; k++) {
    const size = [16, 64, 256, 4096][rng.int(4)]!;
    const kind = rng.int(3);
    counts.inputs++;
    if (kind === 0) {
      const stream = hostileStream(rng, validDelta(rng, size));
      const { outer, page, at } = guardedPage(rng, size);
      const model = page.slice();
      const expected = modelDecodeXbzrle(stream, model);
      try {
        const end = decodeXbzrleEnd(stream, page);
        counts.accepted++;
        if (expected !== end) fail('xbzrle', k, `returned ${end}, model ${expected}`);
        else if (Buffer.compare(model, page) !== 0) fail('xbzrle', k, 'page differs from the model');
      } catch (err) {
        counts.rejected++;
        if (!(err instanceof CodecError)) fail('xbzrle', k, `threw ${String(err)}`);
        else if (expected >= 0) fail('xbzrle', k, `rejected a stream the model accepts: ${err.message}`);
      }
      if (!guardsIntact(outer, at, size)) fail('xbzrle', k, 'wrote outside the page');
    } else if (kind === 1) {
      const seedPage = rng.bytes(size);
      for (let r = rng.int(size); r > 0; r--) seedPage[rng.int(size)] = 0;
      const stream = hostileStream(rng, encodeRle(seedPage));
      const { outer, page, at } = guardedPage(rng, size);
      try {
        decodeRle(stream, page);
        counts.accepted++;
      } catch (err) {
        counts.rejected++;
        if (!(err instanceof CodecError)) fail('rle', k, `threw ${String(err)}`);
      }
      if (!guardsIntact(outer, at, size)) fail('rle', k, 'wrote outside the page');
    } else {
      const c = compressors[rng.int(compressors.length)]!;
      const source = rng.int(2) === 0 ? new Uint8Array(size) : rng.bytes(size);
      const stream = hostileStream(rng, c.compress(source));
      try {
        const out = c.decompress(stream, size);
        counts.accepted++;
        if (out.length > size) fail(c.name, k, `returned ${out.length} bytes, more than ${size}`);
      } catch (err) {
        counts.rejected++;
        if (!(err instanceof CodecError)) fail(c.name, k, `threw ${String(err)}`);
      }
    }
  }
  return counts;
}
