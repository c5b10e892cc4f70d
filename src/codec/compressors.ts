/**
 * Generic compressors for pages XBZRLE cannot help with (cache misses, first sends): deflate from
 * node:zlib, zstd from zstd-napi, lz4 from lz4-napi. All run at their fast levels — on the migration path
 * a compressor only pays off if it is quicker than the link. Decompression is bounded by the caller's
 * `maxOutput` (a page), so a hostile peer cannot make the receiver allocate without limit.
 */
import { createRequire } from 'node:module';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { CodecError } from '../errors.js';

export type CompressorName = 'deflate' | 'zstd' | 'lz4';

export interface Compressor {
  readonly name: CompressorName;
  compress(data: Uint8Array): Uint8Array;
  /** Refuses (CodecError) output larger than maxOutput: no decompression bombs. */
  decompress(data: Uint8Array, maxOutput: number): Uint8Array;
}

export const COMPRESSOR_NAMES: readonly CompressorName[] = ['deflate', 'zstd', 'lz4'];

// Both native packages are CommonJS; their typings are declared here to the extent used.
interface ZstdBinding {
  CCtx: new () => { compress(dst: Uint8Array, src: Uint8Array, level: number): number };
  DCtx: new () => { decompress(dst: Uint8Array, src: Uint8Array): number };
  compressBound(size: number): number;
  getFrameContentSize(src: Uint8Array): number | null;
}
interface Lz4Binding {
  compressSync(data: Buffer): Buffer;
  uncompressSync(data: Uint8Array): Buffer;
}
const require = createRequire(import.meta.url);
let zstd: ZstdBinding | undefined;
let lz4: Lz4Binding | undefined;
function loadZstd(): ZstdBinding {
  zstd ??= require('zstd-napi/binding') as ZstdBinding;
  return zstd;
}
function loadLz4(): Lz4Binding {
  lz4 ??= require('lz4-napi') as Lz4Binding;
  return lz4;
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function checkMax(maxOutput: number): void {
  if (!Number.isSafeInteger(maxOutput) || maxOutput < 0) {
    throw new CodecError(`maxOutput must be a non-negative integer, got ${maxOutput}`);
  }
}

function wrap(name: CompressorName, err: unknown): CodecError {
  if (err instanceof CodecError) return err;
  return new CodecError(`${name}: malformed input (${err instanceof Error ? err.message : String(err)})`);
}

const deflate: Compressor = {
  name: 'deflate',
  compress(data) {
    return deflateRawSync(data, { level: 1 });
  },
  decompress(data, maxOutput) {
    checkMax(maxOutput);
    try {
      // zlib stops and throws once the output would pass maxOutputLength.
      return inflateRawSync(data, { maxOutputLength: Math.max(1, maxOutput) });
    } catch (err) {
      throw wrap('deflate', err);
    }
  },
};

/** zstd level 1: about deflate's ratio at several times its speed. */
const ZSTD_LEVEL = 1;
function makeZstd(): Compressor {
  let cctx: InstanceType<ZstdBinding['CCtx']> | undefined;
  let dctx: InstanceType<ZstdBinding['DCtx']> | undefined;
  return {
    name: 'zstd',
    compress(data) {
      const z = loadZstd();
      cctx ??= new z.CCtx();
      const out = Buffer.allocUnsafe(z.compressBound(data.length));
      const len = cctx.compress(out, data, ZSTD_LEVEL);
      return out.subarray(0, len);
    },
    decompress(data, maxOutput) {
      checkMax(maxOutput);
      const z = loadZstd();
      try {
        const declared = z.getFrameContentSize(data);
        if (declared !== null && declared > maxOutput) {
          throw new CodecError(`zstd: frame declares ${declared} bytes, more than the ${maxOutput} allowed`);
        }
        dctx ??= new z.DCtx();
        // The destination is capped at maxOutput: zstd fails rather than write past it.
        const out = Buffer.allocUnsafe(declared ?? maxOutput);
        const len = dctx.decompress(out, data);
        return out.subarray(0, len);
      } catch (err) {
        throw wrap('zstd', err);
      }
    },
  };
}

const lz4Compressor: Compressor = {
  name: 'lz4',
  compress(data) {
    // lz4-napi's block format: 4-byte little-endian decompressed size, then the LZ4 block.
    return loadLz4().compressSync(asBuffer(data));
  },
  decompress(data, maxOutput) {
    checkMax(maxOutput);
    if (data.length < 4) throw new CodecError('lz4: input shorter than its 4-byte size prefix', 0);
    const declared = (data[0]! | (data[1]! << 8) | (data[2]! << 16) | (data[3]! << 24)) >>> 0;
    if (declared > maxOutput) {
      throw new CodecError(`lz4: block declares ${declared} bytes, more than the ${maxOutput} allowed`, 0);
    }
    let out: Buffer;
    try {
      out = loadLz4().uncompressSync(data);
    } catch (err) {
      throw wrap('lz4', err);
    }
    if (out.length !== declared) {
      throw new CodecError(`lz4: block decodes to ${out.length} bytes, its prefix says ${declared}`);
    }
    return out;
  },
};

let zstdCompressor: Compressor | undefined;

/** The named compressor; one shared instance each (they hold reusable native contexts). */
export function compressor(name: CompressorName): Compressor {
  switch (name) {
    case 'deflate':
      return deflate;
    case 'zstd':
      zstdCompressor ??= makeZstd();
      return zstdCompressor;
    case 'lz4':
      return lz4Compressor;
    default:
      throw new CodecError(`unknown compressor ${String(name)}; use one of ${COMPRESSOR_NAMES.join(', ')}`);
  }
}
