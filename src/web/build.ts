/**
 * `npm run build:web`: bundles the dashboard page (app/) with esbuild into dist/web/public — one script, one
 * stylesheet (uPlot's and ours) and index.html — so the agent serves static files and the page needs no network;
 * and the same for the cluster view (cluster.html, cluster.js, cluster.css), which `livemig cluster --dashboard`
 * serves.
 * Run with `node --import tsx src/web/build.ts`; tests call buildDashboard() directly.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { dashboardDir } from './static.js';

function appDir(): string {
  const fromSource = import.meta.url.endsWith('.ts');
  return fileURLToPath(new URL(fromSource ? './app/' : '../../src/web/app/', import.meta.url));
}

/** Writes via a temporary file and a rename, so an agent serving the folder never reads half a file. */
async function writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

export async function buildDashboard(
  outDir = dashboardDir(),
): Promise<{ outDir: string; files: { name: string; bytes: number }[] }> {
  const app = appDir();
  const result = await build({
    // The agent's page (app.js, app.css) and the cluster view (cluster.js, cluster.css, `livemig cluster --dashboard`).
    entryPoints: { app: join(app, 'main.ts'), cluster: join(app, 'cluster.ts') },
    bundle: true,
    minify: true,
    format: 'iife',
    target: ['chrome109', 'firefox115', 'safari15'],
    outdir: outDir,
    entryNames: '[name]',
    write: false,
    logLevel: 'silent',
    legalComments: 'eof',
  });
  await mkdir(outDir, { recursive: true });
  const files: { name: string; bytes: number }[] = [];
  for (const f of result.outputFiles) {
    await writeAtomic(f.path, f.contents);
    files.push({ name: basename(f.path), bytes: f.contents.length });
  }
  for (const name of ['index.html', 'cluster.html']) {
    const html = await readFile(join(app, name));
    await writeAtomic(join(outDir, name), html);
    files.push({ name, bytes: html.length });
  }
  return { outDir, files };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { outDir, files } = await buildDashboard();
  process.stdout.write(
    `dashboard built in ${outDir}: ${files.map((f) => `${f.name} ${(f.bytes / 1024).toFixed(1)} KiB`).join(', ')}\n`,
  );
}
