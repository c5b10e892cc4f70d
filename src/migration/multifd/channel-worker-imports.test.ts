/**
 * A multifd migration starts one thread per channel, and each thread loads its module graph anew: what that graph
 * pulls in is CPU every multifd migration pays (about 40 ms per thread for the protocol's message schemas, zod
 * included). The channel's thread needs the page encoder and the frame builder, not the messages.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/** Modules loaded at run time from `file` (type-only imports are erased by the compiler and left out). */
function runtimeGraph(file: string, seen = new Set<string>(), packages = new Set<string>()): Set<string> {
  if (seen.has(file)) return packages;
  seen.add(file);
  const code = readFileSync(file, 'utf8');
  const re = /^(?:import|export)\s+(?!type\s)(?:[^'";]*?\sfrom\s+)?'([^']+)';/gms;
  for (const m of code.matchAll(re)) {
    const spec = m[1]!;
    if (!spec.startsWith('.')) {
      packages.add(spec);
      continue;
    }
    runtimeGraph(resolve(dirname(file), spec.replace(/\.js$/, '.ts')), seen, packages);
  }
  return packages;
}

describe("a multifd channel's thread", () => {
  it('loads neither zod nor the protocol messages', () => {
    const worker = fileURLToPath(new URL('./channel-worker.ts', import.meta.url));
    const packages = runtimeGraph(worker);
    expect(packages.has('node:worker_threads')).toBe(true); // the walk does find imports
    expect(packages.has('zod')).toBe(false);
  });
});
