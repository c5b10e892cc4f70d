/**
 * Starts a worker thread on a module of this folder, from built dist (`.js`) or from TypeScript source (tests,
 * tsx). From source, Node 20 ignores `--import tsx` in a worker's execArgv, and registering tsx inside each
 * worker costs ~200 ms of CPU (a loader thread per worker). So the module is bundled once per process with
 * esbuild (present wherever tsx or vitest is) into a content-addressed `.cjs` file in the temp directory, and
 * each worker starts on that file: ~20 ms per worker. (A file, not `eval`, so the parent's `--input-type` does
 * not change how the bundle is read.) If esbuild cannot be loaded, the worker registers tsx itself.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

interface Esbuild {
  buildSync(options: Record<string, unknown>): { outputFiles: { text: string }[] };
}

const bundles = new Map<string, string | null>();

/**
 * Path of the bundled worker module, or null. With `externalPackages`, npm packages (native addons among them) stay
 * outside the bundle, which is then written under node_modules/.cache so that Node resolves them from there.
 */
function bundle(url: URL, module: string, externalPackages: boolean): string | null {
  const key = url.href;
  if (!bundles.has(key)) {
    let file: string | null = null;
    try {
      const require = createRequire(import.meta.url);
      const esbuild = require('esbuild') as Esbuild;
      const out = esbuild.buildSync({
        entryPoints: [fileURLToPath(url)],
        bundle: true,
        platform: 'node',
        format: 'cjs',
        target: 'node20',
        write: false,
        logLevel: 'silent',
        // Packages are resolved at run time, some through createRequire(import.meta.url): give the CommonJS
        // bundle an import.meta.url (its own file, under node_modules).
        ...(externalPackages
          ? {
              packages: 'external',
              define: { 'import.meta.url': '__livemigModuleUrl' },
              banner: { js: "var __livemigModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
            }
          : {}),
      });
      const text = out.outputFiles[0]?.text;
      if (text !== undefined) {
        const hash = createHash('sha256').update(text).digest('hex').slice(0, 16);
        let dir = tmpdir();
        if (externalPackages) {
          const esbuildMain = require.resolve('esbuild');
          dir = join(esbuildMain.slice(0, esbuildMain.lastIndexOf('node_modules') + 12), '.cache', 'livemig');
          mkdirSync(dir, { recursive: true });
        }
        file = join(dir, `livemig-${module}-${hash}.cjs`);
        if (!existsSync(file)) {
          const partial = `${file}.${process.pid}.tmp`;
          writeFileSync(partial, text);
          renameSync(partial, file); // atomic: concurrent test processes never see half a file
        }
      }
    } catch {
      file = null;
    }
    bundles.set(key, file);
  }
  return bundles.get(key) ?? null;
}

/** The parent's flags minus `--input-type`, which Node refuses for a worker started on a file. */
function inheritedExecArgv(): string[] {
  const out: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--input-type') i++;
    else if (!argv[i]!.startsWith('--input-type=')) out.push(argv[i]!);
  }
  return out;
}

export function startWorker(module: string, options: WorkerOptions): Worker {
  return startWorkerNextTo(import.meta.url, module, options);
}

/**
 * Starts a worker on the module `module` in the folder of `moduleUrl` (pass `import.meta.url`). `externalPackages`:
 * leave npm packages out of the bundle (needed when the worker loads native addons).
 */
export function startWorkerNextTo(
  moduleUrl: string,
  module: string,
  options: WorkerOptions,
  externalPackages = false,
): Worker {
  options = { execArgv: inheritedExecArgv(), ...options };
  const fromSource = moduleUrl.endsWith('.ts');
  const url = new URL(`./${module}.${fromSource ? 'ts' : 'js'}`, moduleUrl);
  if (!fromSource) return new Worker(url, options);
  const file = bundle(url, module, externalPackages);
  if (file !== null) return new Worker(file, options);
  const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(boot, { ...options, eval: true });
}
