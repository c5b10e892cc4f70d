/**
 * Checks XBZRLE vector files (JSON Lines, format in src/codec/fixtures/README.md) against this codec.
 *   npm run check:vectors -- [file.jsonl ...]      (default: the public fixture, src/codec/fixtures/xbzrle-public.jsonl)
 * Prints one line per failing record and a summary; exits 1 if any record fails.
 */
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkVector, readVectors } from '../src/codec/vectors.js';
import { XBZRLE_ENGINES } from '../src/codec/xbzrle.js';

const files = process.argv.slice(2).filter((a) => a !== '--');
if (files.length === 0) {
  files.push(fileURLToPath(new URL('../src/codec/fixtures/xbzrle-public.jsonl', import.meta.url)));
}
let failed = 0;
for (const file of files) {
  const vectors = readVectors(file);
  // Every record through each encoder engine this runtime has; decode records once per engine too.
  const outcomes = XBZRLE_ENGINES.flatMap((engine) =>
    vectors.map((v) => {
      const o = checkVector(v, engine);
      return { ...o, name: `${o.name} [${engine}]` };
    }),
  );
  const bad = outcomes.filter((o) => !o.ok);
  for (const o of bad) console.log(`FAIL ${o.kind} ${o.name}: ${o.detail}`);
  const count = (kind: string) => outcomes.filter((o) => o.kind === kind).length;
  console.log(
    `${relative(process.cwd(), file) || file}: ${outcomes.length - bad.length}/${outcomes.length} checks agree (${count('encode')} encode, ${count('decode')} decode; engines ${XBZRLE_ENGINES.join(', ')})`,
  );
  failed += bad.length;
}
process.exitCode = failed > 0 ? 1 : 0;
