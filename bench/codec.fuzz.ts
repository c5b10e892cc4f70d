/**
 * Hostile-input fuzzing of every page decoder (XBZRLE against its model, RLE, deflate, zstd, lz4).
 *   npm run fuzz:codec -- [--iterations N] [--seed S]
 * Prints the counts and exits 1 on any contract failure (another exception, a write outside the page,
 * an XBZRLE decode that disagrees with the model, a decompression past maxOutput).
 */
import { fuzzCodecs } from '../src/codec/fuzz.js';

function flag(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  const value = at >= 0 ? Number(process.argv[at + 1]) : fallback;
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`--${name} needs a non-negative integer`);
  return value;
}

const iterations = flag('iterations', 1_000_000);
const seed = flag('seed', Date.now() % 0x7fffffff);
const chunk = 100_000;
const started = performance.now();
let inputs = 0;
let accepted = 0;
let rejected = 0;
const failures: string[] = [];
for (let done = 0, round = 0; done < iterations; done += chunk, round++) {
  const c = fuzzCodecs(Math.min(chunk, iterations - done), seed + round);
  inputs += c.inputs;
  accepted += c.accepted;
  rejected += c.rejected;
  failures.push(...c.failures);
  process.stdout.write(
    `\r${inputs} inputs, ${accepted} accepted, ${rejected} rejected, ${failures.length} failures`,
  );
}
const seconds = (performance.now() - started) / 1000;
console.log(`\nseed ${seed}: ${inputs} inputs in ${seconds.toFixed(1)} s`);
for (const f of failures) console.log(`FAIL ${f}`);
process.exitCode = failures.length > 0 ? 1 : 0;
