/**
 * Trace recording and replay speed: `node --import tsx bench/trace.bench.ts [--quick]`.
 *  - recording: a child process holding N MiB of non-zero pages, dirtying 1000 random pages every 10 ms; the first
 *    snapshot (every page read) and the median later one (page-compare: still every page read and compared).
 *  - replay: a guest replaying each shipped trace as fast as it can (traceSpeed 0): page writes per second.
 *  - pacing: each shipped trace replayed at speed 1 with recorded and with mean pacing, page writes counted per
 *    100 ms window, against the recording's own writes per 100 ms over the same stretch: how bursty each is
 *    (peak window / mean window, coefficient of variation) and how closely the replay follows the recording.
 * Prints tables and writes results/bench-trace.json.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import Table from 'cli-table3';
import { SHIPPED_TRACES, shippedTracePath } from '../src/experiments/common.js';
import { Guest } from '../src/guest/index.js';
import { Recorder, recordedDurationMs, recordedWriteTime, TraceReader } from '../src/trace/index.js';

const quick = process.argv.includes('--quick');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface RecordRow {
  mib: number;
  pages: number;
  firstMs: number;
  laterMs: number;
  /** CPU time of the recorder for a later snapshot: what it costs when the machine is not shared. */
  laterCpuMs: number;
  mibPerSecond: number;
  dirtyPerInterval: number;
}

async function recordRow(mib: number): Promise<RecordRow> {
  const child = spawn(
    'python3',
    [
      '-c',
      `import time, random, sys
b = bytearray(${mib} * 1024 * 1024)
line = (b'livemig trace bench ' * 26)[:512]
for i in range(0, len(b), 4096): b[i:i+512] = line
sys.stdout.write('ready\\n'); sys.stdout.flush()
while True:
    for k in range(1000): b[random.randrange(len(b))] = k & 255
    time.sleep(0.01)`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    await new Promise<void>((r) => child.stdout!.once('data', () => r()));
    const rec = new Recorder({ pid: child.pid!, intervalMs: 200, meta: { program: 'python3', command: [] } });
    const first = rec.snapshot(0)!;
    const later: number[] = [];
    const cpu: number[] = [];
    const dirty: number[] = [];
    for (let k = 1; k <= (quick ? 3 : 6); k++) {
      await sleep(200);
      const c0 = process.cpuUsage();
      const s = rec.snapshot(k * 200)!;
      const c = process.cpuUsage(c0);
      cpu.push((c.user + c.system) / 1000);
      later.push(s.tookMs);
      dirty.push(s.dirtyPages);
    }
    rec.abort();
    const laterMs = median(later);
    return {
      mib,
      pages: first.pagesInUse,
      firstMs: first.tookMs,
      laterMs,
      laterCpuMs: median(cpu),
      mibPerSecond: (first.pagesRead * 4096) / 2 ** 20 / (median(cpu) / 1000),
      dirtyPerInterval: median(dirty),
    };
  } finally {
    child.kill();
  }
}

interface ReplayRow {
  trace: string;
  pages: number;
  pageWritesPerSecond: number;
  createMs: number;
}

async function replayRow(name: string): Promise<ReplayRow> {
  const t0 = performance.now();
  const g = await Guest.create({
    ramBytes: 16 * 2 ** 20,
    workload: { name: 'trace', params: { traceFile: shippedTracePath(name), traceSpeed: 0 } },
  });
  const createMs = performance.now() - t0;
  try {
    g.resume();
    await sleep(200);
    const s0 = g.steps()[0]!;
    const t1 = performance.now();
    await sleep(quick ? 500 : 1500);
    const s1 = g.steps()[0]!;
    const rate = ((s1 - s0) * 1000) / (performance.now() - t1);
    await g.pause();
    return {
      trace: name,
      pages: g.config.workload.params.workingSetBytes / 4096,
      pageWritesPerSecond: rate,
      createMs,
    };
  } finally {
    await g.destroy();
  }
}

const records: RecordRow[] = [];
for (const mib of quick ? [16, 64] : [16, 64, 256]) records.push(await recordRow(mib));
const t1 = new Table({
  head: [
    'process memory',
    'pages',
    'first snapshot ms',
    'later snapshot ms',
    'later snapshot CPU ms',
    'MiB/s compared (CPU)',
    'dirtied/interval',
  ],
});
for (const r of records) {
  t1.push([
    `${r.mib} MiB`,
    r.pages,
    r.firstMs.toFixed(0),
    r.laterMs.toFixed(0),
    r.laterCpuMs.toFixed(0),
    r.mibPerSecond.toFixed(0),
    r.dirtyPerInterval,
  ]);
}
console.log('recording (page-compare; 1000 random byte writes per 10 ms in the child)');
console.log(t1.toString());

const replays: ReplayRow[] = [];
for (const t of SHIPPED_TRACES) replays.push(await replayRow(t));
const t2 = new Table({ head: ['trace', 'pages', 'guest create ms', 'replay page writes/s (speed 0)'] });
for (const r of replays) {
  t2.push([r.trace, r.pages, r.createMs.toFixed(0), Math.round(r.pageWritesPerSecond).toLocaleString('en')]);
}
console.log('replay (one vCPU, as fast as it can)');
console.log(t2.toString());

const WINDOW_MS = 100;

/**
 * The recording's page writes per 100 ms window from its first write on, laid out as the replay walks it: each
 * record's writes spread evenly over its interval, then the walk back (the timeline mirrored), and round again.
 */
function recordedWindows(file: string, windows: number): number[] {
  const { records } = TraceReader.open(readFileSync(file));
  const due: number[] = [];
  for (let r = 1; r < records.length; r++) {
    const n = records[r]!.pageCount;
    for (let j = 0; j < n; j++) due.push(recordedWriteTime(records, r, j, n));
  }
  const out = new Array<number>(windows).fill(0);
  const d = recordedDurationMs(records);
  if (due.length === 0 || d <= 0) return out;
  const first = due[0]!;
  const end = first + windows * WINDOW_MS;
  for (let lap = 0; lap * 2 * d <= end; lap++) {
    for (const t of due) {
      for (const at of [lap * 2 * d + t, lap * 2 * d + 2 * d - t]) {
        const w = Math.floor((at - first) / WINDOW_MS);
        if (w >= 0 && w < windows) out[w]!++;
      }
    }
  }
  return out;
}

function burstiness(xs: number[]): { peakToMean: number; cv: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length);
  return { peakToMean: mean > 0 ? Math.max(...xs) / mean : 0, cv: mean > 0 ? sd / mean : 0 };
}

/** Pearson correlation of two equally long series. */
function correlation(a: number[], b: number[]): number {
  const ma = a.reduce((x, y) => x + y, 0) / a.length;
  const mb = b.reduce((x, y) => x + y, 0) / b.length;
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - ma) * (b[i]! - mb);
    da += (a[i]! - ma) ** 2;
    db += (b[i]! - mb) ** 2;
  }
  return da > 0 && db > 0 ? num / Math.sqrt(da * db) : 0;
}

interface PacingRow {
  trace: string;
  pacing: 'recording' | 'recorded' | 'mean';
  windows: number;
  writes: number;
  peakToMean: number;
  cv: number;
  /** Correlation of the replay's windows with the recording's (1 = the same shape). */
  correlation: number;
}

async function pacingRows(name: string, windows: number): Promise<PacingRow[]> {
  const file = shippedTracePath(name);
  // The replay starts at the first page write (its clock starts there), so the recording is cut the same way.
  const recording = recordedWindows(file, windows);
  const rows: PacingRow[] = [
    {
      trace: name,
      pacing: 'recording',
      windows,
      writes: recording.reduce((a, b) => a + b, 0),
      ...burstiness(recording),
      correlation: 1,
    },
  ];
  for (const pacing of ['recorded', 'mean'] as const) {
    const g = await Guest.create({
      ramBytes: 16 * 2 ** 20,
      workload: { name: 'trace', params: { traceFile: file, traceSpeed: 1, tracePacing: pacing } },
    });
    try {
      const counts: number[] = [];
      const start = performance.now();
      g.resume();
      let last = 0;
      for (let w = 1; w <= windows; w++) {
        const due = start + w * WINDOW_MS;
        await sleep(Math.max(0, due - performance.now()));
        const s = g.steps()[0]!;
        counts.push(s - last);
        last = s;
      }
      await g.pause();
      rows.push({
        trace: name,
        pacing,
        windows,
        writes: last,
        ...burstiness(counts),
        correlation: correlation(recording, counts),
      });
    } finally {
      await g.destroy();
    }
  }
  return rows;
}

const pacing: PacingRow[] = [];
for (const t of SHIPPED_TRACES) pacing.push(...(await pacingRows(t, quick ? 20 : 50)));
const t3 = new Table({
  head: [
    'trace',
    'writes per 100 ms from',
    'windows',
    'page writes',
    'peak / mean',
    'CV',
    'correlation with recording',
  ],
});
for (const r of pacing) {
  t3.push([
    r.trace,
    r.pacing === 'recording' ? 'the recording' : `replay, ${r.pacing} pacing`,
    r.windows,
    r.writes,
    r.peakToMean.toFixed(2),
    r.cv.toFixed(2),
    r.pacing === 'recording' ? '' : r.correlation.toFixed(2),
  ]);
}
console.log('pacing (speed 1, one vCPU): page writes per 100 ms window, from the first write on');
console.log(t3.toString());

mkdirSync('results', { recursive: true });
writeFileSync(
  'results/bench-trace.json',
  `${JSON.stringify({ quick, records, replays, pacing }, null, 2)}\n`,
);
console.log('wrote results/bench-trace.json');
