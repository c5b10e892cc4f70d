/**
 * The XBZRLE encoder in WebAssembly SIMD (assembly/xbzrle.ts, embedded by `npm run build:wasm`). It finds
 * runs 16–64 bytes per step where the TypeScript encoder manages 4. WebAssembly cannot read a JavaScript
 * buffer in place, so pages are copied into the module's memory first — unless they already live there:
 * a page cache (or guest RAM) stored in a page arena (`allocatePageArena`) is read where it is, saving a
 * 4 KiB copy per encoded page. Same bytes as the TypeScript encoder, checked by a test.
 */
import { CodecError } from '../errors.js';
import { XBZRLE_WASM_BASE64 } from './xbzrle-wasm.generated.js';

/** Encodes with validated arguments (see encodeXbzrleInto). */
export type RawXbzrleEncoder = (
  previous: Uint8Array,
  current: Uint8Array,
  out: Uint8Array,
  limit: number,
) => number;

// The project's lib settings carry no WebAssembly typings; the constructors used are declared here.
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  Memory: new (descriptor: { initial: number; maximum: number }) => WasmMemory;
}
interface XbzrleExports {
  encode(prev: number, cur: number, n: number, limit: number, out: number): number;
}

const WASM_PAGE = 65536;
// Every instance's memory starts with scratch space: pages copied in, and the encoding (at most 2n+2 bytes).
const PREV = WASM_PAGE;
const CUR = PREV + 16384;
const OUT = PREV + 32768;
const OUT_WORD = OUT >>> 2;
const SCRATCH_PAGES = 2;
/** Where an arena's page storage starts in its memory. */
const ARENA_BASE = SCRATCH_PAGES * WASM_PAGE;
/** wasm32 addresses 4 GiB. */
const MAX_ARENA_BYTES = 65536 * WASM_PAGE - ARENA_BASE;

interface Instance {
  readonly buffer: ArrayBuffer;
  readonly mem: Uint8Array;
  readonly words: Int32Array;
  readonly encode: XbzrleExports['encode'];
}

const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
const module = ((): object | undefined => {
  if (api === undefined) return undefined;
  try {
    return new api.Module(Buffer.from(XBZRLE_WASM_BASE64, 'base64'));
  } catch {
    return undefined; // no SIMD in this runtime: the TypeScript encoder serves
  }
})();

function instantiate(pages: number): Instance {
  const memory = new api!.Memory({ initial: pages, maximum: pages });
  const exports = new api!.Instance(module!, { env: { memory } }).exports as XbzrleExports;
  return {
    buffer: memory.buffer,
    mem: new Uint8Array(memory.buffer),
    words: new Int32Array(memory.buffer),
    encode: exports.encode,
  };
}

/** Instances by the ArrayBuffer of their memory: the scratch one and one per arena. */
const arenas = new WeakMap<ArrayBufferLike, Instance>();
let arenaCount = 0;
const scratch = module === undefined ? undefined : instantiate(SCRATCH_PAGES);

/**
 * `bytes` of zeroed memory that the WebAssembly XBZRLE encoder reads in place: keep the page cache's copies
 * (or guest RAM) here and each encoded page costs one copy instead of two. A plain Uint8Array where
 * WebAssembly is missing. The memory is fixed-size (never detached); at most 4 GiB - 128 KiB.
 */
export function allocatePageArena(bytes: number): Uint8Array {
  if (!Number.isSafeInteger(bytes) || bytes < 0 || bytes > MAX_ARENA_BYTES) {
    throw new CodecError(`page arena: ${bytes} is not a byte count from 0 to ${MAX_ARENA_BYTES}`);
  }
  if (module === undefined) return new Uint8Array(bytes);
  const instance = instantiate(SCRATCH_PAGES + Math.ceil(bytes / WASM_PAGE));
  arenas.set(instance.buffer, instance);
  arenaCount++;
  return new Uint8Array(instance.buffer, ARENA_BASE, bytes);
}

// The arena (or none) of the last two buffers seen: a page cache and the pages it is compared with are the same
// couple of buffers call after call, and a WeakMap lookup costs about as much as the SIMD scan of a page in cache.
// (This keeps at most two buffers alive until the next encode with others.)
let seenA: ArrayBufferLike | undefined;
let instA: Instance | undefined;
let seenB: ArrayBufferLike | undefined;
let instB: Instance | undefined;

function arenaOf(view: Uint8Array): Instance | undefined {
  if (view.byteOffset < ARENA_BASE) return undefined; // the scratch space, or not an arena at all
  const buffer = view.buffer;
  if (buffer === seenA) return instA;
  if (buffer === seenB) return instB;
  const inst = arenas.get(buffer);
  seenB = seenA;
  instB = instA;
  seenA = buffer;
  instA = inst;
  return inst;
}

function encodeWasm(previous: Uint8Array, current: Uint8Array, out: Uint8Array, limit: number): number {
  const pi = arenaCount > 0 ? arenaOf(previous) : undefined;
  const ci =
    arenaCount > 0
      ? current.buffer === previous.buffer && pi !== undefined && current.byteOffset >= ARENA_BASE
        ? pi
        : arenaOf(current)
      : undefined;
  // Both pages in one arena (the migration source's layout): nothing to copy, so the SIMD scan alone decides,
  // unchanged pages included — no memcmp first, which would read the same bytes twice.
  if (pi !== undefined && pi === ci) {
    return copyOut(pi, pi.encode(previous.byteOffset, current.byteOffset, current.length, limit, OUT), out);
  }
  // An unchanged page is decided by one native memcmp, at memory speed and without any copy.
  if (Buffer.compare(previous, current) === 0) return limit >= 2 || current.length === 0 ? 0 : -1;
  // A page in an arena is read in place; any other is copied into the scratch space of the instance used.
  const inst = pi ?? ci ?? scratch!;
  let prev = previous.byteOffset;
  if (inst !== pi) {
    inst.mem.set(previous, PREV);
    prev = PREV;
  }
  let cur = current.byteOffset;
  if (inst !== ci) {
    inst.mem.set(current, CUR);
    cur = CUR;
  }
  return copyOut(inst, inst.encode(prev, cur, current.length, limit, OUT), out);
}

// Word views of the last output buffer: encodings are copied out 4 bytes a step (a byte loop costs ~1 ns a byte,
// more than the SIMD scan of the page). One entry: the caller writes into the same frame buffer call after call.
let outBuffer: ArrayBufferLike | undefined;
let outWords: Int32Array | undefined;

/** Copies an encoding of `len` bytes out of the instance's scratch space into out[0, len). */
function copyOut(inst: Instance, len: number, out: Uint8Array): number {
  if (len > 512) {
    out.set(inst.mem.subarray(OUT, OUT + len));
    return len;
  }
  const mem = inst.mem;
  let k = 0;
  const at = out.byteOffset;
  if ((at & 3) === 0 && len >= 8) {
    const buffer = out.buffer;
    if (buffer !== outBuffer) {
      outBuffer = buffer;
      outWords = new Int32Array(buffer, 0, buffer.byteLength >>> 2);
    }
    const dst = outWords!;
    const src = inst.words;
    const d = at >>> 2;
    const words = len >>> 2;
    for (let w = 0; w < words; w++) dst[d + w] = src[OUT_WORD + w]!;
    k = words << 2;
  }
  for (; k < len; k++) out[k] = mem[OUT + k]!;
  return len;
}

/** The WebAssembly SIMD encoder; undefined where the runtime lacks WebAssembly SIMD. */
export const wasmXbzrleEncoder: RawXbzrleEncoder | undefined = module === undefined ? undefined : encodeWasm;
