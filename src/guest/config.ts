/**
 * Guest configuration: what the user gives (`GuestConfig`), the defaults, validation with messages that name the
 * field and the accepted range, and the fully resolved form (`ResolvedGuestConfig`) that travels in `GuestState`.
 * Two guests with equal resolved configs and equal vCPU states run identically (the determinism oracle).
 */
import { UsageError } from '../errors.js';
import { resolveTraceParams } from './workloads/trace.js';

/** `trace` replays a recorded program (src/trace); the others are synthetic, listed in WORKLOAD_NAMES. */
export type WorkloadName = 'idle' | 'twolf' | 'gap' | 'zipf' | 'seq' | 'kv' | 'kv-read' | 'trace';
export const WORKLOAD_NAMES: readonly WorkloadName[] = [
  'idle',
  'twolf',
  'gap',
  'zipf',
  'seq',
  'kv',
  'kv-read',
];

/** How a workload picks the page it touches next (within its vCPU's share of the working set). */
export type Distribution = 'uniform' | 'zipf' | 'sequential';
export const DISTRIBUTIONS: readonly Distribution[] = ['uniform', 'zipf', 'sequential'];

/**
 * Workload parameters. Every field has a per-workload default (`DEFAULT_PARAMS`); a spec overrides any subset.
 */
export interface WorkloadParams {
  /** Bytes of guest RAM the workload uses, all vCPUs together, from page 0 up; each vCPU owns a disjoint,
   *  contiguous share. Clamped to RAM and rounded down to whole pages. */
  workingSetBytes: number;
  /** Pages written per second per vCPU at full frequency and no CAP; 0 = as fast as it can. Measured in guest
   *  time, so CAP and DVFS slow it like a program that computes between writes. Ignored by `runToStep`. */
  writeRate: number;
  /** Bytes changed by a small write (a counter, a field): 1..pageSize. kv uses its record fields instead. */
  bytesPerWrite: number;
  /** Fraction 0..1 of writes that rewrite a whole page with new (non-zero, realistic) contents. */
  wholePageFraction: number;
  /** How pages are chosen: uniform, zipf (hot set), sequential (a cursor that wraps). */
  distribution: Distribution;
  /** Zipf exponent s > 0 (0.99 is the classic "80/20"-like web hot set). */
  zipfExponent: number;
  /** twolf: memory reads plus arithmetic per step (the CPU-bound part of a placement move). */
  computePerStep: number;
  /** Probability 0..1 that a step writes (twolf: accepted moves). Writers use 1. */
  writeProbability: number;
  /** kv: bytes per record slot, KV_MIN_RECORD..pageSize. */
  recordBytes: number;
  /** trace: the trace file (resolved to an absolute path). */
  traceFile?: string;
  /** trace: replay speed, 1 = as recorded, 0 = as fast as it can. */
  traceSpeed?: number;
  /** trace: `recorded` follows the recording's timestamps (its bursts and quiet spells), `mean` spreads the writes
   *  evenly at the mean recorded rate (or at writeRate when given). */
  tracePacing?: TracePacing;
  /** trace: checksum of the file, filled in by resolveConfig (a changed file is a different workload). */
  traceCrc?: number;
}

export type TracePacing = 'recorded' | 'mean';
export const TRACE_PACINGS: readonly TracePacing[] = ['recorded', 'mean'];

export interface WorkloadSpec {
  /** A workload name, or `trace:FILE` (short for name `trace` with params.traceFile = FILE). */
  name: WorkloadName | `trace:${string}`;
  params?: Partial<WorkloadParams>;
}

/** How an emulated DVFS state slows a vCPU: `busy` keeps the core busy for the stretched time (CPU time stays at
 *  100% as on a real down-clocked core); `sleep` sleeps instead (CPU time falls with the frequency). */
export type DvfsStall = 'busy' | 'sleep';

export interface GuestConfig {
  /** Guest RAM in bytes, a multiple of pageSize. */
  ramBytes: number;
  /** Page size, a power of two 512..65536; default 4096. */
  pageSize?: number;
  /** Number of vCPUs (worker threads), 1..64; default 1. */
  vcpus?: number;
  workload: WorkloadSpec;
  /** Seed of every vCPU's RNG and of the workload's content corpus; default 1. */
  seed?: number;
  /** Maximum bytes per RAM block (one SharedArrayBuffer), a multiple of pageSize; default 1 GiB. */
  blockBytes?: number;
  /** DVFS emulation mode, default `busy`. */
  dvfsStall?: DvfsStall;
}

export interface ResolvedGuestConfig {
  ramBytes: number;
  pageSize: number;
  vcpus: number;
  workload: { name: WorkloadName; params: WorkloadParams };
  seed: number;
  blockBytes: number;
  dvfsStall: DvfsStall;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Smallest kv record: the fixed-width fields of one record (see workloads/kv.ts) fit in it. */
export const KV_MIN_RECORD = 224;

const BASE: WorkloadParams = {
  workingSetBytes: 64 * MiB,
  writeRate: 0,
  bytesPerWrite: 8,
  wholePageFraction: 0.05,
  distribution: 'uniform',
  zipfExponent: 0.99,
  computePerStep: 0,
  writeProbability: 1,
  recordBytes: 256,
};

/** Per-workload defaults (see docs/guest.md for what each one models). */
export const DEFAULT_PARAMS: Readonly<Record<WorkloadName, Readonly<WorkloadParams>>> = {
  // Kernel timer ticks and bookkeeping: a few small writes per second over a small area.
  idle: { ...BASE, workingSetBytes: 64 * KiB, writeRate: 10, wholePageFraction: 0 },
  // SPEC twolf: placement by simulated annealing, ~3 MB, CPU bound, few (accepted) moves write.
  twolf: {
    ...BASE,
    workingSetBytes: 3 * MiB,
    computePerStep: 64,
    writeProbability: 0.05,
    wholePageFraction: 0.01,
  },
  // SPEC gap: computer algebra, ~200 MB heap, write heavy; the allocator/GC rewrites whole pages.
  gap: { ...BASE, workingSetBytes: 200 * MiB, bytesPerWrite: 16, wholePageFraction: 0.1 },
  zipf: { ...BASE, distribution: 'zipf' },
  seq: { ...BASE, distribution: 'sequential' },
  kv: { ...BASE, distribution: 'zipf', wholePageFraction: 0.02 },
  // kv serving mostly GETs: vCPU 0 also takes the PUTs (a fifth of its steps, at most 2000 pages/s), the other
  // vCPUs only read (workloads/kv-read.ts).
  'kv-read': {
    ...BASE,
    distribution: 'zipf',
    wholePageFraction: 0.02,
    writeProbability: 0.2,
    writeRate: 2000,
  },
  // A recorded program: working set and write rate come from the trace (resolveTraceParams).
  trace: { ...BASE, traceFile: '', traceSpeed: 1, tracePacing: 'recorded', traceCrc: 0 },
};

function bad(field: string, value: unknown, want: string): never {
  throw new UsageError(`guest ${field}: ${JSON.stringify(value)} is not accepted; ${want}`, field);
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

/**
 * Most RAM blocks a guest may have: what a migration's HELLO can describe (MAX_BLOCKS in
 * migration/protocol/messages.ts), so a guest that can be created can be migrated; also bounds the buffers and views
 * creating a guest sets up.
 */
export const MAX_RAM_BLOCKS = 4096;

/**
 * Resolves defaults, clamps the working set to RAM and validates everything. Throws UsageError. `trace`: a trace
 * workload's recording already in memory (then its file is not opened).
 */
export function resolveConfig(
  config: GuestConfig | ResolvedGuestConfig,
  opts: { trace?: Uint8Array } = {},
): ResolvedGuestConfig {
  if (typeof config !== 'object' || config === null) bad('config', config, 'pass an object');
  const pageSize = config.pageSize ?? 4096;
  if (!isInt(pageSize) || pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) {
    bad('pageSize', pageSize, 'use a power of two from 512 to 65536');
  }
  const ramBytes = config.ramBytes;
  if (!isInt(ramBytes) || ramBytes <= 0 || ramBytes % pageSize !== 0) {
    bad('ramBytes', ramBytes, `use a positive multiple of the page size (${pageSize})`);
  }
  if (ramBytes / pageSize > 2 ** 31) bad('ramBytes', ramBytes, 'at most 2^31 pages');
  const vcpus = config.vcpus ?? 1;
  if (!isInt(vcpus) || vcpus < 1 || vcpus > 64) bad('vcpus', vcpus, 'use an integer from 1 to 64');
  const seed = config.seed ?? 1;
  if (!isInt(seed)) bad('seed', seed, 'use an integer');
  const blockBytes = config.blockBytes ?? GiB;
  if (!isInt(blockBytes) || blockBytes < pageSize || blockBytes % pageSize !== 0) {
    bad('blockBytes', blockBytes, `use a positive multiple of the page size (${pageSize})`);
  }
  if (Math.ceil(ramBytes / blockBytes) > MAX_RAM_BLOCKS) {
    bad(
      'blockBytes',
      blockBytes,
      `${ramBytes} bytes of RAM in blocks of ${blockBytes} would make ${Math.ceil(ramBytes / blockBytes)} RAM ` +
        `blocks; a guest may have at most ${MAX_RAM_BLOCKS} (what a migration carries): use blockBytes of at ` +
        `least ${Math.ceil(ramBytes / MAX_RAM_BLOCKS / pageSize) * pageSize}`,
    );
  }
  const dvfsStall = config.dvfsStall ?? 'busy';
  if (dvfsStall !== 'busy' && dvfsStall !== 'sleep') bad('dvfsStall', dvfsStall, 'use "busy" or "sleep"');
  const spec = config.workload;
  if (typeof spec !== 'object' || spec === null) bad('workload', spec, 'pass { name, params? }');
  let name = spec.name;
  let given = spec.params ?? {};
  if (typeof name === 'string' && name.startsWith('trace:')) {
    given = { ...given, traceFile: name.slice('trace:'.length) };
    name = 'trace';
  }
  if (!WORKLOAD_NAMES.includes(name as WorkloadName) && name !== 'trace')
    bad('workload.name', spec.name, `use one of ${WORKLOAD_NAMES.join(', ')}, or trace:FILE`);
  const params = resolveParams(name as WorkloadName, given, { ramBytes, pageSize, vcpus }, opts.trace);
  return {
    ramBytes,
    pageSize,
    vcpus,
    workload: { name: name as WorkloadName, params },
    seed,
    blockBytes,
    dvfsStall,
  };
}

function resolveParams(
  name: WorkloadName,
  given: Partial<WorkloadParams>,
  ram: { ramBytes: number; pageSize: number; vcpus: number },
  trace: Uint8Array | undefined,
): WorkloadParams {
  if (typeof given !== 'object' || given === null) bad('workload.params', given, 'pass an object');
  const defaults = DEFAULT_PARAMS[name];
  for (const key of Object.keys(given)) {
    if (!(key in defaults))
      bad(`workload.params.${key}`, key, `known params: ${Object.keys(defaults).join(', ')}`);
  }
  const p: WorkloadParams = { ...defaults };
  for (const [k, v] of Object.entries(given)) {
    if (v !== undefined) (p as unknown as Record<string, unknown>)[k] = v;
  }
  const f = (k: keyof WorkloadParams) => `workload.params.${k}`;
  const num = (k: keyof WorkloadParams, lo: number, hi: number, int: boolean) => {
    const v = p[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi || (int && !Number.isInteger(v))) {
      bad(f(k), v, `use ${int ? 'an integer' : 'a number'} from ${lo} to ${hi}`);
    }
  };
  num('workingSetBytes', 1, Number.MAX_SAFE_INTEGER, true);
  num('writeRate', 0, 1e9, false);
  num('bytesPerWrite', 1, ram.pageSize, true);
  num('wholePageFraction', 0, 1, false);
  num('zipfExponent', 0.01, 10, false);
  num('computePerStep', 0, 1e6, true);
  num('writeProbability', 0, 1, false);
  num('recordBytes', KV_MIN_RECORD, ram.pageSize, true);
  if (name === 'trace') resolveTraceParams(p, given, ram, trace);
  if (!DISTRIBUTIONS.includes(p.distribution)) {
    bad(f('distribution'), p.distribution, `use one of ${DISTRIBUTIONS.join(', ')}`);
  }
  // Clamp to RAM, whole pages; every vCPU needs at least one page of its own.
  const pages = Math.floor(Math.min(p.workingSetBytes, ram.ramBytes) / ram.pageSize);
  if (pages < ram.vcpus) {
    bad(
      f('workingSetBytes'),
      p.workingSetBytes,
      `need at least one page per vCPU (${ram.vcpus} x ${ram.pageSize} B)`,
    );
  }
  p.workingSetBytes = pages * ram.pageSize;
  return p;
}

/** The pages vCPU `index` owns: a contiguous share of the working set (disjoint across vCPUs). */
export function vcpuShare(
  config: ResolvedGuestConfig,
  index: number,
): { firstPage: number; pageCount: number } {
  const total = config.workload.params.workingSetBytes / config.pageSize;
  const start = Math.floor((total * index) / config.vcpus);
  const end = Math.floor((total * (index + 1)) / config.vcpus);
  return { firstPage: start, pageCount: end - start };
}

/** Structural equality of two resolved configs (what `loadState` requires). */
export function sameConfig(a: ResolvedGuestConfig, b: ResolvedGuestConfig): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(c: ResolvedGuestConfig): unknown {
  const p = c.workload.params;
  return [
    c.ramBytes,
    c.pageSize,
    c.vcpus,
    c.seed,
    c.workload.name,
    (Object.keys(p) as (keyof WorkloadParams)[]).sort().map((k) => [k, p[k]]),
  ];
}
