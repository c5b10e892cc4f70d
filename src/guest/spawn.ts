/**
 * Starts a worker thread on a module of this folder, from built dist (`.js`) or from TypeScript source (tests,
 * tsx). From source, Node 20 ignores `--import tsx` in a worker's execArgv, and registering tsx inside each
 * worker costs ~200 ms of CPU (a loader thread per worker). So the module is bundled once per process with
 * esbuild (present wherever tsx or vitest is) and each worker evaluates the bundle: ~20 ms per worker.
 * If esbuild cannot be loaded, the worker registers tsx itself.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

interface Esbuild {
  buildSync(options: Record<string, unknown>): { outputFiles: { text: string }[] };
}

const bundles = new Map<string, string | null>();

function bundle(url: URL): string | null {
  const key = url.href;
  if (!bundles.has(key)) {
    let code: string | null = null;
    try {
      const esbuild = createRequire(import.meta.url)('esbuild') as Esbuild;
      const out = esbuild.buildSync({
        entryPoints: [fileURLToPath(url)],
        bundle: true,
        platform: 'node',
        format: 'cjs',
        target: 'node20',
        write: false,
        logLevel: 'silent',
      });
      code = out.outputFiles[0]?.text ?? null;
    } catch {
      code = null;
    }
    bundles.set(key, code);
  }
  return bundles.get(key) ?? null;
}

export function startWorker(module: string, options: WorkerOptions): Worker {
  const fromSource = import.meta.url.endsWith('.ts');
  const url = new URL(`./${module}.${fromSource ? 'ts' : 'js'}`, import.meta.url);
  if (!fromSource) return new Worker(url, options);
  const code = bundle(url);
  if (code !== null) return new Worker(code, { ...options, eval: true });
  const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(boot, { ...options, eval: true });
}
