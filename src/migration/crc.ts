/**
 * CRC32C arithmetic that lets one pass over a page serve two checks: the page ledger needs each page's CRC, and the
 * frame trailer needs the CRC of the whole frame. CRC is linear over GF(2), so
 *
 *   crc(A ‖ B) = shift(crc(A), |B|) ⊕ crc(B)
 *
 * where shift multiplies by x^(8·|B|) modulo the Castagnoli polynomial (zlib's crc32_combine, for CRC32C). The
 * frame CRC is then assembled from the page CRCs the ledger computes anyway, plus a table-driven update over the
 * few header bytes between pages, instead of a second native pass over every byte of the frame.
 */
import { crc32c } from '@node-rs/crc32';

/** Reflected Castagnoli polynomial. */
const POLY = 0x82f63b78;

const BYTE_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** Continues `crc` (a finished CRC32C, 0 for nothing yet) over `buf[start..end)` in plain JS: for short pieces. */
export function crc32cUpdate(crc: number, buf: Uint8Array, start = 0, end = buf.length): number {
  let r = ~crc;
  for (let i = start; i < end; i++) r = BYTE_TABLE[(r ^ buf[i]!) & 255]! ^ (r >>> 8);
  return ~r >>> 0;
}

/** A 32×32 matrix over GF(2), as the images of the 32 basis vectors. */
type Gf2Matrix = Uint32Array;

function times(m: Gf2Matrix, v: number): number {
  let out = 0;
  for (let i = 0; v !== 0; i++, v >>>= 1) if (v & 1) out ^= m[i]!;
  return out >>> 0;
}

function square(m: Gf2Matrix): Gf2Matrix {
  const out = new Uint32Array(32);
  for (let i = 0; i < 32; i++) out[i] = times(m, m[i]!);
  return out;
}

/** POWERS[k] shifts a CRC over 2^k zero bytes. */
const POWERS: Gf2Matrix[] = (() => {
  // One zero bit: r ← (r >>> 1) ⊕ (r & 1 ? POLY : 0).
  let m: Gf2Matrix = new Uint32Array(32);
  m[0] = POLY;
  for (let i = 1; i < 32; i++) m[i] = 1 << (i - 1);
  m = square(square(square(m))); // 8 bits = one byte
  const list = [m];
  for (let k = 1; k < 40; k++) list.push(square(list[k - 1]!));
  return list;
})();

/** Multiplies `crc` by x^(8·length) mod P: the first half of crc(A ‖ B) from crc(A), for |B| = length. */
export function crc32cShift(crc: number, length: number): number {
  let c = crc >>> 0;
  for (let k = 0; length > 0 && c !== 0; k++) {
    if (length % 2 === 1) c = times(POWERS[k]!, c);
    length = Math.floor(length / 2);
  }
  return c;
}

/** CRC32C of A ‖ B from crc(A), crc(B) and |B|. */
export function crc32cCombine(crcA: number, crcB: number, lengthB: number): number {
  return (crc32cShift(crcA, lengthB) ^ crcB) >>> 0;
}

/**
 * The shift over a fixed length (a page) as four byte-indexed tables: four lookups instead of a matrix product, so
 * combining a page's CRC into the frame's costs about as much as hashing four bytes.
 */
export class Crc32cShifter {
  private readonly t = new Uint32Array(1024);
  constructor(readonly length: number) {
    // The shift is linear over GF(2): a byte's entry is the XOR of the shifts of its set bits. So 32 general shifts
    // (one per CRC bit) fill all 1024 entries; 1024 of them cost 2–20 ms, inside both ends' migration setup.
    const t = this.t;
    for (let k = 0; k < 4; k++) {
      const lane = k * 256;
      for (let i = 0; i < 8; i++) {
        const bit = crc32cShift((1 << (8 * k + i)) >>> 0, length);
        const high = 1 << i;
        for (let b = high; b < 2 * high; b++) t[lane + b] = (t[lane + b - high]! ^ bit) >>> 0;
      }
    }
  }
  shift(crc: number): number {
    const t = this.t;
    return (
      (t[crc & 255]! ^
        t[256 + ((crc >>> 8) & 255)]! ^
        t[512 + ((crc >>> 16) & 255)]! ^
        t[768 + (crc >>> 24)]!) >>>
      0
    );
  }
  /** crc(A ‖ B) for |B| = this.length. */
  combine(crcA: number, crcB: number): number {
    return (this.shift(crcA) ^ crcB) >>> 0;
  }
}

/** Native CRC32C (hardware-assisted), continuing `initial` when given. */
export function crc32cNative(buf: Uint8Array, initial?: number): number {
  return initial === undefined ? crc32c(buf as Buffer) : crc32c(buf as Buffer, initial);
}
