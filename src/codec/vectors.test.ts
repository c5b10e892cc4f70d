/**
 * QEMU conformance: every record of the shared public vector file, of any other `*.jsonl` file beside it in
 * shared/vectors (a larger acceptance set dropped there is checked without configuration), and of any file named in
 * LIVEMIG_VECTORS (paths separated by the platform's path delimiter).
 */
import { existsSync, readdirSync } from 'node:fs';
import { delimiter } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkVector, readVectors } from './vectors.js';
import { XBZRLE_ENGINES } from './xbzrle.js';

const PUBLIC = new URL('../../../shared/vectors/xbzrle-public.jsonl', import.meta.url);
const DIR = new URL('../../../shared/vectors/', import.meta.url);
const beside = existsSync(DIR)
  ? readdirSync(DIR)
      .filter((f) => f.endsWith('.jsonl') && f !== 'xbzrle-public.jsonl')
      .map((f) => fileURLToPath(new URL(f, DIR)))
  : [];
const extra = [
  ...beside,
  ...(process.env.LIVEMIG_VECTORS ?? '').split(delimiter).filter((p) => p !== '' && !beside.includes(p)),
];

describe('XBZRLE vectors from shared/vectors/xbzrle-public.jsonl', () => {
  // The file lives beside the clone (../shared); CI checks it out there too.
  it('the public vector file is present', () => {
    expect(existsSync(PUBLIC), `missing ${PUBLIC.pathname}`).toBe(true);
  });
  const vectors = existsSync(PUBLIC) ? readVectors(PUBLIC) : [];
  it('holds the documented 58 records, both kinds', () => {
    expect(vectors.length).toBe(58);
    expect(vectors.filter((v) => v.kind === 'encode').length).toBe(42);
    expect(vectors.filter((v) => v.kind === 'decode').length).toBe(16);
  });
  it.each(vectors.map((v) => [v.kind, v.name, v] as const))('%s %s', (_kind, _name, v) => {
    for (const engine of XBZRLE_ENGINES) {
      const outcome = checkVector(v, engine);
      expect(`${engine}: ${outcome.detail}`).toBe(`${engine}: `);
      expect(outcome.ok).toBe(true);
    }
  });
});

for (const file of extra) {
  describe(`XBZRLE vectors from ${file}`, () => {
    const vectors = readVectors(file);
    it('is not empty', () => expect(vectors.length).toBeGreaterThan(0));
    it('every record agrees with the reference', () => {
      for (const engine of XBZRLE_ENGINES) {
        const failed = vectors.map((v) => checkVector(v, engine)).filter((o) => !o.ok);
        expect(failed.map((o) => `${engine} ${o.kind} ${o.name}: ${o.detail}`)).toEqual([]);
      }
    });
  });
}
