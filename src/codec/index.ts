/**
 * Page codecs: how a page travels. A zero page goes as a flag, a page the cache holds an old copy of goes
 * as an XBZRLE delta in QEMU's byte format, other pages go raw, RLE-encoded or through a generic compressor.
 */
export type { Compressor, CompressorName } from './compressors.js';
export { COMPRESSOR_NAMES, compressor } from './compressors.js';
export { decodeRle, encodeRle, encodeRleInto, rleMaxEncodedLength } from './rle.js';
export type { XbzrleEngine } from './xbzrle.js';
export {
  decodeXbzrle,
  decodeXbzrleEnd,
  encodeXbzrle,
  encodeXbzrleInto,
  XBZRLE_ENGINE,
  XBZRLE_ENGINES,
  XBZRLE_MAX_RUN,
} from './xbzrle.js';
export { allocatePageArena } from './xbzrle-wasm.js';
export { isZeroPage } from './zero.js';
