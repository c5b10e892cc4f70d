/**
 * Folders point one way: no two folders of src/ (or root files such as errors.ts) import each other, directly or
 * through others — counting type-only imports, since a cycle of types is still a cycle. A cycle already known and
 * scheduled for a fix is listed in KNOWN_CYCLES; any other cycle fails, and so does an entry that no longer
 * exists (the list only shrinks). README.md's Layout names every folder of src/. The graph itself is computed by
 * test/architecture.ts (`node --import tsx test/architecture.ts` prints it, as in docs/architecture.md).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  cycles,
  describeCycle,
  fileEdges,
  folderGraph,
  GRAPH_BEGIN,
  GRAPH_END,
  graphSection,
  importSpecifiers,
  ROOT,
  SRC,
} from './architecture.js';

/**
 * Cycles between folders that are known and not fixed yet, each with the issue that fixes it. Members sorted.
 * Empty since issue 16 untied the last one (migration ↔ power, see docs/architecture.md): keep it so.
 */
const KNOWN_CYCLES: { members: string[]; issue: string }[] = [];

const graph = folderGraph();
const found = cycles(graph);
const key = (members: string[]): string => members.join(' ↔ ');

describe('the import parser', () => {
  it('finds every kind of import and re-export, type-only ones included, and nothing in comments or strings', () => {
    const code = [
      "import { a, type B } from './a.js';",
      "import type { C } from '../c/index.js';",
      "import D, { e } from './d.js';",
      "import * as f from './f.js';",
      "import './side-effect.js';",
      'import {',
      '  g,',
      '  h,',
      "} from './gh.js';",
      "export { i } from './i.js';",
      "export type { J } from './j.js';",
      "export * from './k.js';",
      "export * as l from './l.js';",
      "const m = await import('./m.js');",
      "type N = typeof import('./n.js');",
      "// import { no } from './comment.js';",
      " * import('./jsdoc.js')",
      'const s = "from \'./string.js\'";',
      "const t = 'import x from \\'./quoted.js\\'';",
    ].join('\n');
    expect(importSpecifiers(code).sort()).toEqual(
      [
        './a.js',
        '../c/index.js',
        './d.js',
        './f.js',
        './side-effect.js',
        './gh.js',
        './i.js',
        './j.js',
        './k.js',
        './l.js',
        './m.js',
        './n.js',
      ].sort(),
    );
  });

  it('sees imports of the real tree that are known to exist, type-only ones included', () => {
    const edges = fileEdges();
    const has = (from: string, to: string) => edges.some((e) => e.from === from && e.to === to);
    expect(has('index.ts', 'guest/index.ts')).toBe(true);
    // The source is a folder (migration/source/): its job files import the guest.
    expect(has('migration/source/state.ts', 'guest/index.ts')).toBe(true);
    // `import type { MigrationReport } from '../migration/stats.js'`: type-only, still an edge.
    expect(has('web/live-events.ts', 'migration/stats.ts')).toBe(true);
    expect(edges.length).toBeGreaterThan(500);
  });

  it('finds a cycle, and only a real one', () => {
    const g = new Map<string, Map<string, unknown>>([
      ['a', new Map([['b', []]])],
      ['b', new Map([['c', []]])],
      ['c', new Map([['a', []]])],
      ['d', new Map([['a', []]])],
      ['e', new Map()],
    ]);
    expect(cycles(g)).toEqual([['a', 'b', 'c']]);
    g.get('c')!.delete('a');
    expect(cycles(g)).toEqual([]);
  });
});

describe('folders point one way', () => {
  it('no folder cycle but the known ones', () => {
    const allowed = new Set(KNOWN_CYCLES.map((c) => key(c.members)));
    const unexpected = found
      .filter((c) => !allowed.has(key(c)))
      .map((c) => `${key(c)}:\n    ${describeCycle(graph, c).join('\n    ')}`);
    expect(unexpected, 'import cycles between folders (see docs/architecture.md)').toEqual([]);
  });

  it('every known cycle still exists, so the list shrinks when one is fixed', () => {
    const present = new Set(found.map(key));
    const stale = KNOWN_CYCLES.filter((c) => !present.has(key(c.members))).map((c) => key(c.members));
    expect(stale, 'fixed cycles to remove from KNOWN_CYCLES').toEqual([]);
  });

  it('docs/architecture.md draws the real graph', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'architecture.md'), 'utf8');
    const a = doc.indexOf(GRAPH_BEGIN);
    const b = doc.indexOf(GRAPH_END);
    expect(a, 'graph markers in docs/architecture.md').toBeGreaterThan(-1);
    expect(
      doc.slice(a + GRAPH_BEGIN.length, b).trim(),
      'docs/architecture.md is out of date: run `node --import tsx test/architecture.ts --write`',
    ).toBe(graphSection(graph));
  });
});

describe('docs/architecture.md', () => {
  it('names only files that exist', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'architecture.md'), 'utf8');
    const paths = [...new Set([...doc.matchAll(/\b([a-z-]+(?:\/[\w.-]+)+\.ts)\b/g)].map((m) => m[1]!))];
    expect(paths.length).toBeGreaterThan(15);
    const missing = paths.filter((p) => !existsSync(join(p.startsWith('test/') ? ROOT : SRC, p)));
    expect(missing, 'files named in docs/architecture.md that do not exist').toEqual([]);
  });
});

/** The code block of README.md's Layout section. */
function readmeLayout(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Layout'));
  return /```\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
}

describe('README.md Layout', () => {
  it('names every top-level folder of the repository', () => {
    const layout = readmeLayout();
    // Tracked folders only (not node_modules/, dist/, results/), hidden ones (.ci/) aside.
    const tracked = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).split('\n');
    const folders = [
      ...new Set(tracked.filter((f) => f.includes('/')).map((f) => f.slice(0, f.indexOf('/')))),
    ]
      .filter((f) => !f.startsWith('.'))
      .sort();
    expect(folders).toContain('src');
    const missing = folders.filter((f) => !new RegExp(`^${f}/[ \\t]+\\S`, 'm').test(layout));
    expect(missing, 'top-level folders missing from README.md Layout').toEqual([]);
  });

  it('names every folder of src/ with its role', () => {
    const layout = readmeLayout();
    const folders = readdirSync(SRC).filter((f) => statSync(join(SRC, f)).isDirectory());
    expect(folders.length).toBeGreaterThan(10);
    const missing = folders.filter((f) => !new RegExp(`^[ \\t]+${f}/[ \\t]+\\S`, 'm').test(layout));
    expect(missing, 'folders of src/ missing from README.md Layout').toEqual([]);
  });
});
