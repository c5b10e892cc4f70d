/**
 * The package's public surface is deliberate (docs/api.md): package.json `exports` has one subpath per public folder,
 * each with types and code built to dist/; the root re-exports every folder it claims, none silently dropped; the
 * names a user needs are there; docs/api.md lists every subpath. The installed package itself is tested by
 * scripts/pack-test.sh (run by .ci/run).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './markdown.js';

interface PackageJson {
  exports: Record<string, string | { types: string; default: string }>;
  types: string;
  bin: Record<string, string>;
  files: string[];
}
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as PackageJson;

/** Folders of src/ with an index.ts that are not subpaths, and why (docs/api.md, "Not exported"). */
const NOT_EXPORTED: Record<string, string> = { fuzz: "the project's own npm run fuzz" };
/** Folders exported only by their subpath: their names would clash in the root (docs/api.md). */
const SUBPATH_ONLY = ['cluster', 'faults', 'web'];

const subpaths = Object.keys(pkg.exports)
  .filter((k) => k !== '.' && k !== './package.json')
  .map((k) => k.slice(2));

describe('package.json exports', () => {
  it('has the root and one subpath per public folder, each with types and code in dist/', () => {
    expect(pkg.exports['.']).toEqual({ types: './dist/index.d.ts', default: './dist/index.js' });
    expect(pkg.types).toBe('./dist/index.d.ts');
    for (const name of subpaths) {
      expect(pkg.exports[`./${name}`]).toEqual({
        types: `./dist/${name}/index.d.ts`,
        default: `./dist/${name}/index.js`,
      });
      expect(existsSync(join(ROOT, 'src', name, 'index.ts')), `src/${name}/index.ts`).toBe(true);
    }
    const folders = readdirSync(join(ROOT, 'src')).filter((f) =>
      existsSync(join(ROOT, 'src', f, 'index.ts')),
    );
    expect([...subpaths, ...Object.keys(NOT_EXPORTED)].sort()).toEqual(folders.sort());
  });

  it('ships what the package loads at run time', () => {
    expect(pkg.files).toEqual(expect.arrayContaining(['dist', 'data', 'traces']));
    expect(pkg.bin.livemig).toBe('dist/cli/bin.js');
  });

  it('docs/api.md names every subpath', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'api.md'), 'utf8');
    for (const name of subpaths) expect(doc, `livemig/${name}`).toContain(`\`livemig/${name}\``);
  });
});

describe('the root export', () => {
  it('re-exports every value of each folder it gathers, the same objects', async () => {
    const root = (await import('../src/index.js')) as Record<string, unknown>;
    for (const name of subpaths.filter((s) => !SUBPATH_ONLY.includes(s))) {
      const folder = (await import(`../src/${name}/index.ts`)) as Record<string, unknown>;
      const dropped = Object.keys(folder).filter((k) => root[k] !== folder[k]);
      expect(dropped, `livemig/${name} exports missing from livemig`).toEqual([]);
    }
  });

  it('has the names a user needs', async () => {
    const root = (await import('../src/index.js')) as Record<string, unknown>;
    for (const name of [
      'AgentClient',
      'startAgent',
      'Guest',
      'simulate',
      'loadPlanetlabDay',
      'runExperiment',
      'encodeXbzrle',
      'decodeXbzrle',
      'encodeRle',
      'decodeRle',
      'isZeroPage',
      'compressor',
      'PageCache',
      'MigrationError',
      'UsageError',
      'LivemigError',
      'LIVEMIG_ERROR_CODES',
      'MIGRATION_ERROR_CODES',
      'parseSize',
      'VERSION',
      'migrationOptionsSchema',
      'protocol',
    ]) {
      expect(root[name], name).toBeDefined();
    }
  });

  it('leaves the subpath-only folders out of the root', async () => {
    const root = (await import('../src/index.js')) as Record<string, unknown>;
    const { FaultProxy } = await import('../src/faults/index.js');
    const { EventHub } = await import('../src/web/index.js');
    expect(Object.values(root)).not.toContain(FaultProxy);
    expect(Object.values(root)).not.toContain(EventHub);
  });
});
