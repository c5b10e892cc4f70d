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
const SCRATCH_PAGES = 2;
/** Where an arena's page storage starts in its memory. */
const ARENA_BASE = SCRATCH_PAGES * WASM_PAGE;
/** wasm32 addresses 4 GiB. */
const MAX_ARENA_BYTES = 65536 * WASM_PAGE - ARENA_BASE;

interface Instance {
  readonly buffer: ArrayBuffer;
  readonly mem: Uint8Array;
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
  return { buffer: memory.buffer, mem: new Uint8Array(memory.buffer), encode: exports.encode };
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

let lastArenaBuffer: ArrayBufferLike | undefined;
let lastArena: Instance | undefined;

function encodeWasm(previous: Uint8Array, current: Uint8Array, out: Uint8Array, limit: number): number {
  // Both pages in one arena (the migration source's layout): nothing to copy, so the SIMD scan alone decides,
  // unchanged pages included — no memcmp first, which would read the same bytes twice.
  if (
    arenaCount > 0 &&
    previous.buffer === current.buffer &&
    previous.byteOffset >= ARENA_BASE &&
    current.byteOffset >= ARENA_BASE
  ) {
    // The same arena call after call (the source's cache): remember it rather than look it up every page (this keeps
    // at most one arena alive until the next encode in another one).
    const inst = previous.buffer === lastArenaBuffer ? lastArena : arenas.get(previous.buffer);
    lastArenaBuffer = previous.buffer;
    lastArena = inst;
    if (inst !== undefined)
      return copyOut(
        inst,
        inst.encode(previous.byteOffset, current.byteOffset, current.length, limit, OUT),
        out,
      );
  }
  // An unchanged page is decided by one native memcmp, at memory speed and without any copy.
  if (Buffer.compare(previous, current) === 0) return limit >= 2 || current.length === 0 ? 0 : -1;
  // Pages in an arena are read in place; a view reaching into the scratch space is copied like any other.
  // (The map is consulted only once an arena exists: the lookup costs about as much as the wasm call.)
  let inst = arenaCount > 0 && previous.byteOffset >= ARENA_BASE ? arenas.get(previous.buffer) : undefined;
  let prev = previous.byteOffset;
  if (inst === undefined) {
    inst =
      (arenaCount > 0 && current.byteOffset >= ARENA_BASE ? arenas.get(current.buffer) : undefined) ??
      scratch!;
    inst.mem.set(previous, PREV);
    prev = PREV;
  }
  let cur = current.byteOffset;
  if (current.buffer !== inst.buffer || cur < ARENA_BASE) {
    inst.mem.set(current, CUR);
    cur = CUR;
  }
  return copyOut(inst, inst.encode(prev, cur, current.length, limit, OUT), out);
}

/** Copies an encoding of `len` bytes out of the instance's scratch space (a loop beats set() for short ones). */
function copyOut(inst: Instance, len: number, out: Uint8Array): number {
  if (len > 256) {
    out.set(inst.mem.subarray(OUT, OUT + len));
  } else {
    const mem = inst.mem;
    for (let k = 0; k < len; k++) out[k] = mem[OUT + k]!;
  }
  return len;
}

/** The WebAssembly SIMD encoder; undefined where the runtime lacks WebAssembly SIMD. */
export const wasmXbzrleEncoder: RawXbzrleEncoder | undefined = module === undefined ? undefined : encodeWasm;
