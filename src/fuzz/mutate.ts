/**
 * How the fuzz targets make hostile inputs: byte mutations of a valid input, and structure-aware mutations of a
 * valid JSON body (fields replaced, removed or added, with odd values and prototype-attacking names).
 */
import type { Rng } from '../codec/fuzz.js';

export interface Target {
  name: string;
  /** Runs one input; returns normally if accepted, throws a typed error if refused. */
  run(rng: Rng): void;
}

/** Flips, inserts, deletes or overwrites a few bytes, or truncates/extends. */
export function mutate(rng: Rng, valid: Uint8Array): Buffer {
  let b = Buffer.from(valid);
  for (let n = 1 + rng.int(4); n > 0; n--) {
    const op = rng.int(6);
    const at = b.length === 0 ? 0 : rng.int(b.length);
    if (op === 0 && b.length) b[at] = b[at]! ^ (1 << rng.int(8));
    else if (op === 1 && b.length) b[at] = rng.int(256);
    else if (op === 2)
      b = Buffer.concat([b.subarray(0, at), Buffer.from(rng.bytes(1 + rng.int(8))), b.subarray(at)]);
    else if (op === 3) b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + rng.int(8))]);
    else if (op === 4) b = b.subarray(0, at);
    else if (b.length >= 4)
      b.writeUInt32BE([0, 1, 0xffffffff, 0x7fffffff, rng.next()][rng.int(5)]!, rng.int(b.length - 3));
  }
  return b;
}

export function hex(rng: Rng, bytes: number): string {
  return Buffer.from(rng.bytes(bytes)).toString('hex');
}

// ---- JSON bodies: structure-aware values for the control API and the guest configuration.

const ODD: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  Number.MAX_SAFE_INTEGER,
  2 ** 53 + 2,
  -0,
  1e308,
  '',
  'x',
  '1GiB',
  'gap',
  '__proto__',
  'constructor',
  [],
  {},
  [1, 2],
  { name: 'gap' },
  '127.0.0.1:7070',
  'a'.repeat(70),
];
/** Field names the control API and guest configuration parsers look for (and two that attack prototypes). */
export const JSON_FIELDS = [
  'id',
  'run',
  'config',
  'ramBytes',
  'pageSize',
  'vcpus',
  'seed',
  'workload',
  'name',
  'params',
  'guest',
  'destination',
  'preset',
  'options',
  'strategy',
  'xbzrle',
  'maxBandwidth',
  'downtimeLimitMs',
  'downtimeRamp',
  'startMs',
  'stepMs',
  'maxMs',
  'compress',
  'workingSetBytes',
  'writeRate',
  'blocks',
  'blockBytes',
  '__proto__',
  'constructor',
];

function value(rng: Rng, depth: number): unknown {
  const k = rng.int(depth > 2 ? 2 : 4);
  if (k === 0) return ODD[rng.int(ODD.length)];
  if (k === 1) return rng.int(2) ? rng.next() - 2 ** 31 : hex(rng, rng.int(6));
  if (k === 2) return Array.from({ length: rng.int(4) }, () => value(rng, depth + 1));
  const o: Record<string, unknown> = {};
  for (let n = rng.int(5); n > 0; n--) o[JSON_FIELDS[rng.int(JSON_FIELDS.length)]!] = value(rng, depth + 1);
  return o;
}

/** A valid body with a few fields replaced, removed or added. */
export function mutateBody(rng: Rng, valid: Record<string, unknown>, depth = 0): unknown {
  if (rng.int(12) === 0) return value(rng, 0);
  const o: Record<string, unknown> = { ...valid };
  for (const key of Object.keys(o)) {
    const v = o[key];
    const r = rng.int(6);
    if (r === 0) delete o[key];
    else if (r === 1) o[key] = value(rng, depth + 1);
    else if (v && typeof v === 'object' && !Array.isArray(v) && depth < 3)
      o[key] = mutateBody(rng, v as Record<string, unknown>, depth + 1);
  }
  if (rng.int(4) === 0) o[JSON_FIELDS[rng.int(JSON_FIELDS.length)]!] = value(rng, depth + 1);
  // Round-trip through JSON: the agent only ever sees what JSON.parse makes.
  return JSON.parse(JSON.stringify(o) ?? 'null');
}
