/**
 * `npm run fuzz`: hostile inputs against every parser — migration frames and payload decoders, control-API
 * bodies, guest configuration, recorded trace files (src/trace), the page codecs (src/codec/fuzz.ts), the
 * simulator's trace loader, and raw HTTP requests against a live agent (src/fuzz/http.ts).
 *   npm run fuzz -- [--iterations N (per target, default 250000)] [--codec N (default 1000000)] [--traces N]
 *                   [--http N (default 20000)] [--seed S]
 * Prints a table, writes results/fuzz.json, exits 1 on any failure (an untyped exception, a slow input).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fuzzCodecs, Rng } from '../src/codec/fuzz.js';
import { UsageError } from '../src/errors.js';
import { fuzzHttpApi, fuzzTarget, mutate, TARGETS, type TargetCounts } from '../src/fuzz/index.js';
import { loadTraceDir } from '../src/sim/workload.js';

function flag(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  const value = at >= 0 ? Number(process.argv[at + 1]) : fallback;
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`--${name} needs a non-negative integer`);
  return value;
}

const iterations = flag('iterations', 250_000);
const codecIterations = flag('codec', 1_000_000);
const traceIterations = flag('traces', 2000);
const httpIterations = flag('http', 20_000);
const seed = flag('seed', Date.now() % 0x7fffffff);
const started = performance.now();
const rows: TargetCounts[] = [];

for (const t of TARGETS) {
  const c = fuzzTarget(t, iterations, seed);
  rows.push(c);
  console.log(
    `${c.name.padEnd(38)} ${String(c.inputs).padStart(9)} inputs ${String(c.rejected).padStart(9)} typed errors  max ${c.maxMs.toFixed(1)} ms  ${c.failures.length} failures`,
  );
}

// The control API over HTTP: one request at a time against a live in-process agent.
{
  const t0 = performance.now();
  const c = await fuzzHttpApi({ iterations: httpIterations, seed });
  rows.push(c);
  console.log(
    `${c.name.padEnd(38)} ${String(c.inputs).padStart(9)} inputs ${String(c.rejected).padStart(9)} refused (4xx)  max ${c.maxMs.toFixed(1)} ms  ${((performance.now() - t0) / 1000).toFixed(1)} s  ${c.failures.length} failures`,
  );
}

// Page codecs: the existing codec fuzzer, in chunks (it keeps per-chunk state small).
{
  const c: TargetCounts = {
    name: 'page codecs (XBZRLE, RLE, deflate, zstd, lz4)',
    inputs: 0,
    accepted: 0,
    rejected: 0,
    maxMs: 0,
    failures: [],
  };
  const t0 = performance.now();
  for (let done = 0, round = 0; done < codecIterations; done += 100_000, round++) {
    const r = fuzzCodecs(Math.min(100_000, codecIterations - done), seed + round);
    c.inputs += r.inputs;
    c.accepted += r.accepted;
    c.rejected += r.rejected;
    c.failures.push(...r.failures);
  }
  c.maxMs = Number.NaN; // not measured per input there
  rows.push(c);
  console.log(
    `${c.name.padEnd(38)} ${String(c.inputs).padStart(9)} inputs ${String(c.rejected).padStart(9)} typed errors  ${((performance.now() - t0) / 1000).toFixed(1)} s  ${c.failures.length} failures`,
  );
}

// Trace loader: files on disk, so far fewer inputs.
{
  const c: TargetCounts = {
    name: 'sim trace folder (loadTraceDir)',
    inputs: 0,
    accepted: 0,
    rejected: 0,
    maxMs: 0,
    failures: [],
  };
  const root = mkdtempSync(join(tmpdir(), 'livemig-fuzz-'));
  const rng = new Rng(seed);
  const valid = Buffer.from(Array.from({ length: 12 }, (_, i) => `${(i * 37) % 101}\n`).join(''));
  try {
    for (let k = 0; k < traceIterations; k++) {
      const dir = join(root, String(k));
      mkdirSync(dir);
      for (let f = 1 + rng.int(3); f > 0; f--) {
        const body = rng.int(8) === 0 ? Buffer.from(rng.bytes(rng.int(200))) : mutate(rng, valid);
        writeFileSync(join(dir, `vm${f}`), body);
      }
      c.inputs++;
      const t0 = performance.now();
      try {
        await loadTraceDir(dir, 12);
        c.accepted++;
      } catch (err) {
        if (err instanceof UsageError) c.rejected++;
        else if (c.failures.length < 20) c.failures.push(`trace seed=${seed} input=${k}: ${String(err)}`);
      }
      c.maxMs = Math.max(c.maxMs, performance.now() - t0);
      rmSync(dir, { recursive: true });
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  rows.push(c);
  console.log(
    `${c.name.padEnd(38)} ${String(c.inputs).padStart(9)} inputs ${String(c.rejected).padStart(9)} typed errors  max ${c.maxMs.toFixed(1)} ms  ${c.failures.length} failures`,
  );
}

const seconds = (performance.now() - started) / 1000;
const total = rows.reduce((s, r) => s + r.inputs, 0);
const failures = rows.flatMap((r) => r.failures);
console.log(`\nseed ${seed}: ${total} inputs in ${seconds.toFixed(1)} s, ${failures.length} failures`);
for (const f of failures) console.log(`FAIL ${f}`);
mkdirSync('results', { recursive: true });
writeFileSync(
  'results/fuzz.json',
  `${JSON.stringify(
    {
      command: `npm run fuzz -- --iterations ${iterations} --codec ${codecIterations} --traces ${traceIterations} --http ${httpIterations} --seed ${seed}`,
      date: new Date().toISOString(),
      seed,
      seconds: Number(seconds.toFixed(1)),
      total,
      failures: failures.length,
      heapUsedMiB: Math.round(process.memoryUsage().heapUsed / 2 ** 20),
      rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
      targets: rows.map((r) => ({ ...r, maxMs: Number.isNaN(r.maxMs) ? null : Number(r.maxMs.toFixed(2)) })),
    },
    null,
    2,
  )}\n`,
);
process.exitCode = failures.length > 0 ? 1 : 0;
