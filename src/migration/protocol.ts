/**
 * The livemig migration protocol: one TCP (or TLS) connection per migration, source → destination, with
 * post-copy page requests flowing back on the same connection. The whole conversation, before any code:
 *
 * ```mermaid
 * sequenceDiagram
 *   participant S as source agent
 *   participant D as destination agent
 *   S->>D: preamble "LVMGMIG1"
 *   S->>D: HELLO (versions, strategy, page size, RAM layout, codecs, guest config)
 *   D-->>S: HELLO_ACK (chosen version, accepted codecs, max frame) — or ERROR
 *   loop pre-copy round r = 1..n (none for cold / pure post-copy)
 *     S->>D: PAGES* (zero / raw / XBZRLE / RLE / compressed entries)
 *     S->>D: ROUND (r, pages sent, dirty pages left)
 *   end
 *   Note over S: pause guest, last dirty pages
 *   S->>D: PAGES* , VCPU_STATE
 *   alt pre-copy / cold
 *     S->>D: SWITCHOVER (digest of RAM and vCPU state)
 *     D-->>S: READY (digest verified) — or ERROR (DIGEST_MISMATCH)
 *     S->>D: GO (the source gives the guest up)
 *     D-->>S: RESUMED (guest running on the destination)
 *   else post-copy / hybrid
 *     S->>D: POSTCOPY_START (pages already valid at the destination)
 *     D-->>S: READY
 *     S->>D: GO
 *     D-->>S: RESUMED
 *     par background push and demand faults
 *       S->>D: PAGES* (pushed in address order)
 *       D-->>S: PAGE_REQUEST (pages the guest faulted on)
 *       S->>D: PAGES (requested pages first)
 *     end
 *     S->>D: POSTCOPY_END (digest of the RAM the source sent)
 *     D-->>S: COMPLETE (digest verified, destination statistics)
 *   end
 * ```
 *
 * Receiver (destination) states:
 *
 * ```mermaid
 * stateDiagram-v2
 *   [*] --> AwaitHello
 *   AwaitHello --> Receiving: HELLO accepted
 *   Receiving --> Receiving: PAGES / ROUND / VCPU_STATE
 *   Receiving --> Verifying: SWITCHOVER
 *   Verifying --> AwaitGo: digest ok, READY sent
 *   Receiving --> AwaitGo: POSTCOPY_START, READY sent
 *   AwaitGo --> Running: GO (guest resumed, RESUMED sent)
 *   Running --> Running: PAGES (post-copy)
 *   Running --> Done: POSTCOPY_END verified / after RESUMED (pre-copy)
 *   AwaitHello --> Discarded: error, cancel, lost connection
 *   Receiving --> Discarded: error, cancel, lost connection
 *   Verifying --> Discarded: digest mismatch
 *   AwaitGo --> Discarded: lost connection (source keeps the guest)
 * ```
 *
 * Framing. After an 8-byte preamble, everything is a frame:
 *
 * | offset | size | field |
 * | --- | --- | --- |
 * | 0 | 4 | payload length L, u32 big-endian, ≤ the negotiated maximum |
 * | 4 | 1 | command (enum {@link Command}) |
 * | 5 | 3 | reserved, must be 0 |
 * | 8 | L | payload |
 * | 8+L | 4 | CRC32C (Castagnoli) of bytes 0 .. 8+L, u32 big-endian |
 *
 * Frame binding (capability FRAME_BINDING): HELLO_ACK (or RECOVER_ACK) carries a random 16-byte nonce, and every
 * later frame's CRC32C, in both directions, is taken over (nonce ‖ sender ‖ sequence number ‖ frame) instead of the
 * frame alone — sender 0 = source, 1 = destination, sequence u64 counting that sender's frames from 0. A frame of
 * another migration, or one replayed, reordered or dropped, then fails its check on arrival (FOREIGN_FRAME) and is
 * refused before it is used. It is an integrity check against mixed-up streams, not authentication: the nonce
 * travels in clear. TLS authenticates; this catches what plain TCP cannot.
 *
 * Versioning and compatibility: HELLO carries the range of protocol versions the source speaks; the destination
 * picks the highest it also speaks or refuses with ERROR(VERSION). A new optional feature is a new capability bit
 * (never a reinterpretation of an old field); a change to the meaning of an existing frame is a new version.
 * Unknown commands, non-zero reserved bytes, bad checksums and out-of-bound fields are errors, never skipped.
 */
import { crc32c } from '@node-rs/crc32';
import { MigrationError } from '../errors.js';
import { Crc32cShifter, crc32cCombine, crc32cNative, crc32cUpdate } from './crc.js';

export const PREAMBLE = Buffer.from('LVMGMIG1', 'latin1');
export const PROTOCOL_VERSION = 1;
export const MIN_PROTOCOL_VERSION = 1;
export const FRAME_HEADER_BYTES = 8;
export const FRAME_TRAILER_BYTES = 4;
/** Default and hard ceiling on a frame's payload: bounds what a peer can make us buffer. */
export const DEFAULT_MAX_FRAME = 4 << 20;
export const HARD_MAX_FRAME = 64 << 20;
/** Bound on JSON carried in HELLO / VCPU_STATE / ERROR / COMPLETE payloads. */
export const MAX_JSON_BYTES = 1 << 20;
/**
 * Largest frame a destination reads before it has accepted a HELLO (HELLO or RECOVER: fixed fields, up to
 * MAX_BLOCKS block sizes and the guest JSON): an unauthenticated peer cannot make it buffer a 4 MiB frame.
 */
export const MAX_HELLO_PAYLOAD = MAX_JSON_BYTES + 64 * 1024;

/** Every command of the protocol, one enum (the value is the byte on the wire). */
export enum Command {
  HELLO = 1,
  HELLO_ACK = 2,
  PAGES = 3,
  ROUND = 4,
  VCPU_STATE = 5,
  SWITCHOVER = 6,
  READY = 7,
  GO = 8,
  RESUMED = 9,
  POSTCOPY_START = 10,
  PAGE_REQUEST = 11,
  POSTCOPY_END = 12,
  COMPLETE = 13,
  ERROR = 14,
  CANCEL = 15,
  /** First frame of a new connection that resumes a post-copy whose link broke (instead of HELLO). */
  RECOVER = 16,
  /** The destination's answer to RECOVER: the bitmap of pages it holds. */
  RECOVER_ACK = 17,
  /**
   * First frame of a connection that settles who runs the guest after a fault between READY and RESUMED (instead
   * of HELLO): "did the guest resume on your side?" (docs/protocol.md, "Who owns the guest after GO").
   */
  RECONCILE = 18,
  /** The destination's answer to RECONCILE: resumed, held (verified, paused, waiting for GO) or gone. */
  OWNER = 19,
  /**
   * A piece of a `trace` guest's recording, sent right after HELLO_ACK (HELLO's guest JSON announces its size): the
   * destination replays the trace it received, never a file a peer names. (Numbered apart from the commands above
   * so that new handshake commands can take the next numbers.)
   */
  TRACE = 32,
}

/** How one page travels inside a PAGES frame (the value is the byte on the wire). */
export enum PageEncoding {
  /** All bytes zero; no data. */
  ZERO = 0,
  /** The page as is; data length = page size. */
  RAW = 1,
  /** QEMU's XBZRLE delta against the copy the destination already holds; 1 ≤ length < page size. */
  XBZRLE = 2,
  /** livemig's RLE of the page alone (no previous copy needed). */
  RLE = 3,
  DEFLATE = 4,
  ZSTD = 5,
  LZ4 = 6,
}

/** Capability bits offered in HELLO and accepted in HELLO_ACK. */
export const Capability = {
  XBZRLE: 1 << 0,
  RLE: 1 << 1,
  DEFLATE: 1 << 2,
  ZSTD: 1 << 3,
  LZ4: 1 << 4,
  POSTCOPY: 1 << 5,
  /** The source can reconnect after a broken post-copy link (RECOVER); HELLO's guest JSON carries the token. */
  POSTCOPY_RECOVER: 1 << 6,
  /** Frames after HELLO_ACK / RECOVER_ACK are bound to the connection's nonce and their sequence number. */
  FRAME_BINDING: 1 << 7,
  /**
   * After READY the destination holds a verified guest paused until GO or a RECONCILE verdict, never discarding it
   * on a lost link; HELLO's guest JSON carries the token (recoveryToken) a RECONCILE must present.
   */
  OWNER_RECONCILE: 1 << 8,
} as const;

/** Bytes of the frame-binding nonce in HELLO_ACK and RECOVER_ACK. */
export const BINDING_NONCE_BYTES = 16;
/** Who sent a frame, in the frame-binding prefix. */
export enum FrameSender {
  SOURCE = 0,
  DESTINATION = 1,
}

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
  const end = frame.length - FRAME_TRAILER_BYTES;
  frame.writeUInt32BE(crc32cCombine(seed, frame.readUInt32BE(end), end), end);
}

function foreignFrame(command: Command, sequence: number, why: string): MigrationError {
  return new MigrationError(
    'FOREIGN_FRAME',
    `migration stream: the ${Command[command]} frame at position ${sequence} does not belong here: its CRC32C is ` +
      `intact but ${why} (a frame of another migration, replayed, reordered or dropped on the way); refused before use`,
    { command: Command[command], sequence },
  );
}

export enum StrategyCode {
  COLD = 0,
  PRECOPY = 1,
  POSTCOPY = 2,
  HYBRID = 3,
}

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

function protocolError(message: string, context: Record<string, unknown> = {}): MigrationError {
  return new MigrationError('PROTOCOL', `migration stream: ${message}`, context);
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

// ---------------------------------------------------------------------------------------------------------
// Payloads

/** Little helper that reads fields in order and refuses to read past the end. */
export class PayloadReader {
  offset = 0;
  constructor(
    readonly buf: Buffer,
    readonly what: string,
  ) {}
  private need(n: number): void {
    if (this.offset + n > this.buf.length) {
      throw protocolError(`${this.what} payload truncated at byte ${this.offset} (needs ${n} more)`);
    }
  }
  u8(): number {
    this.need(1);
    return this.buf[this.offset++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.offset);
    this.offset += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }
  u64(): number {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.offset);
    this.offset += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw protocolError(`${this.what}: 64-bit field out of range`);
    return Number(v);
  }
  bytes(n: number): Buffer {
    this.need(n);
    const v = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return v;
  }
  json(): unknown {
    const n = this.u32();
    if (n > MAX_JSON_BYTES) throw protocolError(`${this.what}: JSON of ${n} bytes exceeds ${MAX_JSON_BYTES}`);
    const text = this.bytes(n).toString('utf8');
    try {
      return JSON.parse(text);
    } catch {
      throw protocolError(`${this.what}: malformed JSON`);
    }
  }
  end(): void {
    if (this.offset !== this.buf.length) {
      throw protocolError(
        `${this.what} payload has ${this.buf.length - this.offset} unexpected trailing bytes`,
      );
    }
  }
}

export class PayloadWriter {
  private parts: Buffer[] = [];
  u8(v: number): this {
    this.parts.push(Buffer.from([v]));
    return this;
  }
  u16(v: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeUInt16BE(v);
    this.parts.push(b);
    return this;
  }
  u32(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(v >>> 0);
    this.parts.push(b);
    return this;
  }
  u64(v: number): this {
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64BE(BigInt(v));
    this.parts.push(b);
    return this;
  }
  bytes(v: Uint8Array): this {
    this.parts.push(Buffer.from(v));
    return this;
  }
  json(v: unknown): this {
    const text = Buffer.from(JSON.stringify(v), 'utf8');
    if (text.length > MAX_JSON_BYTES)
      throw new RangeError(`JSON of ${text.length} bytes exceeds ${MAX_JSON_BYTES}`);
    return this.u32(text.length).bytes(text);
  }
  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

const HELLO_MAGIC = 0x4c564d47; // "LVMG"
/** Bounds that keep a HELLO from announcing absurd guests; the agent applies its own (lower) RAM limit too. */
export const MAX_PAGE_SIZE_LOG2 = 16;
export const MIN_PAGE_SIZE_LOG2 = 9;
export const MAX_BLOCKS = 4096;
export const MAX_VCPUS = 1024;

export interface Hello {
  versionMin: number;
  versionMax: number;
  migrationId: string; // 32 hex chars
  strategy: StrategyCode;
  pageSize: number;
  capabilities: number;
  /** Page count of each RAM block, in order. */
  blocks: number[];
  vcpus: number;
  /** The guest's configuration (workload, seed, ...), validated by the destination. */
  guest: unknown;
}

export function encodeHello(h: Hello): Buffer {
  const w = new PayloadWriter()
    .u32(HELLO_MAGIC)
    .u16(h.versionMin)
    .u16(h.versionMax)
    .bytes(Buffer.from(h.migrationId, 'hex'))
    .u8(h.strategy)
    .u8(Math.log2(h.pageSize))
    .u32(h.capabilities)
    .u16(h.vcpus)
    .u16(h.blocks.length);
  for (const b of h.blocks) w.u32(b);
  return w.json(h.guest).finish();
}

export function decodeHello(payload: Buffer): Hello {
  const r = new PayloadReader(payload, 'HELLO');
  if (r.u32() !== HELLO_MAGIC) throw protocolError('HELLO: bad magic');
  const versionMin = r.u16();
  const versionMax = r.u16();
  if (versionMin > versionMax)
    throw protocolError('HELLO: version range is empty', { versionMin, versionMax });
  const migrationId = r.bytes(16).toString('hex');
  const strategy = r.u8();
  if (!(strategy in StrategyCode)) throw protocolError(`HELLO: unknown strategy ${strategy}`);
  const log2 = r.u8();
  if (log2 < MIN_PAGE_SIZE_LOG2 || log2 > MAX_PAGE_SIZE_LOG2) {
    throw protocolError(
      `HELLO: page size 2^${log2} outside 2^${MIN_PAGE_SIZE_LOG2}..2^${MAX_PAGE_SIZE_LOG2}`,
    );
  }
  const capabilities = r.u32();
  const vcpus = r.u16();
  if (vcpus < 1 || vcpus > MAX_VCPUS) throw protocolError(`HELLO: ${vcpus} vCPUs outside 1..${MAX_VCPUS}`);
  const blockCount = r.u16();
  if (blockCount < 1 || blockCount > MAX_BLOCKS) throw protocolError(`HELLO: ${blockCount} RAM blocks`);
  const blocks: number[] = [];
  for (let i = 0; i < blockCount; i++) {
    const pages = r.u32();
    if (pages < 1) throw protocolError(`HELLO: RAM block ${i} is empty`);
    blocks.push(pages);
  }
  const guest = r.json();
  r.end();
  return {
    versionMin,
    versionMax,
    migrationId,
    strategy,
    pageSize: 2 ** log2,
    capabilities,
    blocks,
    vcpus,
    guest,
  };
}

export interface HelloAck {
  version: number;
  capabilities: number;
  maxFrame: number;
  /** The frame-binding nonce: present exactly when `capabilities` has FRAME_BINDING. */
  nonce?: Buffer;
}

export function encodeHelloAck(a: HelloAck): Buffer {
  const w = new PayloadWriter().u16(a.version).u32(a.capabilities).u32(a.maxFrame);
  if ((a.capabilities & Capability.FRAME_BINDING) !== 0) {
    if (a.nonce?.length !== BINDING_NONCE_BYTES)
      throw new RangeError('HELLO_ACK: FRAME_BINDING needs a nonce');
    w.bytes(a.nonce);
  }
  return w.finish();
}

export function decodeHelloAck(payload: Buffer): HelloAck {
  const r = new PayloadReader(payload, 'HELLO_ACK');
  const a: HelloAck = { version: r.u16(), capabilities: r.u32(), maxFrame: r.u32() };
  if ((a.capabilities & Capability.FRAME_BINDING) !== 0) a.nonce = Buffer.from(r.bytes(BINDING_NONCE_BYTES));
  r.end();
  if (a.maxFrame < 64 * 1024 || a.maxFrame > HARD_MAX_FRAME) {
    throw protocolError(`HELLO_ACK: max frame ${a.maxFrame} outside 64 KiB..${HARD_MAX_FRAME}`);
  }
  return a;
}

/** ROUND: the end of a pre-copy round. */
export interface RoundMark {
  round: number;
  pagesSent: number;
  dirtyPages: number;
}
export function encodeRound(m: RoundMark): Buffer {
  return new PayloadWriter().u32(m.round).u32(m.pagesSent).u32(m.dirtyPages).finish();
}
export function decodeRound(payload: Buffer): RoundMark {
  const r = new PayloadReader(payload, 'ROUND');
  const m = { round: r.u32(), pagesSent: r.u32(), dirtyPages: r.u32() };
  r.end();
  return m;
}

/** A digest of the guest: the combined page ledger (see ledger.ts) and a SHA-256 of the vCPU state JSON. */
export interface Digest {
  /** 'ledger': per-page CRC32C of what was sent; 'full': recomputed from all of RAM while paused. */
  method: 'ledger' | 'full' | 'none';
  ram: string; // 16 hex chars
  vcpu: string; // 64 hex chars
}
const DIGEST_METHODS = ['ledger', 'full', 'none'] as const;
export function encodeDigest(d: Digest): Buffer {
  return new PayloadWriter()
    .u8(DIGEST_METHODS.indexOf(d.method))
    .bytes(Buffer.from(d.ram, 'hex'))
    .bytes(Buffer.from(d.vcpu, 'hex'))
    .finish();
}
export function decodeDigest(payload: Buffer, what = 'SWITCHOVER'): Digest {
  const r = new PayloadReader(payload, what);
  const m = r.u8();
  const method = DIGEST_METHODS[m];
  if (!method) throw protocolError(`${what}: unknown digest method ${m}`);
  const d = { method, ram: r.bytes(8).toString('hex'), vcpu: r.bytes(32).toString('hex') };
  r.end();
  return d;
}

/** PAGE_REQUEST: pages the destination's guest faulted on (post-copy). */
export const MAX_REQUEST_PAGES = 4096;
export function encodePageRequest(pages: readonly number[]): Buffer {
  const w = new PayloadWriter().u32(pages.length);
  for (const p of pages) w.u32(p);
  return w.finish();
}
export function decodePageRequest(payload: Buffer, pageCount: number): number[] {
  const r = new PayloadReader(payload, 'PAGE_REQUEST');
  const n = r.u32();
  if (n < 1 || n > MAX_REQUEST_PAGES)
    throw protocolError(`PAGE_REQUEST: ${n} pages outside 1..${MAX_REQUEST_PAGES}`);
  const pages: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = r.u32();
    if (p >= pageCount) throw protocolError(`PAGE_REQUEST: page ${p} beyond the guest's ${pageCount} pages`);
    pages.push(p);
  }
  r.end();
  return pages;
}

/** POSTCOPY_START: a bitmap (1 bit per page) of the pages already valid at the destination (hybrid). */
export function encodePostcopyStart(validBitmap: Uint8Array): Buffer {
  return new PayloadWriter().u32(validBitmap.length).bytes(validBitmap).finish();
}
export function decodePostcopyStart(payload: Buffer, pageCount: number): Uint8Array {
  const r = new PayloadReader(payload, 'POSTCOPY_START');
  const n = r.u32();
  if (n !== Math.ceil(pageCount / 8)) {
    throw protocolError(`POSTCOPY_START: bitmap of ${n} bytes for ${pageCount} pages`);
  }
  const bitmap = new Uint8Array(r.bytes(n));
  r.end();
  return bitmap;
}

/** RECOVER: which migration to resume, and the secret the source gave in HELLO (proves it is the same source). */
export interface Recover {
  migrationId: string;
  token: string;
}
export function encodeRecover(r: Recover): Buffer {
  return encodeJson(r);
}
export function decodeRecover(payload: Buffer): Recover {
  const v = decodeJson(payload, 'RECOVER') as Partial<Recover> | null;
  if (
    !v ||
    typeof v.migrationId !== 'string' ||
    !/^[0-9a-f]{32}$/.test(v.migrationId) ||
    typeof v.token !== 'string' ||
    !/^[0-9a-f]{32}$/.test(v.token)
  ) {
    throw protocolError('RECOVER: expected {migrationId, token} as 32 hex digits each');
  }
  return { migrationId: v.migrationId, token: v.token };
}

/**
 * RECOVER_ACK: the pages the destination holds, in POSTCOPY_START's bitmap layout, then — when the migration's frames
 * are bound (FRAME_BINDING in HELLO_ACK) — the new connection's 16-byte nonce.
 */
export function encodeRecoverAck(present: Uint8Array, nonce?: Uint8Array): Buffer {
  const w = new PayloadWriter().u32(present.length).bytes(present);
  if (nonce !== undefined) w.bytes(nonce);
  return w.finish();
}
export function decodeRecoverAck(
  payload: Buffer,
  pageCount: number,
  bound: boolean,
): { present: Uint8Array; nonce?: Buffer } {
  const r = new PayloadReader(payload, 'RECOVER_ACK');
  const n = r.u32();
  if (n !== Math.ceil(pageCount / 8)) {
    throw protocolError(`RECOVER_ACK: bitmap of ${n} bytes for ${pageCount} pages`);
  }
  const present = new Uint8Array(r.bytes(n));
  const nonce = bound ? Buffer.from(r.bytes(BINDING_NONCE_BYTES)) : undefined;
  r.end();
  return nonce === undefined ? { present } : { present, nonce };
}

/** JSON-carrying frames (VCPU_STATE, ERROR, COMPLETE, RESUMED, READY). */
export function encodeJson(value: unknown): Buffer {
  return new PayloadWriter().json(value).finish();
}
export function decodeJson(payload: Buffer, what: string): unknown {
  const r = new PayloadReader(payload, what);
  const v = r.json();
  r.end();
  return v;
}

// ---------------------------------------------------------------------------------------------------------
// PAGES frames

/** Entry header inside a PAGES payload: page index u32, encoding u8, data length u32. */
export const PAGE_ENTRY_HEADER_BYTES = 9;

/**
 * Builds PAGES frames in place, without intermediate copies: the caller asks for room for one page entry, writes
 * the page's data straight into the frame buffer, and commits. When the frame is full it is sealed and handed to
 * `flush`.
 */
export class PagesFrameBuilder {
  private frame: Buffer;
  private offset = FRAME_HEADER_BYTES + 4;
  private count = 0;
  /** CRC32C of the committed entries (everything after the count), kept as they are committed. */
  private entriesCrc = 0;
  /** Combines a whole page's CRC into `entriesCrc` with four table lookups. */
  private readonly shifter: Crc32cShifter | undefined;
  /** Frame buffers the socket has finished with, reused so that a stream of frames does not churn the GC. */
  private readonly pool: Buffer[] = [];

  constructor(
    private readonly maxPayload: number,
    private readonly flush: (frame: Buffer, release: () => void) => void,
    pageSize?: number,
  ) {
    this.shifter = pageSize === undefined ? undefined : new Crc32cShifter(pageSize);
    this.frame = this.take();
  }

  private take(): Buffer {
    return this.pool.pop() ?? Buffer.allocUnsafe(FRAME_HEADER_BYTES + this.maxPayload + FRAME_TRAILER_BYTES);
  }

  get entries(): number {
    return this.count;
  }

  /** Returns a view of `maxData` writable bytes for the next entry's data, flushing first if it would not fit. */
  reserve(maxData: number): Buffer {
    const needed = PAGE_ENTRY_HEADER_BYTES + maxData;
    if (needed + 4 > this.maxPayload)
      throw new RangeError(`page entry of ${needed} bytes exceeds the frame limit`);
    if (this.offset + needed > FRAME_HEADER_BYTES + this.maxPayload) this.finishFrame();
    const dataStart = this.offset + PAGE_ENTRY_HEADER_BYTES;
    return this.frame.subarray(dataStart, dataStart + maxData);
  }

  /**
   * Commits the entry whose data (of `length` bytes) was written into the last reserved view. `dataCrc`, when the
   * caller already has the CRC32C of exactly those bytes (the ledger's page CRC of a raw page), spares the frame
   * trailer a second pass over them.
   */
  commit(page: number, encoding: PageEncoding, length: number, dataCrc?: number): void {
    const f = this.frame;
    const at = this.offset;
    f.writeUInt32BE(page, at);
    f[at + 4] = encoding;
    f.writeUInt32BE(length, at + 5);
    let crc = crc32cUpdate(this.entriesCrc, f, at, at + PAGE_ENTRY_HEADER_BYTES);
    if (length > 0) {
      const dataAt = at + PAGE_ENTRY_HEADER_BYTES;
      if (dataCrc === undefined) crc = crc32cNative(f.subarray(dataAt, dataAt + length), crc);
      else if (length === this.shifter?.length) crc = this.shifter.combine(crc, dataCrc);
      else crc = crc32cCombine(crc, dataCrc, length);
    }
    this.entriesCrc = crc;
    this.offset = at + PAGE_ENTRY_HEADER_BYTES + length;
    this.count++;
  }

  /** Seals and flushes the current frame if it holds any entry. */
  finishFrame(): void {
    if (this.count === 0) return;
    const payloadLength = this.offset - FRAME_HEADER_BYTES;
    writeFrameHeader(this.frame, Command.PAGES, payloadLength);
    this.frame.writeUInt32BE(this.count, FRAME_HEADER_BYTES);
    // crc(header ‖ count ‖ entries), from the entries' running CRC: no pass over the page data here.
    const head = crc32cUpdate(0, this.frame, 0, FRAME_HEADER_BYTES + 4);
    const entriesLength = payloadLength - 4;
    this.frame.writeUInt32BE(crc32cCombine(head, this.entriesCrc, entriesLength), this.offset);
    const full = this.frame;
    const out = full.subarray(0, FRAME_HEADER_BYTES + payloadLength + FRAME_TRAILER_BYTES);
    // The socket holds `out` until it is written; the next frame takes another buffer.
    this.frame = this.take();
    this.offset = FRAME_HEADER_BYTES + 4;
    this.count = 0;
    this.entriesCrc = 0;
    let released = false;
    this.flush(out, () => {
      if (!released && this.pool.length < 16) this.pool.push(full);
      released = true;
    });
  }
}

export interface PageEntry {
  page: number;
  encoding: PageEncoding;
  data: Buffer;
}

/**
 * Walks the entries of a PAGES payload, checking every bound before the caller touches RAM: page index within the
 * guest, known encoding, data length legal for the encoding (zero: 0; raw: page size; others: 1..page size + 64).
 */
export function forEachPageEntry(
  payload: Buffer,
  pageCount: number,
  pageSize: number,
  visit: (page: number, encoding: PageEncoding, data: Buffer) => void,
): number {
  if (payload.length < 4) throw protocolError('PAGES payload truncated');
  const count = payload.readUInt32BE(0);
  let offset = 4;
  for (let i = 0; i < count; i++) {
    const length = checkPageEntry(payload, offset, i, count, pageCount, pageSize);
    const page = payload.readUInt32BE(offset);
    const encoding = payload[offset + 4]! as PageEncoding;
    offset += PAGE_ENTRY_HEADER_BYTES;
    visit(page, encoding, payload.subarray(offset, offset + length));
    offset += length;
  }
  if (offset !== payload.length) throw protocolError('PAGES: trailing bytes after the last entry');
  return count;
}

/**
 * Checks every bound of the entry at `offset` (header and data inside the payload, page within the guest, known
 * encoding, data length legal for it: zero 0, raw the page size, others 1..page size + 64) and returns its data
 * length. The one place these rules live, for both ways of walking a PAGES payload.
 */
function checkPageEntry(
  payload: Buffer,
  offset: number,
  i: number,
  count: number,
  pageCount: number,
  pageSize: number,
): number {
  if (offset + PAGE_ENTRY_HEADER_BYTES > payload.length) {
    throw protocolError(`PAGES: entry ${i} of ${count} truncated`);
  }
  const page = payload.readUInt32BE(offset);
  const encoding = payload[offset + 4]!;
  const length = payload.readUInt32BE(offset + 5);
  if (page >= pageCount) throw protocolError(`PAGES: page ${page} beyond the guest's ${pageCount} pages`);
  if (encoding > PageEncoding.LZ4) throw protocolError(`PAGES: unknown page encoding ${encoding}`, { page });
  const ok =
    encoding === PageEncoding.ZERO
      ? length === 0
      : encoding === PageEncoding.RAW
        ? length === pageSize
        : length >= 1 && length <= pageSize + 64;
  if (!ok) {
    throw protocolError(
      `PAGES: ${PageEncoding[encoding]} entry for page ${page} has illegal length ${length}`,
    );
  }
  if (offset + PAGE_ENTRY_HEADER_BYTES + length > payload.length) {
    throw protocolError(`PAGES: entry ${i} data truncated`, { page });
  }
  return length;
}

/**
 * Checks a PAGES frame whose checksum the reader deferred, in one pass: every bound (as {@link forEachPageEntry}),
 * then the frame's CRC32C assembled from each entry's data CRC. `entryCrcs[i]` receives the CRC32C of entry i's
 * data (for a RAW entry, the page's ledger CRC); it is grown if too small and returned. Throws
 * MigrationError(PROTOCOL | CHECKSUM); nothing in the payload may be used if it throws.
 */
export function verifyPagesFrame(
  frame: Frame,
  pageCount: number,
  pageSize: number,
  shifter: Crc32cShifter,
  entryCrcs: Uint32Array,
): { count: number; entryCrcs: Uint32Array } {
  try {
    return walkPagesFrame(frame, pageCount, pageSize, shifter, entryCrcs);
  } catch (err) {
    // A corrupt frame is a checksum error first, as when the reader checks it, even if the damage broke a bound.
    const pending = frame.unverified;
    if (
      pending &&
      !(err instanceof MigrationError && (err.code === 'CHECKSUM' || err.code === 'FOREIGN_FRAME'))
    ) {
      checkDeferred(pending, crc32cNative(frame.payload, pending.headerCrc), frame.payload.length);
    }
    throw err;
  }
}

/** Checks a deferred frame's trailer against its plain CRC (of header ‖ payload), bound when the stream is bound. */
function checkDeferred(
  pending: NonNullable<Frame['unverified']>,
  plain: number,
  payloadLength: number,
): void {
  const bound = pending.binding;
  const actual = bound ? crc32cCombine(bound.seed, plain, FRAME_HEADER_BYTES + payloadLength) : plain;
  if (actual === pending.expected) return;
  const why = bound?.of.explain(
    Command.PAGES,
    pending.expected,
    plain,
    FRAME_HEADER_BYTES + payloadLength,
    bound.sequence,
  );
  throw why ?? checksumError(Command.PAGES, pending.expected, actual, bound !== undefined);
}

function checksumError(command: Command, expected: number, actual: number, bound: boolean): MigrationError {
  // A frame bound to another nonce cannot be told from damage: say both.
  const what = bound ? ' (damaged on the way, or a frame of another migration)' : '';
  return new MigrationError(
    'CHECKSUM',
    `migration stream: CRC32C mismatch in ${Command[command]} frame${what}`,
    {
      command: Command[command],
      expected,
      actual,
    },
  );
}

function walkPagesFrame(
  frame: Frame,
  pageCount: number,
  pageSize: number,
  shifter: Crc32cShifter,
  entryCrcs: Uint32Array,
): { count: number; entryCrcs: Uint32Array } {
  const payload = frame.payload;
  const pending = frame.unverified;
  if (payload.length < 4) throw protocolError('PAGES payload truncated');
  const count = payload.readUInt32BE(0);
  // Every entry takes at least its header: bound the CRC array by the bytes actually received.
  if (count > (payload.length - 4) / PAGE_ENTRY_HEADER_BYTES) {
    throw protocolError(`PAGES: ${count} entries cannot fit in ${payload.length} bytes`);
  }
  if (entryCrcs.length < count) entryCrcs = new Uint32Array(Math.max(count, entryCrcs.length * 2));
  let crc = 0;
  let offset = 4;
  for (let i = 0; i < count; i++) {
    const length = checkPageEntry(payload, offset, i, count, pageCount, pageSize);
    if (pending) crc = crc32cUpdate(crc, payload, offset, offset + PAGE_ENTRY_HEADER_BYTES);
    offset += PAGE_ENTRY_HEADER_BYTES;
    if (length > 0) {
      const c = crc32cNative(payload.subarray(offset, offset + length));
      entryCrcs[i] = c;
      if (pending) crc = length === shifter.length ? shifter.combine(crc, c) : crc32cCombine(crc, c, length);
    } else {
      entryCrcs[i] = 0;
    }
    offset += length;
  }
  if (offset !== payload.length) throw protocolError('PAGES: trailing bytes after the last entry');
  if (pending) {
    // crc(header ‖ count ‖ entries)
    const head = crc32cUpdate(pending.headerCrc, payload, 0, 4);
    checkDeferred(pending, crc32cCombine(head, crc, payload.length - 4), payload.length);
  }
  return { count, entryCrcs };
}

// ---------------------------------------------------------------------------------------------------------
// Ownership after GO (RECONCILE / OWNER)

/**
 * RECONCILE: which migration, the token from HELLO, and what the source asks for: `query` (tell me, and keep a held
 * guest held: the source then sends GO on this connection) or `abort` (the source kept the guest: discard yours).
 */
export interface Reconcile {
  migrationId: string;
  token: string;
  action: 'query' | 'abort';
}
export function encodeReconcile(r: Reconcile): Buffer {
  return encodeJson(r);
}
export function decodeReconcile(payload: Buffer): Reconcile {
  const v = decodeJson(payload, 'RECONCILE') as Partial<Reconcile> | null;
  if (
    !v ||
    typeof v.migrationId !== 'string' ||
    !/^[0-9a-f]{32}$/.test(v.migrationId) ||
    typeof v.token !== 'string' ||
    !/^[0-9a-f]{32}$/.test(v.token) ||
    (v.action !== 'query' && v.action !== 'abort')
  ) {
    throw protocolError(
      'RECONCILE: expected {migrationId, token, action: "query" | "abort"}, ids as 32 hex digits',
    );
  }
  return { migrationId: v.migrationId, token: v.token, action: v.action };
}

/**
 * Where the guest of a migration stands on the destination: `resumed` (it runs there, or ran: the destination owns
 * it), `held` (complete, verified and paused, waiting for GO or a verdict), `discarded` (the destination dropped its
 * copy and will never resume it), `unknown` (no such migration here: it never got past setup, or this agent
 * restarted — a guest dies with its agent).
 */
export const OWNER_STATES = ['resumed', 'held', 'discarded', 'unknown'] as const;
export type OwnerState = (typeof OWNER_STATES)[number];
export function encodeOwner(state: OwnerState): Buffer {
  return encodeJson({ state });
}
export function decodeOwner(payload: Buffer): OwnerState {
  const v = decodeJson(payload, 'OWNER') as { state?: unknown } | null;
  const state = v?.state;
  if (typeof state !== 'string' || !(OWNER_STATES as readonly string[]).includes(state)) {
    throw protocolError(`OWNER: expected {state: ${OWNER_STATES.join(' | ')}}`);
  }
  return state as OwnerState;
}
