/** Frame binding (capability FRAME_BINDING): each frame's CRC continues from (nonce ‖ sender ‖ sequence). */
import type { MigrationError } from '../../errors.js';
import { crc32cCombine, crc32cUpdate } from '../crc.js';
import { foreignFrame } from './errors.js';
import { BINDING_NONCE_BYTES, type Command, FRAME_TRAILER_BYTES, type FrameSender } from './wire.js';

/**
 * The frame-binding state of one direction of one connection: yields, frame after frame, the CRC32C of
 * (nonce ‖ sender ‖ sequence number) that the frame's CRC continues from.
 */
export class FrameBinding {
  private readonly prefix = Buffer.alloc(BINDING_NONCE_BYTES + 9);
  private seq = 0;

  constructor(nonce: Uint8Array, sender: FrameSender) {
    if (nonce.length !== BINDING_NONCE_BYTES) {
      throw new RangeError(`frame binding: nonce of ${nonce.length} bytes, need ${BINDING_NONCE_BYTES}`);
    }
    this.prefix.set(nonce, 0);
    this.prefix[BINDING_NONCE_BYTES] = sender;
  }

  /** The sequence number the next frame gets. */
  get sequence(): number {
    return this.seq;
  }

  /** The CRC the next frame's CRC continues from; advances the sequence. */
  next(): number {
    return this.seedAt(this.seq++);
  }

  /** The CRC a frame with sequence number `s` continues from. */
  seedAt(s: number): number {
    this.prefix.writeUInt32BE(Math.floor(s / 2 ** 32), BINDING_NONCE_BYTES + 1);
    this.prefix.writeUInt32BE(s >>> 0, BINDING_NONCE_BYTES + 5);
    return crc32cUpdate(0, this.prefix);
  }

  /**
   * Why a frame whose trailer is not bound at `sequence` failed: FOREIGN_FRAME if its CRC is intact but bound
   * elsewhere (not bound at all: another stream's; bound one place off: a frame was inserted or dropped before it),
   * else undefined (damage: a checksum error).
   */
  explain(
    command: Command,
    expected: number,
    plain: number,
    length: number,
    sequence: number,
  ): MigrationError | undefined {
    if (plain === expected) return foreignFrame(command, sequence, 'not bound to this connection');
    for (const off of [-1, 1]) {
      if (sequence + off >= 0 && crc32cCombine(this.seedAt(sequence + off), plain, length) === expected) {
        return foreignFrame(
          command,
          sequence,
          off < 0
            ? 'bound one place earlier: a frame was inserted before it'
            : 'bound one place later: a frame before it was dropped',
        );
      }
    }
    return undefined;
  }
}

/** Rewrites a complete frame's trailer from CRC(frame) to CRC(binding prefix ‖ frame). */
export function bindFrame(frame: Buffer, seed: number): void {
  bindTrailer(frame, frame.length, seed);
}

/**
 * The same for a frame of `frameLength` bytes that leaves as segments: `last` is its last segment, which ends with the
 * trailer.
 */
export function bindTrailer(last: Uint8Array, frameLength: number, seed: number): void {
  const at = last.length - FRAME_TRAILER_BYTES;
  const view = new DataView(last.buffer, last.byteOffset, last.length);
  view.setUint32(at, crc32cCombine(seed, view.getUint32(at), frameLength - FRAME_TRAILER_BYTES));
}
