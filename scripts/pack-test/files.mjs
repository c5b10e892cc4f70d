// Checks that a packed tarball's file list holds everything livemig loads at run time.
// Usage: node scripts/pack-test/files.mjs REPO FILES   (FILES: the tarball's paths, one a line, without "package/")
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';

const [repo, listFile] = process.argv.slice(2);
const files = new Set(readFileSync(listFile, 'utf8').split('\n').filter(Boolean));
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
const missing = [];
const need = (file, why) => {
  if (!files.has(file)) missing.push(`${file} (${why})`);
};
const needDir = (dir, why) => {
  if (![...files].some((f) => f.startsWith(dir))) missing.push(`${dir}* (${why})`);
};

// Every export and the command.
for (const [subpath, target] of Object.entries(pkg.exports)) {
  for (const file of typeof target === 'string' ? [target] : Object.values(target)) {
    need(posix.normalize(file), `exports["${subpath}"]`);
  }
}
for (const file of Object.values(pkg.bin)) need(posix.normalize(file), 'bin');

// Files found next to a module at run time: `new URL('./x.js' | '../dir/', import.meta.url)` in the built code's
// source, and the worker modules started by name (startWorker('vcpu-worker'), startWorkerNextTo(url, 'name')).
function* sources(dir) {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) {
      if (entry !== 'app') yield* sources(path); // src/web/app is bundled into dist/web/public
    } else if (entry.endsWith('.ts') && !entry.endsWith('.test.ts') && entry !== 'build.ts') yield path; // build.ts: build time
  }
}
for (const path of sources(join(repo, 'src'))) {
  const text = readFileSync(path, 'utf8');
  const folder = posix.join('dist', relative(join(repo, 'src'), dirname(path)).split('\\').join('/'));
  const why = relative(repo, path);
  for (const line of text.split('\n').filter((l) => l.includes('import.meta.url'))) {
    for (const [, literal] of line.matchAll(/'(\.{1,2}\/[^'$]*)'/g)) {
      if (literal.endsWith('.ts') || literal.includes('/src/')) continue; // the from-source branch
      const target = posix.join(folder, literal);
      if (target.startsWith('dist/') || !target.startsWith('..')) {
        if (literal.endsWith('/')) needDir(target.endsWith('/') ? target : `${target}/`, why);
        else need(target, why);
      }
    }
  }
  for (const [, name] of text.matchAll(/startWorker(?:NextTo)?\((?:import\.meta\.url,\s*)?'([\w-]+)'/g)) {
    need(posix.join(folder, `${name}.js`), `${why}: worker`);
  }
}

// The dashboard page, the shipped traces, and whatever the repository keeps under data/ (PlanetLab days).
for (const f of ['index.html', 'app.js', 'app.css']) need(`dist/web/public/${f}`, 'the dashboard');
const common = readFileSync(join(repo, 'src/experiments/common.ts'), 'utf8');
const traces = /SHIPPED_TRACES\s*=\s*\[([^\]]*)\]/.exec(common)?.[1] ?? '';
const traceNames = [...traces.matchAll(/'([^']+)'/g)].map((m) => m[1]);
if (traceNames.length === 0) missing.push('SHIPPED_TRACES not found in src/experiments/common.ts');
for (const name of traceNames) need(`traces/${name}.lmtrace`, 'a shipped trace (experiments)');
function* walk(dir) {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) yield* walk(path);
    else yield relative(repo, path).split('\\').join('/');
  }
}
for (const file of walk(join(repo, 'data'))) need(file, 'bundled data');

if (missing.length > 0) {
  console.error(`the tarball lacks:\n  ${missing.join('\n  ')}`);
  process.exit(1);
}
console.log(`pack-test: the tarball has every export, worker, asset and data file (${files.size} files)`);
