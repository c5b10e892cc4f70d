/**
 * The repository must be whole on its own: no tracked file (code, test, benchmark, script, doc) may point outside
 * it — neither to a folder named shared beside the clone (reached through `..`) nor by the absolute path of the
 * directory the clone sits in (a path of the machine it was developed on). Such a reference works only on that
 * machine and breaks every other clone. (This file spells those paths in pieces so that it does not match itself.)
 */
import { execFileSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SHARED = ['..', 'shared'].join('/');

function git(args: readonly string[]): string | undefined {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch {
    return undefined;
  }
}

/** Where git's checkout lives, or undefined when git is missing or this is not a git checkout (e.g. a tarball). */
const top = git(['rev-parse', '--show-toplevel'])?.trim();

/**
 * The directories the clone sits in: the parent of this checkout and, for a `git worktree`, the parent of the main
 * clone too (a worktree's sibling folders are the main clone's neighbours). The file-system root is left out: every
 * absolute path starts there.
 */
function clonesParents(): string[] {
  if (top === undefined) return [];
  const parents = [dirname(resolve(top))];
  const common = git(['rev-parse', '--path-format=absolute', '--git-common-dir'])?.trim();
  if (common !== undefined) parents.push(dirname(dirname(resolve(common))));
  return [...new Set(parents)].filter((p) => dirname(p) !== p);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The sibling shared folder as a directory (followed by a separator, quote, bracket, colon, space or the line's end) — not a module
 * named shared.js — or one of `parents` followed by `/`.
 */
function outsidePath(parents: readonly string[]): RegExp {
  return new RegExp(
    [String.raw`\.\./shared(?=[/\\'"\x60)\]\s:]|$)`, ...parents.map((p) => `${escapeRegExp(p)}/`)].join('|'),
  );
}

describe('the repository is self-contained', () => {
  it(`no tracked file names ${SHARED} or the absolute path of the directory the clone sits in`, (ctx) => {
    if (top === undefined) {
      ctx.skip('git is not available or this is not a git checkout: cannot list the tracked files');
      return;
    }
    const parents = clonesParents();
    const pattern = outsidePath(parents);
    // git grep finds candidate lines in tracked files fast (-I: not in binary files); the pattern above decides.
    const fixed = [SHARED, ...parents.map((p) => `${p}/`)].flatMap((s) => ['-e', s]);
    const out = git(['grep', '-n', '-I', '-F', ...fixed, '--', '.', ':(exclude)package-lock.json']) ?? '';
    const hits = out
      .split('\n')
      .filter((line) => line !== '')
      .filter((line) => pattern.test(line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1)));
    expect(
      hits,
      `files naming a path outside the repository (parents checked: ${parents.join(', ')})`,
    ).toEqual([]);
  });

  it('the check itself catches both kinds of reference', () => {
    // The same pattern as above on sample lines: guards against a regex that matches nothing.
    const pattern = outsidePath(['/srv/clones']);
    expect(pattern.test(`const f = new URL('../${SHARED}/vectors/a.jsonl', import.meta.url);`)).toBe(true);
    expect(pattern.test(`see [MACHINE.md](../${SHARED}/MACHINE.md)`)).toBe(true);
    expect(pattern.test(`npx livemig sim --day ${SHARED}`)).toBe(true);
    expect(pattern.test(`npx livemig sim --day ${SHARED} --policy lr-mmt`)).toBe(true);
    expect(pattern.test("const DATA = '/srv/clones/shared/data';")).toBe(true);
    expect(pattern.test(`import { readEnergy } from '${SHARED}.js';`)).toBe(false);
    expect(pattern.test('/srv/clonesx/file')).toBe(false);
  });
});
