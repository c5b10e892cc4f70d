/**
 * Which `livemig` the tests' child processes run (agents, `livemig run`, the CLI): the built dist/cli/bin.js when
 * dist/ was built from the sources as they are now, else the sources through tsx. Both run the same code; a child
 * from source pays ~1 s of CPU to load tsx and transform the tree (and each of its worker modules is bundled again),
 * which the suite's hundreds of child processes add up to minutes of. A stale or missing dist/ is never used: every
 * source file that dist/ compiles must have its output at least as new as itself (CI builds right before `npm test`;
 * after an edit without `npm run build`, children run from source).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/** Sources that tsconfig.build.json leaves out of dist/. */
function notBuilt(rel: string): boolean {
  return (
    !rel.endsWith('.ts') ||
    rel.endsWith('.d.ts') ||
    rel.endsWith('.test.ts') ||
    rel.endsWith('.fixtures.ts') ||
    rel.split('/').includes('testing') ||
    rel.startsWith('web/app/')
  );
}

function* files(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* files(p);
    else if (e.isFile()) yield p;
  }
}

/** The first source file dist/ lacks or is older than, or null when dist/ matches src/. */
export function staleBuild(root: string): string | null {
  const src = join(root, 'src');
  const dist = join(root, 'dist');
  if (!existsSync(join(dist, 'cli', 'bin.js'))) return 'dist/cli/bin.js (no build)';
  for (const file of files(src)) {
    const rel = relative(src, file).split('\\').join('/');
    if (notBuilt(rel)) continue;
    const out = join(dist, rel.replace(/\.ts$/, '.js'));
    if (!existsSync(out) || statSync(out).mtimeMs < statSync(file).mtimeMs) return `src/${rel}`;
  }
  return null;
}

/**
 * The environment for test workers: LIVEMIG_CLI set to the built CLI when dist/ is current. An explicit
 * LIVEMIG_CLI (or LIVEMIG_CLI= empty, to force the sources) is left alone.
 */
export function childCliEnv(root: string): Record<string, string> {
  if (process.env.LIVEMIG_CLI !== undefined) return {};
  const stale = staleBuild(root);
  if (stale === null) return { LIVEMIG_CLI: join(root, 'dist', 'cli', 'bin.js') };
  console.log(
    `note: child processes run livemig from src/ through tsx (dist/ is older than ${stale}); ` +
      '`npm run build` first makes the suite faster',
  );
  return {};
}
