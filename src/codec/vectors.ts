/**
 * Conformance checker for XBZRLE vector files (JSON Lines, format in `fixtures/README.md`): each
 * `encode` record must give QEMU's exact bytes or overflow, each `decode` record QEMU's result or rejection.
 * Used by the unit test on the public fixture and by `npm run check:vectors -- <file.jsonl>` on any other.
 */
import { readFileSync } from 'node:fs';
import { CodecError } from '../errors.js';
import { decodeXbzrleEnd, encodeXbzrle, type XbzrleEngine } from './xbzrle.js';

export interface EncodeVector {
  readonly name: string;
  readonly kind: 'encode';
  readonly pageSize: number;
  readonly old: Uint8Array;
  readonly new: Uint8Array;
  readonly slen: number;
  /** `undefined` when the reference overflowed. */
  readonly encoded: Uint8Array | undefined;
  readonly encodedLength: number;
}

export interface DecodeVector {
  readonly name: string;
  readonly kind: 'decode';
  readonly pageSize: number;
  readonly old: Uint8Array;
  readonly encoded: Uint8Array;
  /** `undefined` when the reference rejected the stream. */
  readonly result: Uint8Array | undefined;
  readonly returnValue: number;
}

export type XbzrleVector = EncodeVector | DecodeVector;

export interface VectorOutcome {
  readonly name: string;
  readonly kind: 'encode' | 'decode';
  readonly ok: boolean;
  /** Why it failed, empty when ok. */
  readonly detail: string;
}

function bytes(value: unknown, field: string, line: number): Uint8Array {
  if (typeof value !== 'string') throw new Error(`line ${line}: ${field} must be base64`);
  return new Uint8Array(Buffer.from(value, 'base64'));
}

function num(value: unknown, field: string, line: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new Error(`line ${line}: ${field} must be an integer`);
  }
  return value;
}

/** Parses a vector file's text. Throws on a record that does not follow the format. */
export function parseVectors(text: string): XbzrleVector[] {
  const vectors: XbzrleVector[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = index + 1;
    if (raw.trim() === '') return;
    const r = JSON.parse(raw) as Record<string, unknown>;
    const name = typeof r.name === 'string' ? r.name : `line ${line}`;
    const pageSize = num(r.pageSize, 'pageSize', line);
    if (r.kind === 'encode') {
      vectors.push({
        name,
        kind: 'encode',
        pageSize,
        old: bytes(r.old, 'old', line),
        new: bytes(r.new, 'new', line),
        slen: num(r.slen, 'slen', line),
        encoded: r.encoded === null ? undefined : bytes(r.encoded, 'encoded', line),
        encodedLength: num(r.encodedLength, 'encodedLength', line),
      });
    } else if (r.kind === 'decode') {
      vectors.push({
        name,
        kind: 'decode',
        pageSize,
        old: bytes(r.old, 'old', line),
        encoded: bytes(r.encoded, 'encoded', line),
        result: r.result === null ? undefined : bytes(r.result, 'result', line),
        returnValue: num(r.returnValue, 'returnValue', line),
      });
    } else {
      throw new Error(`line ${line}: unknown kind ${String(r.kind)}`);
    }
  });
  return vectors;
}

export function readVectors(path: string | URL): XbzrleVector[] {
  return parseVectors(readFileSync(path, 'utf8'));
}

function hex(b: Uint8Array | undefined): string {
  if (b === undefined) return 'overflow';
  const h = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
  return h.length > 64 ? `${h.slice(0, 64)}… (${b.length} bytes)` : h;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/** Runs one vector through this codec (its default encoder, or the named engine). */
export function checkVector(v: XbzrleVector, engine?: XbzrleEngine): VectorOutcome {
  const fail = (detail: string): VectorOutcome => ({ name: v.name, kind: v.kind, ok: false, detail });
  try {
    if (v.kind === 'encode') {
      const got = encodeXbzrle(v.old, v.new, v.slen, engine);
      if (v.encodedLength < 0 || v.encoded === undefined) {
        return got === undefined ? ok(v) : fail(`expected overflow, got ${hex(got)}`);
      }
      if (got === undefined) return fail(`expected ${hex(v.encoded)}, got overflow`);
      return sameBytes(got, v.encoded) ? ok(v) : fail(`expected ${hex(v.encoded)}, got ${hex(got)}`);
    }
    const page = v.old.slice(0, v.pageSize);
    let end: number;
    try {
      end = decodeXbzrleEnd(v.encoded, page);
    } catch (err) {
      if (!(err instanceof CodecError)) return fail(`threw ${String(err)} instead of CodecError`);
      return v.result === undefined ? ok(v) : fail(`rejected a valid stream: ${err.message}`);
    }
    if (v.result === undefined) return fail(`accepted a stream the reference rejects (returned ${end})`);
    if (end !== v.returnValue) return fail(`returned ${end}, reference ${v.returnValue}`);
    return sameBytes(page, v.result) ? ok(v) : fail('decoded page differs from the reference');
  } catch (err) {
    return fail(`threw ${String(err)}`);
  }
}

function ok(v: XbzrleVector): VectorOutcome {
  return { name: v.name, kind: v.kind, ok: true, detail: '' };
}
