/**
 * Decoding one page entry into a page of guest RAM: the same rules on the destination's connection thread (post-copy)
 * and on its page-sink thread (pre-copy), so they live here once.
 */
import { type Compressor, decodeRle, decodeXbzrle } from '../codec/index.js';
import { MigrationError } from '../errors.js';
import { copyPageInto } from './page-copy.js';
import { PageEncoding } from './protocol/index.js';

/** Writes the page that `data` (an entry of `encoding`) describes into `target` (one page of RAM). */
export function decodePageInto(
  page: number,
  encoding: PageEncoding,
  data: Uint8Array,
  target: Uint8Array,
  compressors: ReadonlyMap<PageEncoding, Compressor>,
): void {
  switch (encoding) {
    case PageEncoding.ZERO:
      target.fill(0);
      return;
    case PageEncoding.RAW:
      copyPageInto(data, target);
      return;
    case PageEncoding.XBZRLE:
      decodeXbzrle(data, target);
      return;
    case PageEncoding.RLE:
      decodeRle(data, target);
      return;
    default: {
      const c = compressors.get(encoding);
      if (!c) throw new MigrationError('PROTOCOL', `${PageEncoding[encoding]} page without the capability`);
      const out = c.decompress(data, target.length);
      if (out.length !== target.length) {
        throw new MigrationError('PROTOCOL', `compressed page ${page} decompressed to ${out.length} bytes`);
      }
      copyPageInto(out, target);
    }
  }
}
