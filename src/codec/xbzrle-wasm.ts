/**
 * The XBZRLE encoder in WebAssembly SIMD (assembly/xbzrle.ts, embedded by `npm run build:wasm`). It finds
 * runs 16–64 bytes per instruction where the TypeScript encoder manages 4, at the price of copying both
 * pages into the module's memory first (WebAssembly cannot read a JavaScript buffer in place). Same bytes
 * as the TypeScript encoder, checked by a test.
 */
import { XBZRLE_WASM_BASE64 } from './xbzrle-wasm.generated.js';

interface XbzrleExports {
  memory: { buffer: ArrayBuffer };
  encode(n: number, limit: number): number;
  prevOffset(): number;
  curOffset(): number;
  outOffset(): number;
}

/** Encodes with validated arguments (see encodeXbzrleInto); undefined where WebAssembly SIMD is missing. */
export type RawXbzrleEncoder = (
  previous: Uint8Array,
  current: Uint8Array,
  out: Uint8Array,
  limit: number,
) => number;

// The project's lib settings carry no WebAssembly typings; the two constructors used are declared here.
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}

function load(): RawXbzrleEncoder | undefined {
  const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (api === undefined) return undefined;
  let wasm: XbzrleExports;
  try {
    const module = new api.Module(Buffer.from(XBZRLE_WASM_BASE64, 'base64'));
    wasm = new api.Instance(module, {}).exports as XbzrleExports;
  } catch {
    return undefined; // no SIMD in this runtime: the TypeScript encoder serves
  }
  const mem = new Uint8Array(wasm.memory.buffer);
  const prev = wasm.prevOffset();
  const cur = wasm.curOffset();
  const outAt = wasm.outOffset();
  const encode = wasm.encode;
  return (previous, current, out, limit) => {
    // An unchanged page is decided by one native memcmp, at memory speed and without the two copies.
    if (Buffer.compare(previous, current) === 0) return limit >= 2 || current.length === 0 ? 0 : -1;
    mem.set(previous, prev);
    mem.set(current, cur);
    const len = encode(current.length, limit);
    if (len > 64) {
      out.set(mem.subarray(outAt, outAt + len));
    } else {
      for (let k = 0; k < len; k++) out[k] = mem[outAt + k]!;
    }
    return len;
  };
}

export const wasmXbzrleEncoder: RawXbzrleEncoder | undefined = load();
