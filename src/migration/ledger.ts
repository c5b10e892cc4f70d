/**
 * The page ledger: a CRC32C per page of the content that crossed the wire, kept by both ends. Combined into one
 * 64-bit digest at switch-over, it proves the destination holds exactly what the source sent, at O(pages) cost
 * instead of O(bytes) during downtime. `full` verification instead recomputes every page's CRC from RAM while the
 * guest is paused, which also checks the dirty log (and costs about 0.25 s per GiB on these machines).
 */
import { createHash } from 'node:crypto';
import { crc32c } from '@node-rs/crc32';
import { DIGEST_WORDS, digestHex, initDigestSums, mixTerm, recordCrc, sumsDigest } from './digest.js';

export const ZERO_PAGE_CRC_CACHE = new Map<number, number>();

/** CRC32C of an all-zero page of the given size (memoised). */
export function zeroPageCrc(pageSize: number): number {
  let v = ZERO_PAGE_CRC_CACHE.get(pageSize);
  if (v === undefined) {
    v = crc32c(Buffer.alloc(pageSize));
    ZERO_PAGE_CRC_CACHE.set(pageSize, v);
  }
  return v;
}

export function pageCrc(page: Uint8Array): number {
  return crc32c(page as Buffer);
}

export class PageLedger {
  readonly crcs: Uint32Array;
  /** The digest's running sums (digest.ts), kept beside the CRCs: `digest()` costs O(1) at switch-over. */
  readonly sums: Int32Array;
  /** `shared`: back the CRCs with a SharedArrayBuffer, so the destination's page-sink thread can fill them. */
  constructor(
    readonly pageCount: number,
    readonly pageSize: number,
    shared = false,
  ) {
    this.crcs = (
      shared ? new Uint32Array(new SharedArrayBuffer(pageCount * 4)) : new Uint32Array(pageCount)
    ).fill(zeroPageCrc(pageSize));
    this.sums = shared
      ? new Int32Array(new SharedArrayBuffer(DIGEST_WORDS * 4))
      : new Int32Array(DIGEST_WORDS);
    initDigestSums(this.crcs, this.sums);
  }
  set(page: number, crc: number): void {
    recordCrc(this.crcs, this.sums, page, crc);
  }
  setZero(page: number): void {
    recordCrc(this.crcs, this.sums, page, zeroPageCrc(this.pageSize));
  }
  /** Order-independent combination of (page, crc) pairs into 64 bits (two 32-bit lanes of mixed sums): O(1). */
  digest(): string {
    return sumsDigest(this.sums);
  }
}

/** Mixes each (index, crc) so that swapping two pages' contents changes the digest; sums in two lanes. O(pages). */
export function combineCrcs(crcs: Uint32Array): string {
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < crcs.length; i++) {
    const x = mixTerm(i, crcs[i]!);
    lo = (lo + x) | 0;
    hi = (hi + Math.imul(x ^ i, 0x27d4eb2f)) | 0;
  }
  return digestHex(lo, hi);
}

/** Full digest: CRC of every page read from RAM now. */
export function fullRamDigest(pageCount: number, page: (index: number) => Uint8Array): string {
  const crcs = new Uint32Array(pageCount);
  for (let i = 0; i < pageCount; i++) crcs[i] = pageCrc(page(i));
  return combineCrcs(crcs);
}

/** SHA-256 of a canonical JSON rendering of the vCPU state. */
export function vcpuDigest(state: unknown): string {
  return createHash('sha256').update(canonicalJson(state)).digest('hex');
}

/**
 * JSON with every object's keys sorted (UTF-16 order) and undefined fields left out. Built in one string with plain
 * loops: it runs twice inside every switch-over (about 4× faster than the entries/sort/map version it replaced,
 * which gives the same text; digest.test.ts checks that on arbitrary values).
 */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) {
    let out = '[';
    // (An element JSON cannot render, e.g. undefined, is empty text, as Array.prototype.join renders it.)
    for (let i = 0; i < v.length; i++) out += (i > 0 ? ',' : '') + (canonicalJson(v[i]) ?? '');
    return `${out}]`;
  }
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).sort();
    let out = '{';
    let first = true;
    for (const k of keys) {
      const x = o[k];
      if (x === undefined) continue;
      out += `${first ? '' : ','}${JSON.stringify(k)}:${canonicalJson(x)}`;
      first = false;
    }
    return `${out}}`;
  }
  return JSON.stringify(v);
}
