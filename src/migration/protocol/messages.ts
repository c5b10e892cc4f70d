/** The payloads of the handshake and control frames: HELLO, HELLO_ACK, ROUND, digests, post-copy, RECOVER, JSON. */
import { z } from 'zod';
import { protocolError } from './errors.js';
import { PayloadReader, PayloadWriter } from './payload.js';
import { BINDING_NONCE_BYTES, Capability, HARD_MAX_FRAME, StrategyCode } from './wire.js';

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

/**
 * HELLO's guest description as the destination reads it: the guest's id and configuration (whose fields the guest
 * module checks when it resolves it), and optional fields the destination checks where it uses them
 * (`recoveryToken`, `handoverTimeoutMs`, `trace`). Loose: fields a newer source adds are kept.
 */
export interface HelloGuest {
  id: string;
  config: Record<string, unknown>;
  [field: string]: unknown;
}
const helloGuestSchema = z.looseObject({
  id: z.string().regex(/^[\w.-]{1,64}$/),
  config: z.looseObject({}),
});

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

export function decodeHello(payload: Buffer): Hello & { guest: HelloGuest } {
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
  const described = helloGuestSchema.safeParse(r.json());
  r.end();
  if (!described.success) throw protocolError('HELLO: guest description must be {id, config}');
  const guest: HelloGuest = described.data;
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

/** SYNC: a sync point of a migration with parallel channels (capability MULTIFD). */
export function encodeSync(seq: number): Buffer {
  return new PayloadWriter().u32(seq).finish();
}
export function decodeSync(payload: Buffer): number {
  const r = new PayloadReader(payload, 'SYNC');
  const seq = r.u32();
  r.end();
  return seq;
}

/** APPLIED (capability APPLIED_ACK): a sync point, 1..2^32-1; the destination's answer echoes it. */
export function encodeApplied(seq: number): Buffer {
  if (!Number.isInteger(seq) || seq < 1 || seq > 0xffffffff)
    throw new RangeError(`APPLIED: sync point ${seq}`);
  return new PayloadWriter().u32(seq).finish();
}
export function decodeApplied(payload: Buffer): number {
  const r = new PayloadReader(payload, 'APPLIED');
  const seq = r.u32();
  r.end();
  if (seq === 0) throw protocolError('APPLIED: sync point 0');
  return seq;
}

/** CHANNEL_ACK: the channel's frame-binding nonce when the migration's frames are bound, else nothing. */
export function encodeChannelAck(nonce?: Uint8Array): Buffer {
  const w = new PayloadWriter();
  if (nonce !== undefined) w.bytes(nonce);
  return w.finish();
}
export function decodeChannelAck(payload: Buffer, bound: boolean): Buffer | undefined {
  const r = new PayloadReader(payload, 'CHANNEL_ACK');
  const nonce = bound ? Buffer.from(r.bytes(BINDING_NONCE_BYTES)) : undefined;
  r.end();
  return nonce;
}

/** PREEMPT_ACK: the preempt channel's frame-binding nonce, or nothing when the migration does not bind frames. */
export function encodePreemptAck(nonce?: Uint8Array): Buffer {
  const w = new PayloadWriter();
  if (nonce) w.bytes(nonce);
  return w.finish();
}
export function decodePreemptAck(payload: Buffer, bound: boolean): { nonce?: Buffer } {
  const r = new PayloadReader(payload, 'PREEMPT_ACK');
  const nonce = bound ? Buffer.from(r.bytes(BINDING_NONCE_BYTES)) : undefined;
  r.end();
  return nonce === undefined ? {} : { nonce };
}
