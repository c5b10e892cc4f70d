/**
 * QEMU conformance: every record of the project's public vector fixture (fixtures/xbzrle-public.jsonl, described in
 * fixtures/README.md), of every `*.jsonl` file in the directory named by LIVEMIG_VECTORS_DIR (a larger acceptance set
 * dropped there is checked without naming each file), and of every file named in LIVEMIG_VECTORS (paths separated by
 * the platform's path delimiter).
 */
import { existsSync, readdirSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkVector, readVectors } from './vectors.js';
import { XBZRLE_ENGINES } from './xbzrle.js';

const PUBLIC = fileURLToPath(new URL('./fixtures/xbzrle-public.jsonl', import.meta.url));
const dir = process.env.LIVEMIG_VECTORS_DIR ?? '';
const fromDir =
  dir === '' || !existsSync(dir)
    ? []
    : readdirSync(dir)
        .filter((f) => f.endsWith('.jsonl'))
        .map((f) => resolve(join(dir, f)));
const named = (process.env.LIVEMIG_VECTORS ?? '')
  .split(delimiter)
  .filter((p) => p !== '')
  .map((p) => resolve(p));
// The public fixture is checked by its own block below; an extra source naming it again adds nothing.
const extra = [...new Set([...fromDir, ...named])].filter((p) => p !== PUBLIC);

describe('XBZRLE vectors from the public fixture (fixtures/xbzrle-public.jsonl)', () => {
  const vectors = readVectors(PUBLIC);
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

// Only when set: a misspelt directory or file must fail loudly rather than check nothing.
describe.runIf(dir !== '' || named.length > 0)('extra vector sources', () => {
  it.runIf(dir !== '')('LIVEMIG_VECTORS_DIR names a directory holding at least one *.jsonl file', () => {
    expect(fromDir.length, `no *.jsonl file in LIVEMIG_VECTORS_DIR=${dir}`).toBeGreaterThan(0);
  });
  it.runIf(named.length > 0)('every file named in LIVEMIG_VECTORS exists', () => {
    expect(named.filter((p) => !existsSync(p))).toEqual([]);
  });
});

for (const file of extra.filter((p) => existsSync(p))) {
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
