/**
 * The trace pack: livemig's compact, lossless file for one day of utilisation traces (the bundled PlanetLab days are
 * `data/planetlab/<day>.trace.br`). Node's built-in Brotli over a small binary layout, all integers little-endian:
 *
 *   offset 0    8 bytes    magic "LMTRACE1"
 *          8    uint32     VM count N
 *          12   uint32     samples per VM S
 *          16   uint32     sample interval, seconds (300 for PlanetLab)
 *          20   uint32     byte length L of the name block
 *          24   L bytes    VM names, UTF-8, each followed by "\n", in VM order
 *          24+L N·S bytes  samples, uint8, VM-major (VM 0's S samples, then VM 1's …), integer percent 0–100
 *
 * Nothing else follows. A day of PlanetLab (≈1000 VMs × 288 samples) is ≈0.3 MB before and ≈0.16 MB after Brotli,
 * and decodes in a few milliseconds.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { brotliCompressSync, brotliDecompressSync, constants } from 'node:zlib';
import { UsageError } from '../errors.js';
import { TraceFormatError } from './trace-error.js';
import type { Workload } from './workload.js';

export const TRACE_PACK_EXT = '.trace.br';
const MAGIC = 'LMTRACE1';
const HEADER = 24;

/** Encodes a workload as a trace pack (Brotli quality 11: packing is done once, decoding often). */
export function encodeTracePack(w: Workload, intervalSeconds = 300): Buffer {
  for (const name of w.vmNames) {
    if (name.length === 0 || name.includes('\n'))
      throw new UsageError(
        `VM name ${JSON.stringify(name)} cannot be packed: a name must be one non-empty line`,
      );
  }
  const names = Buffer.from(w.vmNames.map((n) => `${n}\n`).join(''), 'utf8');
  const raw = Buffer.alloc(HEADER + names.length + w.vms * w.samplesPerVm);
  raw.write(MAGIC, 0, 'latin1');
  raw.writeUInt32LE(w.vms, 8);
  raw.writeUInt32LE(w.samplesPerVm, 12);
  raw.writeUInt32LE(intervalSeconds, 16);
  raw.writeUInt32LE(names.length, 20);
  names.copy(raw, HEADER);
  raw.set(w.samples.subarray(0, w.vms * w.samplesPerVm), HEADER + names.length);
  return brotliCompressSync(raw, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 11,
      [constants.BROTLI_PARAM_LGWIN]: 24,
      [constants.BROTLI_PARAM_SIZE_HINT]: raw.length,
    },
  });
}

/** Decodes a trace pack; `file` names it in errors, `name` becomes the workload's name. */
export function decodeTracePack(
  packed: Uint8Array,
  file: string,
  name: string,
): Workload & { intervalSeconds: number } {
  const bad = (problem: string) =>
    new TraceFormatError({ file }, `${problem}; expected a livemig trace pack (${TRACE_PACK_EXT})`);
  let raw: Buffer;
  try {
    raw = brotliDecompressSync(packed);
  } catch {
    throw bad('not Brotli-compressed data');
  }
  if (raw.length < HEADER || raw.toString('latin1', 0, 8) !== MAGIC) throw bad('no LMTRACE1 header');
  const vms = raw.readUInt32LE(8);
  const samplesPerVm = raw.readUInt32LE(12);
  const intervalSeconds = raw.readUInt32LE(16);
  const namesLength = raw.readUInt32LE(20);
  if (raw.length !== HEADER + namesLength + vms * samplesPerVm) {
    throw bad(
      `${raw.length} bytes after decompression, the header says ${HEADER + namesLength + vms * samplesPerVm}`,
    );
  }
  const vmNames = raw.toString('utf8', HEADER, HEADER + namesLength).split('\n');
  if (vmNames.pop() !== '' || vmNames.length !== vms) throw bad(`the name block does not hold ${vms} names`);
  // A copy, so the workload does not keep the whole decompressed buffer (names included) alive.
  const samples = new Uint8Array(raw.subarray(HEADER + namesLength));
  for (let i = 0; i < samples.length; i++) {
    if (samples[i]! > 100) throw bad(`sample ${i} is ${samples[i]} %, above 100`);
  }
  return { name, vmNames, vms, samplesPerVm, samples, intervalSeconds };
}

/**
 * Checksums of a workload, as recorded for the bundled days: the VM count, the sum of all samples, and the SHA-256
 * of the CloudSim text the workload stands for — for each VM in order, its name and a newline, then its samples one
 * per line. For a CloudSim folder whose files are plain integers (the PlanetLab days are) that is, in the folder,
 * `LC_ALL=C ls | while IFS= read -r f; do printf '%s\n' "$f"; cat -- "$f"; done | sha256sum` (some names hold spaces).
 */
export function workloadDigest(w: Workload): { vms: number; sum: number; sha256: string } {
  const hash = createHash('sha256');
  let sum = 0;
  for (let v = 0; v < w.vms; v++) {
    const lines: string[] = [w.vmNames[v]!];
    const base = v * w.samplesPerVm;
    for (let k = 0; k < w.samplesPerVm; k++) {
      const x = w.samples[base + k]!;
      sum += x;
      lines.push(String(x));
    }
    hash.update(`${lines.join('\n')}\n`, 'utf8');
  }
  return { vms: w.vms, sum, sha256: hash.digest('hex') };
}

/** Reads a trace pack file; the workload is named after the file (`20110303.trace.br` → `20110303`). */
export async function loadTracePack(file: string, name?: string): Promise<Workload> {
  let packed: Buffer;
  try {
    packed = await readFile(file);
  } catch (err) {
    throw new UsageError(`cannot read trace pack ${file}: ${(err as Error).message}`, '--day');
  }
  const { intervalSeconds: _i, ...w } = decodeTracePack(
    packed,
    file,
    name ?? basename(file).slice(0, -TRACE_PACK_EXT.length),
  );
  return w;
}
