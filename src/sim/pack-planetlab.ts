/**
 * Makes (or checks) the bundled PlanetLab packs from CloudSim's text traces:
 *
 *   node --import tsx src/sim/pack-planetlab.ts PLANETLAB_DIR [--out DIR] [--check]
 *
 * PLANETLAB_DIR holds one folder per day (CloudSim: modules/cloudsim-examples/src/main/resources/workload/planetlab).
 * For each day it reads the folder, proves the conversion lossless (every file's bytes equal the text rendered back
 * from the numbers, and the pack decodes to the same names and numbers), writes DIR/<day>.trace.br (default: the
 * bundled data/planetlab) and prints the day's checksums — the ones src/sim/bundled.test.ts holds. `--check` writes
 * nothing and compares the existing packs with the folders instead.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { planetlabDataDir } from './bundled.js';
import { decodeTracePack, encodeTracePack, TRACE_PACK_EXT, workloadDigest } from './tracepack.js';
import { loadTraceDir } from './workload.js';

const args = process.argv.slice(2);
const check = args.includes('--check');
const outAt = args.indexOf('--out');
const out = outAt >= 0 ? args[outAt + 1]! : planetlabDataDir();
const source = args.find((a, i) => !a.startsWith('--') && (outAt < 0 || i !== outAt + 1));
if (!source) {
  process.stderr.write(
    'usage: node --import tsx src/sim/pack-planetlab.ts PLANETLAB_DIR [--out DIR] [--check]\n',
  );
  process.exit(2);
}

const days = readdirSync(source, { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name)
  .sort();
const digests: Record<string, ReturnType<typeof workloadDigest>> = {};
let failed = false;
let textBytes = 0;
let packBytes = 0;
for (const day of days) {
  const dir = join(source, day);
  const w = await loadTraceDir(dir);
  // Lossless only if every file is exactly its numbers, one per line: no spaces, CRs, leading zeros or extra lines.
  let dayText = 0;
  const odd: string[] = [];
  w.vmNames.forEach((name, v) => {
    const bytes = readFileSync(join(dir, name));
    dayText += bytes.length;
    const rendered = `${Array.from(w.samples.subarray(v * 288, (v + 1) * 288)).join('\n')}\n`;
    if (!bytes.equals(Buffer.from(rendered, 'latin1'))) odd.push(name);
  });
  const file = join(out, `${day}${TRACE_PACK_EXT}`);
  const packed = check ? readFileSync(file) : encodeTracePack(w);
  const back = decodeTracePack(packed, file, day);
  const same =
    back.vms === w.vms &&
    back.samplesPerVm === w.samplesPerVm &&
    back.vmNames.every((n, i) => n === w.vmNames[i]) &&
    Buffer.from(back.samples).equals(Buffer.from(w.samples));
  if (!check && same) writeFileSync(file, packed);
  digests[day] = workloadDigest(back);
  textBytes += dayText;
  packBytes += packed.length;
  const verdict = same
    ? odd.length === 0
      ? 'lossless'
      : `numbers equal; ${odd.length} files not canonical text`
    : 'MISMATCH';
  if (!same || odd.length > 0) failed = true;
  process.stdout.write(
    `${day}: ${w.vms} VMs, ${dayText} B of text → ${packed.length} B (${check ? 'checked' : 'written'}), ${verdict}` +
      `${odd.length > 0 ? ` (e.g. ${odd[0]})` : ''}\n`,
  );
}
process.stdout.write(`${days.length} days: ${textBytes} B of text → ${packBytes} B of packs in ${out}\n`);
process.stdout.write(`${JSON.stringify(digests, null, 2)}\n`);
if (days.length === 0 || failed) process.exit(1);
