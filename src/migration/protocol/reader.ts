/** Frames on the wire: building one (header, payload, CRC32C) and the incremental reader that checks them. */
import { crc32c } from '@node-rs/crc32';
import { crc32cCombine, crc32cUpdate } from '../crc.js';
import { FrameBinding } from './binding.js';
import { checksumError, protocolError } from './errors.js';
import {
  Command,
  DEFAULT_MAX_FRAME,
  FRAME_HEADER_BYTES,
  FRAME_TRAILER_BYTES,
  type FrameSender,
  HARD_MAX_FRAME,
  PREAMBLE,
} from './wire.js';

export interface Frame {
  command: Command;
  payload: Buffer;
  /**
   * Set only for commands whose checksum the reader was told to leave to the consumer
   * ({@link FrameReader.deferChecksum}): the trailer's value and the CRC32C of the 8 header bytes. The consumer
   * must verify the frame ({@link verifyPagesFrame}) before it believes a byte of the payload.
   */
  unverified?: {
    expected: number;
    headerCrc: number;
    binding?: { seed: number; sequence: number; of: FrameBinding };
  };
}

/** Builds a complete frame (header, payload, CRC32C). */
export function encodeFrame(command: Command, payload: Uint8Array = EMPTY): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length + FRAME_TRAILER_BYTES);
  writeFrameHeader(frame, command, payload.length);
  frame.set(payload, FRAME_HEADER_BYTES);
  sealFrame(frame, payload.length);
  return frame;
}

const EMPTY = Buffer.alloc(0);

/** Writes the 8-byte header at the start of `frame`. */
export function writeFrameHeader(frame: Buffer, command: Command, payloadLength: number): void {
  frame.writeUInt32BE(payloadLength, 0);
  frame[4] = command;
  frame[5] = 0;
  frame[6] = 0;
  frame[7] = 0;
}

/** Appends the CRC32C trailer to a frame whose header and payload are already in place. */
export function sealFrame(frame: Buffer, payloadLength: number): void {
  const end = FRAME_HEADER_BYTES + payloadLength;
  frame.writeUInt32BE(crc32c(frame.subarray(0, end)), end);
}

/**
 * Incremental frame parser. Feed it socket chunks; it returns whole, checked frames. It never buffers more than
 * one maximum frame plus one chunk, so a hostile peer cannot make it allocate without bound.
 */
export class FrameReader {
  private buf: Buffer;
  private start = 0;
  private end = 0;
  private preambleSeen: boolean;
  /** A frame too big to assemble in `buf` without copying twice: it is filled in place, then handed over whole. */
  private big: Buffer | undefined;
  private bigFill = 0;

  constructor(
    private maxPayload = DEFAULT_MAX_FRAME,
    options: { expectPreamble?: boolean } = {},
  ) {
    if (maxPayload > HARD_MAX_FRAME)
      throw new RangeError(`max frame ${maxPayload} exceeds ${HARD_MAX_FRAME}`);
    this.buf = Buffer.allocUnsafe(256 * 1024);
    this.preambleSeen = !options.expectPreamble;
  }

  /**
   * Frames of `command` come out unchecked, carrying `unverified`: their consumer verifies the checksum in the same
   * pass that computes each page's CRC for the ledger (PAGES at the destination), instead of a second pass here.
   */
  deferChecksum(command: Command): void {
    this.deferred.add(command);
  }
  private readonly deferred = new Set<Command>();

  /** Frame binding of what the peer sends: set once the handshake gave the nonce; frames after it must be bound. */
  private binding: FrameBinding | undefined;
  bindFrames(binding: FrameBinding): void {
    this.binding = binding;
  }
  /**
   * Binds the frames that follow the next frame of `command` (HELLO_ACK / RECOVER_ACK) to the nonce `nonceOf` finds
   * in it, from the very next frame on, even one that arrived in the same chunk. `onBound` gets the nonce.
   */
  bindAfter(
    command: Command,
    nonceOf: (payload: Buffer) => Uint8Array | undefined,
    sender: FrameSender,
    onBound: (nonce: Uint8Array) => void,
  ): void {
    this.armed = { command, nonceOf, sender, onBound };
  }
  private armed:
    | {
        command: Command;
        nonceOf: (payload: Buffer) => Uint8Array | undefined;
        sender: FrameSender;
        onBound: (nonce: Uint8Array) => void;
      }
    | undefined;

  private afterFrame(f: Frame): void {
    const a = this.armed;
    if (a === undefined || f.command !== a.command) return;
    this.armed = undefined;
    const nonce = a.nonceOf(f.payload);
    if (nonce === undefined) return;
    this.binding = new FrameBinding(nonce, a.sender);
    a.onBound(nonce);
  }

  setMaxPayload(maxPayload: number): void {
    if (maxPayload > HARD_MAX_FRAME)
      throw new RangeError(`max frame ${maxPayload} exceeds ${HARD_MAX_FRAME}`);
    this.maxPayload = maxPayload;
  }

  /**
   * Room for large frames being assembled (a budget shared by many connections): `admit` is asked before a frame's
   * buffer is allocated (false = not now: push again once there is room), `done` when the frame is complete.
   */
  assembly: { admit(total: number): boolean; done(total: number): void } | undefined;

  /** Size of the large frame being assembled now (0 if none): what `assembly` holds for this reader. */
  get assembling(): number {
    return this.big?.length ?? 0;
  }

  /** Bytes received but not yet returned as frames. */
  get pending(): number {
    return this.end - this.start + this.bigFill;
  }

  /** Adds a chunk and returns every frame now complete. Throws MigrationError(PROTOCOL | CHECKSUM). */
  push(chunk: Uint8Array): Frame[] {
    const frames: Frame[] = [];
    let at = 0;
    if (this.big) {
      const n = Math.min(chunk.length, this.big.length - this.bigFill);
      this.big.set(chunk.subarray(0, n), this.bigFill);
      this.bigFill += n;
      at = n;
      if (this.bigFill < this.big.length) return frames;
      const whole = this.big;
      this.big = undefined;
      this.bigFill = 0;
      this.assembly?.done(whole.length);
      frames.push(this.check(whole, 0, whole.length - FRAME_HEADER_BYTES - FRAME_TRAILER_BYTES, true));
      if (this.armed) this.afterFrame(frames.at(-1)!);
    }
    this.append(at === 0 ? chunk : chunk.subarray(at));
    if (!this.preambleSeen) {
      if (this.end - this.start < PREAMBLE.length) return frames;
      if (PREAMBLE.compare(this.buf, this.start, this.start + PREAMBLE.length) !== 0) {
        throw protocolError('not a livemig migration stream (bad preamble)', {
          received: this.buf.subarray(this.start, this.start + PREAMBLE.length).toString('hex'),
        });
      }
      this.start += PREAMBLE.length;
      this.preambleSeen = true;
    }
    for (;;) {
      const available = this.end - this.start;
      if (available < FRAME_HEADER_BYTES) break;
      const length = this.buf.readUInt32BE(this.start);
      const command = this.buf[this.start + 4]!;
      if (length > this.maxPayload) {
        throw protocolError(`frame of ${length} bytes exceeds the limit of ${this.maxPayload}`, { length });
      }
      if (!(command in Command) || typeof Command[command] !== 'string') {
        throw protocolError(`unknown command ${command}`, { command });
      }
      if (
        this.buf[this.start + 5] !== 0 ||
        this.buf[this.start + 6] !== 0 ||
        this.buf[this.start + 7] !== 0
      ) {
        throw protocolError('reserved header bytes are not zero', { command });
      }
      const total = FRAME_HEADER_BYTES + length + FRAME_TRAILER_BYTES;
      if (available < total) {
        if (total > this.buf.length / 2) {
          // No room in the budget yet: the bytes stay where they are and the connection stops reading.
          if (this.assembly && !this.assembly.admit(total)) break;
          // Assemble a large frame in its own buffer: each byte is copied once on its way to the consumer.
          this.big = this.takeBuffer(total);
          this.buf.copy(this.big, 0, this.start, this.end);
          this.bigFill = available;
          this.start = 0;
          this.end = 0;
        }
        break;
      }
      frames.push(this.check(this.buf, this.start, length, false));
      if (this.armed) this.afterFrame(frames.at(-1)!);
      this.start += total;
    }
    if (this.start === this.end) {
      this.start = 0;
      this.end = 0;
    }
    return frames;
  }

  /** Large-frame buffers handed back by the consumer (`recycle`), reused so the stream does not churn memory. */
  private readonly spare: Buffer[] = [];

  private takeBuffer(total: number): Buffer {
    for (let i = 0; i < this.spare.length; i++) {
      const b = this.spare[i]!;
      if (b.length >= total) {
        this.spare.splice(i, 1);
        return b.subarray(0, total);
      }
    }
    // Room for the largest frames seen in practice, so the buffer can be reused for the next ones.
    return Buffer.allocUnsafe(Math.max(total, 1 << 20) + FRAME_HEADER_BYTES + FRAME_TRAILER_BYTES).subarray(
      0,
      total,
    );
  }

  /**
   * Hands back the buffer behind a frame's payload once the consumer is completely done with it (nothing may
   * keep a view into it afterwards). Only large frames own their buffer; others are ignored.
   */
  recycle(payload: Buffer): void {
    if (payload.byteOffset !== FRAME_HEADER_BYTES) return;
    this.recycleBuffer(Buffer.from(payload.buffer, 0, payload.buffer.byteLength));
  }

  /** Takes back a whole large-frame buffer (e.g. one that travelled to another thread and back). */
  recycleBuffer(whole: Buffer): void {
    if (this.spare.length < 16 && whole.length >= 1 << 20) this.spare.push(whole);
  }

  /** Verifies the CRC of the frame at `buf[start..]` and returns it (copied out unless `own`). */
  private check(buf: Buffer, start: number, length: number, own: boolean): Frame {
    const command = buf[start + 4]! as Command;
    const bodyEnd = start + FRAME_HEADER_BYTES + length;
    const expected = buf.readUInt32BE(bodyEnd);
    const b = this.binding;
    const sequence = b ? b.sequence : 0;
    const seed = b ? b.next() : undefined;
    if (this.deferred.size > 0 && this.deferred.has(command)) {
      const payload = own
        ? buf.subarray(start + FRAME_HEADER_BYTES, bodyEnd)
        : Buffer.from(buf.subarray(start + FRAME_HEADER_BYTES, bodyEnd));
      const headerCrc = crc32cUpdate(0, buf, start, start + FRAME_HEADER_BYTES);
      return {
        command,
        payload,
        unverified: {
          expected,
          headerCrc,
          ...(b && seed !== undefined ? { binding: { seed, sequence, of: b } } : {}),
        },
      };
    }
    const plain = crc32c(buf.subarray(start, bodyEnd));
    const actual = seed === undefined ? plain : crc32cCombine(seed, plain, bodyEnd - start);
    if (expected !== actual) {
      const why = b?.explain(command, expected, plain, bodyEnd - start, sequence);
      if (why) throw why;
      throw checksumError(command, expected, actual, b !== undefined);
    }
    const payload = own
      ? buf.subarray(start + FRAME_HEADER_BYTES, bodyEnd)
      : Buffer.from(buf.subarray(start + FRAME_HEADER_BYTES, bodyEnd));
    return { command, payload };
  }

  private append(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.end + chunk.length > this.buf.length) {
      // Compact, then grow if still needed; growth is bounded by twice the largest chunk seen.
      this.buf.copy(this.buf, 0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
      if (this.end + chunk.length > this.buf.length) {
        const next = Buffer.allocUnsafe(Math.max(this.end + chunk.length, this.buf.length * 2));
        this.buf.copy(next, 0, 0, this.end);
        this.buf = next;
      }
    }
    this.buf.set(chunk, this.end);
    this.end += chunk.length;
  }
}
