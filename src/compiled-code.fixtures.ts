/**
 * Run as a child process under `--expose-gc --stress-flush-code` (V8 then flushes on every collection what it would
 * otherwise flush after five): compiles and runs a few hundred functions, collects garbage, and prints the bytecode
 * size with none of them compiled (base), then before and after the collections, as JSON. With argument `keep`, keepCompiledCode() is called first.
 */
import { getHeapCodeStatistics } from 'node:v8';
import { keepCompiledCode } from './compiled-code.js';

if (process.argv.includes('keep')) keepCompiledCode();
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
// What the loader left behind is collected (and, without keeping, flushed) first: the measure is these functions.
for (let i = 0; i < 8; i++) gc();
const base = getHeapCodeStatistics().bytecode_and_metadata_size;
const n = 500;
const body = `${Array.from(
  { length: n },
  (_, i) => `function f${i}(a) { let s = 0; for (let k = 0; k < a; k++) s += k * ${i}; return s; }`,
).join('\n')}\nreturn [${Array.from({ length: n }, (_, i) => `f${i}`).join(',')}];`;
const fns = new Function(body)() as ((a: number) => number)[];
for (const f of fns) f(3);
const before = getHeapCodeStatistics().bytecode_and_metadata_size;
for (let i = 0; i < 8; i++) gc();
const after = getHeapCodeStatistics().bytecode_and_metadata_size;
process.stdout.write(`${JSON.stringify({ base, before, after })}\n`);
