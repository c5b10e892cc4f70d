/**
 * The docs' TypeScript compiles as a package user would write it: every ```ts block of README.md and docs/*.md is
 * written to its own module in a folder inside the repository and type-checked by the repo's tsc, with `livemig`
 * and `livemig/<folder>` resolving to the sources (test/typecheck/tsconfig.json), together with the API's
 * type-level tests (test/typecheck/api.test-d.ts) and the installed-package check (scripts/pack-test/check.ts, so
 * that it follows the API between runs of the slow pack test). A block marked "```ts skip-check" is left out; keep
 * those rare.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type CodeBlock, codeBlocks, markdownFiles, ROOT, readBlocks } from './markdown.js';

const blocks = markdownFiles().flatMap(readBlocks);
const tsBlocks = blocks.filter((b) => b.lang === 'ts' || b.lang === 'typescript');
const checked = tsBlocks.filter((b) => !b.flags.includes('skip-check'));

/** Module specifiers a block imports. */
function imports(code: string): string[] {
  return [...code.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm)].map(
    (m) => m[1]!,
  );
}

/** File name of a block's module: its Markdown file and line, so that errors can be mapped back. */
function moduleName(b: CodeBlock): string {
  return `${b.file.replace(/[/.]/g, '_')}-L${b.line}.ts`;
}

const dir = mkdtempSync(join(ROOT, 'test', 'typecheck', '.blocks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('docs code', () => {
  it('the docs have TypeScript blocks, and none imports from the sources', () => {
    expect(tsBlocks.length).toBeGreaterThanOrEqual(10);
    const bad = tsBlocks.flatMap((b) =>
      imports(b.code)
        .filter((s) => !/^livemig(\/[a-z-]+)?$/.test(s) && !s.startsWith('node:'))
        .map((s) => `${b.file}:${b.line}: imports '${s}' (use 'livemig' or 'livemig/<folder>')`),
    );
    expect(bad).toEqual([]);
  });

  it('every ```ts block type-checks against the public API, and so do the type-level API tests', () => {
    // A control block with a known error proves that the check sees the blocks and maps errors back to them.
    const control = codeBlocks(
      'control.md',
      "# control\n\n```ts\nimport { simulate } from 'livemig';\nconst n: number = simulate;\n```\n",
    );
    const modules = new Map<string, CodeBlock>();
    for (const b of [...checked, ...control]) {
      const name = moduleName(b);
      modules.set(name, b);
      // Each block is its own module (top-level await, names of its own); the line numbers stay the block's.
      writeFileSync(join(dir, name), `${b.code}\nexport {};\n`);
    }
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        extends: '../tsconfig.json',
        include: ['*.ts', '../api.test-d.ts', '../../../scripts/pack-test/check.ts'],
      }),
    );
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json'), '--pretty', 'false'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 300_000,
    });
    const errors = `${r.stdout}${r.stderr}`
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) =>
        l.replace(/^(?:.*[/\\])?([^/\\(]+\.ts)\((\d+),(\d+)\)/, (whole, name: string, row: string) => {
          const b = modules.get(name);
          return b ? `${b.file}:${b.line + Number(row) - 1}` : whole;
        }),
      );
    expect(errors).toEqual([expect.stringMatching(/^control\.md:5: error TS2322/)]);
  });
});
