/**
 * Trace recording and replay speed: `node --import tsx bench/trace.bench.ts [--quick]`.
 *  - recording: a child process holding N MiB of non-zero pages, dirtying 1000 random pages every 10 ms; the first
 *    snapshot (every page read) and the median later one (page-compare: still every page read and compared).
 *  - replay: a guest replaying each shipped trace as fast as it can (traceSpeed 0): page writes per second.
 * Prints tables and writes results/bench-trace.json.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import Table from 'cli-table3';
import { SHIPPED_TRACES, shippedTracePath } from '../src/experiments/common.js';
import { Guest } from '../src/guest/index.js';
import { Recorder } from '../src/trace/index.js';

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

mkdirSync('results', { recursive: true });
writeFileSync('results/bench-trace.json', `${JSON.stringify({ quick, records, replays }, null, 2)}\n`);
console.log('wrote results/bench-trace.json');
