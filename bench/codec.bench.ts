/**
 * Page codec benchmark: `npm run bench:codec` (node --import tsx bench/codec.bench.ts).
 *
 * 64 MiB of 4 KiB pages (16384 pages) in five profiles of how a resent page changed since its cached copy:
 * unchanged, one run of 64 changed bytes at a random offset, 1% of bytes changed at random places, 10%,
 * and fully random. For each profile, page by page as the migration source does it, it measures encode and
 * decode throughput (page bytes per second) of XBZRLE, RLE and the generic compressors, and in the same run
 * two baselines over the same pages: `Buffer.compare(old, new)` and a copy of the page (`set`, i.e. memcpy).
 * Ratios are codec throughput / baseline throughput. Each figure is the best of --repeats interleaved rounds
 * (default 5; the slow generic compressors run 2).
 *
 * When gcc is installed, the same pages also go through bench/native/xbzrle-ref.c (the portable C encoder
 * design QEMU uses, gcc -O2) for a native yardstick, reported against its own memcmp/memcpy too.
 *
 * Writes results/bench-codec.json. Flags: --quick (8 MiB, 1 repeat), --repeats N, --mib N, --no-native.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Table from 'cli-table3';
import {
  allocatePageArena,
  COMPRESSOR_NAMES,
  compressor,
  decodeRle,
  decodeXbzrle,
  encodeRleInto,
  encodeXbzrle,
  encodeXbzrleInto,
  rleMaxEncodedLength,
} from '../src/codec/index.js';
import { XBZRLE_ENGINE, XBZRLE_ENGINES } from '../src/codec/xbzrle.js';

function flag(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}
const QUICK = process.argv.includes('--quick');
const PAGE = 4096;
const MIB = flag('mib', QUICK ? 8 : 64);
const PAGES = (MIB * 2 ** 20) / PAGE;
const REPEATS = flag('repeats', QUICK ? 1 : 5);
const BYTES = PAGES * PAGE;
const ENGINES = XBZRLE_ENGINES;

/** mulberry32: seeded, so every run measures the same pages. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function fillRandom(buf: Uint8Array, next: () => number): void {
  const words = new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength >>> 2);
  for (let i = 0; i < words.length; i++) words[i] = (next() * 4294967296) >>> 0;
}

type ProfileName = 'unchanged' | 'run64' | 'scattered1' | 'scattered10' | 'random';
const PROFILES: readonly { name: ProfileName; what: string }[] = [
  { name: 'unchanged', what: 'page equal to its cached copy' },
  { name: 'run64', what: 'one run of 64 changed bytes at a random offset' },
  { name: 'scattered1', what: '1% of bytes changed, scattered' },
  { name: 'scattered10', what: '10% of bytes changed, scattered' },
  { name: 'random', what: 'every byte random' },
];

/** The new content of every page, given the old. Old pages are random (a busy guest's data). */
function makeProfile(name: ProfileName, old: Uint8Array, seed: number): Uint8Array {
  const next = rng(seed);
  const cur = old.slice();
  const changeAt = (k: number) => {
    cur[k] = (old[k]! + 1 + Math.floor(next() * 255)) & 0xff; // always a different byte
  };
  for (let p = 0; p < PAGES; p++) {
    const base = p * PAGE;
    if (name === 'run64') {
      const at = Math.floor(next() * (PAGE - 64));
      for (let k = 0; k < 64; k++) changeAt(base + at + k);
    } else if (name === 'scattered1' || name === 'scattered10') {
      const count = Math.round(PAGE * (name === 'scattered1' ? 0.01 : 0.1));
      for (let k = 0; k < count; k++) changeAt(base + Math.floor(next() * PAGE));
    }
  }
  if (name === 'random') fillRandom(cur, next);
  return cur;
}

function pagesOf(buf: Uint8Array): Uint8Array[] {
  return Array.from({ length: PAGES }, (_, p) => buf.subarray(p * PAGE, (p + 1) * PAGE));
}

interface Row {
  profile: ProfileName;
  codec: string;
  encodeBytesPerSecond: number;
  decodeBytesPerSecond: number | null;
  encodeVsCompare: number;
  encodeVsCopy: number;
  decodeVsCopy: number | null;
  encodedBytes: number;
  /** Pages the codec could not encode within one page (XBZRLE overflow); sent raw instead. */
  overflowPages: number;
}

interface NativeResult {
  encodeNs: number;
  memcmpNs: number;
  memcpyNs: number;
  encodedBytes: number;
  overflowPages: number;
}

interface Baseline {
  profile: ProfileName;
  compareBytesPerSecond: number;
  copyBytesPerSecond: number;
  /** The C yardstick (bench/native/xbzrle-ref.c, gcc -O2) on the same pages, when gcc is installed. */
  native?: NativeResult;
}

// The C yardstick: QEMU's portable encoder design compiled with gcc -O2, run on the same pages.
const NO_NATIVE = process.argv.includes('--no-native');
const nativeDir = mkdtempSync(join(tmpdir(), 'livemig-codec-bench-'));
process.on('exit', () => rmSync(nativeDir, { recursive: true, force: true }));
const nativeBin = ((): string | undefined => {
  if (NO_NATIVE) return undefined;
  const bin = join(nativeDir, 'xbzrle-ref');
  const source = fileURLToPath(new URL('native/xbzrle-ref.c', import.meta.url));
  try {
    execFileSync('gcc', ['-O2', '-o', bin, source], { stdio: 'pipe' });
    return bin;
  } catch {
    console.log('gcc not available: no native yardstick rows (install gcc to get them)');
    return undefined;
  }
})();

function runNative(old: Uint8Array, cur: Uint8Array): NativeResult | undefined {
  if (nativeBin === undefined) return undefined;
  const file = join(nativeDir, 'pages.bin');
  writeFileSync(file, old);
  appendFileSync(file, cur);
  const out = execFileSync(nativeBin, [file, String(PAGES), String(REPEATS)], { encoding: 'utf8' });
  rmSync(file);
  return JSON.parse(out) as NativeResult;
}

const next = rng(42);
const oldBuf = new Uint8Array(BYTES);
fillRandom(oldBuf, next);
const oldPages = pagesOf(oldBuf);
// The same old pages in a page arena, as a page cache kept there would hold them: read in place by the
// WebAssembly engine (one copy per page instead of two).
const WITH_ARENA = ENGINES.includes('wasm-simd');
// The engine's layout (src/migration/source/cache-sizing.ts): the cache's old copies and the scratch copy of the page being
// encoded live in one arena, so both are read in place. The second half holds this profile's current pages.
const arenaAll = WITH_ARENA ? allocatePageArena(2 * BYTES) : new Uint8Array(2 * BYTES);
const arena = arenaAll.subarray(0, BYTES);
arena.set(oldBuf);
const arenaPages = pagesOf(arena);
const arenaCurPages = pagesOf(arenaAll.subarray(BYTES));
const arenaScratch = arenaAll.subarray(BYTES, BYTES + PAGE);
const target = new Uint8Array(BYTES);
const targetPages = pagesOf(target);
const SLOT = rleMaxEncodedLength(PAGE);
let sink = 0; // keeps results alive so nothing is optimised away

const rows: Row[] = [];
const baselines: Baseline[] = [];
console.log(`codec benchmark: ${MIB} MiB of ${PAGE}-byte pages (${PAGES} pages), best of ${REPEATS}`);

/** Storage for one codec's encodings of every page, so its decode can replay them. */
function slots(size: number) {
  const buf = new Uint8Array(PAGES * size);
  return {
    pages: Array.from({ length: PAGES }, (_, p) => buf.subarray(p * size, (p + 1) * size)),
    len: new Int32Array(PAGES),
  };
}
const xbzrleOut = slots(PAGE);
const rleOut = slots(rleMaxEncodedLength(PAGE));
const packed = new Map<string, Uint8Array[]>(COMPRESSOR_NAMES.map((n) => [n, new Array<Uint8Array>(PAGES)]));

interface Task {
  id: string;
  /** Expensive tasks run at most twice. */
  slow?: boolean;
  run(): void;
}

for (const profile of PROFILES) {
  const curBuf = makeProfile(profile.name, oldBuf, 1000 + baselines.length);
  const curPages = pagesOf(curBuf);
  const tasks: Task[] = [
    {
      id: 'compare',
      run() {
        for (let p = 0; p < PAGES; p++) sink += Buffer.compare(oldPages[p]!, curPages[p]!);
      },
    },
    {
      id: 'copy',
      run() {
        for (let p = 0; p < PAGES; p++) targetPages[p]!.set(curPages[p]!);
      },
    },
  ];
  // XBZRLE with QEMU's limit (one page): an overflowing page goes raw, as in QEMU. Both engines give the
  // same bytes, so they share the output slots.
  for (const engine of ENGINES) {
    tasks.push({
      id: `xbzrle ${engine}:encode`,
      run() {
        for (let p = 0; p < PAGES; p++) {
          xbzrleOut.len[p] = encodeXbzrleInto(oldPages[p]!, curPages[p]!, xbzrleOut.pages[p]!, PAGE, engine);
        }
      },
    });
  }
  // The convenience API on plain buffers (default engine): it returns an encoding the caller owns, so its cost over
  // encodeXbzrleInto is what that ownership costs per page.
  tasks.push({
    id: 'xbzrle encodeXbzrle (returns a copy):encode',
    run() {
      for (let p = 0; p < PAGES; p++) sink += encodeXbzrle(oldPages[p]!, curPages[p]!, PAGE)?.length ?? PAGE;
    },
  });
  if (WITH_ARENA) {
    arenaAll.subarray(BYTES).set(curBuf);
    tasks.push({
      id: 'xbzrle wasm-simd, both pages in one arena:encode',
      run() {
        for (let p = 0; p < PAGES; p++) {
          xbzrleOut.len[p] = encodeXbzrleInto(
            arenaPages[p]!,
            arenaCurPages[p]!,
            xbzrleOut.pages[p]!,
            PAGE,
            'wasm-simd',
          );
        }
      },
    });
    tasks.push({
      // What the migration source does per resent page: copy the live page to the arena scratch, then encode.
      id: 'xbzrle wasm-simd, engine path (scratch copy + encode):encode',
      run() {
        for (let p = 0; p < PAGES; p++) {
          arenaScratch.set(curPages[p]!);
          xbzrleOut.len[p] = encodeXbzrleInto(
            arenaPages[p]!,
            arenaScratch,
            xbzrleOut.pages[p]!,
            PAGE,
            'wasm-simd',
          );
        }
      },
    });
    tasks.push({
      id: 'xbzrle wasm-simd, old copies in arena:encode',
      run() {
        for (let p = 0; p < PAGES; p++) {
          xbzrleOut.len[p] = encodeXbzrleInto(
            arenaPages[p]!,
            curPages[p]!,
            xbzrleOut.pages[p]!,
            PAGE,
            'wasm-simd',
          );
        }
      },
    });
  }
  tasks.push({
    id: 'xbzrle:decode',
    run() {
      // Applied on top of the old copy; re-applying the same delta is harmless, so repeats need no reset.
      for (let p = 0; p < PAGES; p++) {
        const len = xbzrleOut.len[p]!;
        if (len >= 0) decodeXbzrle(xbzrleOut.pages[p]!.subarray(0, len), targetPages[p]!);
      }
    },
  });
  tasks.push(
    {
      id: 'rle:encode',
      run() {
        for (let p = 0; p < PAGES; p++) rleOut.len[p] = encodeRleInto(curPages[p]!, rleOut.pages[p]!, SLOT);
      },
    },
    {
      id: 'rle:decode',
      run() {
        for (let p = 0; p < PAGES; p++)
          decodeRle(rleOut.pages[p]!.subarray(0, rleOut.len[p]!), targetPages[p]!);
      },
    },
  );
  for (const name of COMPRESSOR_NAMES) {
    const c = compressor(name);
    const out = packed.get(name)!;
    tasks.push(
      {
        id: `${name}:encode`,
        slow: true,
        run() {
          for (let p = 0; p < PAGES; p++) out[p] = c.compress(curPages[p]!);
        },
      },
      {
        id: `${name}:decode`,
        slow: true,
        run() {
          for (let p = 0; p < PAGES; p++) sink += c.decompress(out[p]!, PAGE).length;
        },
      },
    );
  }

  // Interleaved rounds: every task once per round, best time kept, so a burst of load on the shared
  // machine hits a codec and its baselines alike instead of one profile's whole column.
  const best = new Map<string, number>();
  for (let r = 0; r < REPEATS; r++) {
    for (const task of tasks) {
      if (task.slow && r >= 2) continue;
      if (task.id === 'xbzrle:decode') target.set(oldBuf);
      const t0 = performance.now();
      task.run();
      const s = (performance.now() - t0) / 1000;
      best.set(task.id, Math.min(best.get(task.id) ?? Number.POSITIVE_INFINITY, s));
    }
  }

  // Every codec must have round-tripped the pages it encoded.
  target.set(oldBuf);
  let xBytes = 0;
  let xOverflow = 0;
  for (let p = 0; p < PAGES; p++) {
    const len = xbzrleOut.len[p]!;
    if (len < 0) {
      xOverflow++;
      continue;
    }
    xBytes += len;
    decodeXbzrle(xbzrleOut.pages[p]!.subarray(0, len), targetPages[p]!);
    if (Buffer.compare(targetPages[p]!, curPages[p]!) !== 0) {
      throw new Error(`XBZRLE round trip failed on page ${p} of ${profile.name}`);
    }
  }
  let rBytes = 0;
  for (let p = 0; p < PAGES; p++) {
    rBytes += rleOut.len[p]!;
    decodeRle(rleOut.pages[p]!.subarray(0, rleOut.len[p]!), targetPages[p]!);
  }
  if (Buffer.compare(target, curBuf) !== 0) throw new Error(`RLE round trip failed on ${profile.name}`);

  const compareS = best.get('compare')!;
  const copyS = best.get('copy')!;
  baselines.push({
    profile: profile.name,
    compareBytesPerSecond: BYTES / compareS,
    copyBytesPerSecond: BYTES / copyS,
  });
  const row = (
    codec: string,
    encodeS: number,
    decodeS: number | null,
    encodedBytes: number,
    overflow = 0,
  ) => {
    rows.push({
      profile: profile.name,
      codec,
      encodeBytesPerSecond: BYTES / encodeS,
      decodeBytesPerSecond: decodeS === null ? null : BYTES / decodeS,
      encodeVsCompare: compareS / encodeS,
      encodeVsCopy: copyS / encodeS,
      decodeVsCopy: decodeS === null ? null : copyS / decodeS,
      encodedBytes,
      overflowPages: overflow,
    });
  };
  for (const engine of ENGINES) {
    const label = `xbzrle ${engine}${engine === XBZRLE_ENGINE ? ' *' : ''}`;
    const decodeS = xOverflow === PAGES ? null : best.get('xbzrle:decode')!;
    row(label, best.get(`xbzrle ${engine}:encode`)!, decodeS, xBytes + xOverflow * PAGE, xOverflow);
  }
  row(
    `xbzrle encodeXbzrle (returns a copy), ${XBZRLE_ENGINE}`,
    best.get('xbzrle encodeXbzrle (returns a copy):encode')!,
    null,
    xBytes + xOverflow * PAGE,
    xOverflow,
  );
  if (WITH_ARENA) {
    const decodeS = xOverflow === PAGES ? null : best.get('xbzrle:decode')!;
    for (const id of [
      'xbzrle wasm-simd, old copies in arena',
      'xbzrle wasm-simd, both pages in one arena',
      'xbzrle wasm-simd, engine path (scratch copy + encode)',
    ]) {
      row(id, best.get(`${id}:encode`)!, decodeS, xBytes + xOverflow * PAGE, xOverflow);
    }
  }
  row('rle', best.get('rle:encode')!, best.get('rle:decode')!, rBytes);
  for (const name of COMPRESSOR_NAMES) {
    let bytes = 0;
    for (const b of packed.get(name)!) bytes += b.length;
    row(name, best.get(`${name}:encode`)!, best.get(`${name}:decode`)!, bytes);
  }
  const native = runNative(oldBuf, curBuf);
  if (native !== undefined) {
    const base = baselines[baselines.length - 1]!;
    base.native = native;
    rows.push({
      profile: profile.name,
      codec: 'xbzrle C -O2 (native)',
      encodeBytesPerSecond: BYTES / (native.encodeNs / 1e9),
      decodeBytesPerSecond: null,
      // Against this run's Buffer.compare, like the rows above; nativeVsMemcmp is against C's own memcmp.
      encodeVsCompare: compareS / (native.encodeNs / 1e9),
      encodeVsCopy: copyS / (native.encodeNs / 1e9),
      decodeVsCopy: null,
      encodedBytes: native.encodedBytes + native.overflowPages * PAGE,
      overflowPages: native.overflowPages,
    });
  }
  console.log(`  ${profile.name} done`);
}

const mbps = (v: number | null) => (v === null ? '—' : (v / 1e6).toFixed(0));
const ratio = (v: number | null) => (v === null ? '—' : `${v.toFixed(2)}×`);
const table = new Table({
  head: ['profile', 'codec', 'encode MB/s', 'decode MB/s', 'enc/compare', 'enc/copy', 'dec/copy', 'encoded'],
  colAligns: ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right'],
  style: { head: [], border: [] },
  chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
});
for (const b of baselines) {
  table.push([
    b.profile,
    'Buffer.compare | copy',
    `${mbps(b.compareBytesPerSecond)} | ${mbps(b.copyBytesPerSecond)}`,
    '',
    '1.00×',
    '',
    '',
    '',
  ]);
  for (const r of rows.filter((x) => x.profile === b.profile)) {
    const size = `${((100 * r.encodedBytes) / BYTES).toFixed(1)}%${r.overflowPages ? ` (${r.overflowPages} ovf)` : ''}`;
    table.push([
      '',
      r.codec,
      mbps(r.encodeBytesPerSecond),
      mbps(r.decodeBytesPerSecond),
      ratio(r.encodeVsCompare),
      ratio(r.encodeVsCopy),
      ratio(r.decodeVsCopy),
      size,
    ]);
  }
}
console.log(table.toString());
console.log(
  'encoded = output bytes / page bytes; ovf = XBZRLE overflows (page sent raw, counted as 4096 bytes)',
);
console.log('* = the engine encodeXbzrleInto uses by default');
const target05 = rows.filter(
  (r) =>
    r.codec.startsWith('xbzrle') &&
    !r.codec.includes('native') &&
    (r.profile === 'unchanged' || r.profile === 'run64'),
);
for (const b of baselines) {
  if (b.native === undefined) continue;
  const n = b.native;
  console.log(
    `native C (${b.profile}): encode ${(BYTES / n.encodeNs / 1e-3).toFixed(0)} MB/s = ${(n.memcmpNs / n.encodeNs).toFixed(2)}× C memcmp, ${(n.memcpyNs / n.encodeNs).toFixed(2)}× C memcpy`,
  );
}
// The target is judged on the encoder where the engine keeps its pages: both in one WebAssembly arena, read in place
// (as the C yardstick reads its pages). The other rows are printed against the same goal for comparison: plain
// JavaScript buffers must first be copied into WebAssembly memory, which a wasm module cannot read otherwise.
const TARGET_ROW = WITH_ARENA ? 'xbzrle wasm-simd, both pages in one arena' : `xbzrle ${XBZRLE_ENGINE} *`;
for (const r of target05) {
  // The convenience API has its own goal on unchanged pages: no per-call allocation of a zeroed output page.
  const judged =
    r.codec === TARGET_ROW || (r.codec.startsWith('xbzrle encodeXbzrle') && r.profile === 'unchanged');
  console.log(
    `${judged ? 'target' : '  (for comparison)'}: ${r.codec} encode ${r.profile} = ${r.encodeVsCompare.toFixed(2)}× Buffer.compare (goal ≥ 0.5×): ${r.encodeVsCompare >= 0.5 ? 'met' : 'NOT met'}`,
  );
}

mkdirSync('results', { recursive: true });
writeFileSync(
  'results/bench-codec.json',
  `${JSON.stringify(
    {
      benchmark: 'codec',
      command: `node --import tsx bench/codec.bench.ts${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(' ')}` : ''}`,
      date: new Date().toISOString(),
      machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version },
      pageSize: PAGE,
      pages: PAGES,
      bytes: BYTES,
      repeats: REPEATS,
      profiles: PROFILES,
      baselines,
      rows,
    },
    null,
    2,
  )}\n`,
);
console.log(`wrote results/bench-codec.json (${sink === 0.5 ? '' : 'ok'})`);
