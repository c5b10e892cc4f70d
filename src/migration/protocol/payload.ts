/** Reading and writing the fields of a frame's payload, in order, never past its end. */
import { protocolError } from './errors.js';
import { MAX_JSON_BYTES } from './wire.js';

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
