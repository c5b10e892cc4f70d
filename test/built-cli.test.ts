/**
 * The suite's child processes run dist/ only when it was built from the sources as they are (test/built-cli.ts):
 * a missing or older output, anywhere in the tree, sends them back to the sources.
 */
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { childCliEnv, staleBuild } from './built-cli.js';

const roots: string[] = [];
// The suite itself runs with LIVEMIG_CLI set (or set empty); these tests decide as a fresh `npm test` would.
const given = process.env.LIVEMIG_CLI;
beforeEach(() => {
  delete process.env.LIVEMIG_CLI;
});
afterEach(() => {
  if (given === undefined) delete process.env.LIVEMIG_CLI;
  else process.env.LIVEMIG_CLI = given;
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

/** A tree of files, each with its modification time (seconds since the epoch). */
function tree(files: Record<string, number>): string {
  const root = mkdtempSync(join(tmpdir(), 'livemig-built-cli-'));
  roots.push(root);
  for (const [path, mtime] of Object.entries(files)) {
    const file = join(root, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, '');
    utimesSync(file, mtime, mtime);
  }
  return root;
}

const built = {
  'src/cli/bin.ts': 100,
  'src/agent/agent.ts': 100,
  'dist/cli/bin.js': 200,
  'dist/agent/agent.js': 200,
};

describe('which livemig the tests’ child processes run', () => {
  it('dist/ when every compiled source has an output at least as new', () => {
    const root = tree(built);
    expect(staleBuild(root)).toBeNull();
    expect(childCliEnv(root)).toEqual({ LIVEMIG_CLI: join(root, 'dist', 'cli', 'bin.js') });
    // An explicit choice is left alone (LIVEMIG_CLI= runs the sources).
    process.env.LIVEMIG_CLI = '';
    expect(childCliEnv(root)).toEqual({});
  });

  it('the sources when a source was edited after the build, or has no output, or there is no build', () => {
    expect(staleBuild(tree({ ...built, 'src/agent/agent.ts': 300 }))).toBe('src/agent/agent.ts');
    expect(staleBuild(tree({ ...built, 'src/agent/new.ts': 100 }))).toBe('src/agent/new.ts');
    expect(staleBuild(tree({ 'src/cli/bin.ts': 100 }))).toMatch(/no build/);
    expect(childCliEnv(tree({ ...built, 'src/agent/agent.ts': 300 }))).toEqual({});
  });

  it('ignores what dist/ does not compile: tests, fixtures, testing helpers, the dashboard app', () => {
    const root = tree({
      ...built,
      'src/agent/agent.test.ts': 300,
      'src/agent/x.fixtures.ts': 300,
      'src/migration/testing/pair.ts': 300,
      'src/web/app/main.ts': 300,
      'src/types.d.ts': 300,
    });
    expect(staleBuild(root)).toBeNull();
  });
});
