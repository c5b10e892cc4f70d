/**
 * For fuzzing: recomputes the checksums of a (mutated) trace wherever its length fields still let a walker find
 * them, so hostile inputs get past the crc32 checks and reach the bounds checks behind them.
 */
import { crc32 } from 'node:zlib';
import { HEADER_BYTES } from './format.js';

export function resealTrace(data: Uint8Array): Buffer {
  const b = Buffer.from(data);
  if (b.length < HEADER_BYTES) return b;
  const metaLength = b.readUInt32LE(32);
  const end = HEADER_BYTES + metaLength;
  if (end > b.length) return b;
  b.writeUInt32LE(crc32(Buffer.concat([b.subarray(0, 36), b.subarray(HEADER_BYTES, end)])), 36);
  let at = end;
  while (at + 8 <= b.length) {
    const next = at + 8 + b.readUInt32LE(at);
    if (next > b.length) break;
    b.writeUInt32LE(crc32(b.subarray(at + 8, next)), at + 4);
    at = next;
  }
  return b;
}
