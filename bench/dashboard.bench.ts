/**
 * How live is the dashboard's feed? Two agents as child processes; a subscriber on the source's GET /v1/events
 * counts progress events during real migrations and measures their rate, the largest gap between two of them,
 * and their size. Also the size of the built page. Prints a table and writes results/dashboard.json.
 *
 *   node --import tsx bench/dashboard.bench.ts
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import Table from 'cli-table3';
import { AgentClient } from '../src/agent/index.js';
import { spawnAgent } from '../src/agent/spawn.js';
import { buildDashboard } from '../src/web/build.js';

const MiB = 1024 * 1024;

interface Row {
  scenario: string;
  migrationMs: number;
  events: number;
  eventsPerSec: number;
  maxGapMs: number;
  meanBytes: number;
  status: string;
}

async function measure(
  src: AgentClient,
  dst: string,
  scenario: string,
  guest: { ramBytes: number; writeRate: number },
  options: Record<string, unknown>,
): Promise<Row> {
  const id = `bench-${Math.random().toString(36).slice(2, 8)}`;
  await src.startGuest(
    { ramBytes: guest.ramBytes, workload: { name: 'gap', params: { writeRate: guest.writeRate } } },
    id,
  );
  await new Promise((r) => setTimeout(r, 500));
  const ac = new AbortController();
  const res = await fetch(`${src.base}/v1/events`, { signal: ac.signal });
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  const times: number[] = [];
  let bytes = 0;
  let ended = false;
  let buf = '';
  const reading = (async () => {
    while (!ended) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i = buf.indexOf('\n\n');
      while (i >= 0) {
        const block = buf.slice(0, i + 2);
        buf = buf.slice(i + 2);
        if (block.startsWith('event: progress')) {
          times.push(performance.now());
          bytes += block.length;
        }
        if (block.startsWith('event: end')) ended = true;
        i = buf.indexOf('\n\n');
      }
    }
  })();
  const m = await src.migrate(id, dst, options as never);
  const final = await src.waitMigration(m.id);
  await reading;
  ac.abort();
  await src.stopGuest(id).catch(() => undefined);
  await new AgentClient(dst).stopGuest(id).catch(() => undefined);
  let maxGap = 0;
  for (let i = 1; i < times.length; i++) maxGap = Math.max(maxGap, times[i]! - times[i - 1]!);
  const span = times.length > 1 ? times.at(-1)! - times[0]! : 0;
  return {
    scenario,
    migrationMs: Math.round(final.totalTimeMs),
    events: times.length,
    eventsPerSec: span > 0 ? ((times.length - 1) * 1000) / span : 0,
    maxGapMs: Math.round(maxGap),
    meanBytes: times.length ? Math.round(bytes / times.length) : 0,
    status: `${final.status}${final.verified ? ', verified' : ''}`,
  };
}

const built = await buildDashboard();
const [a, b] = await Promise.all([
  spawnAgent('127.0.0.1', ['--quiet']),
  spawnAgent('127.0.0.1', ['--quiet']),
]);
const rows: Row[] = [];
try {
  const src = new AgentClient(a.address);
  rows.push(
    await measure(
      src,
      b.address,
      'gap 256 MiB, 5000 pages/s, 128 MiB/s',
      { ramBytes: 256 * MiB, writeRate: 5000 },
      {
        maxBandwidth: 128 * MiB,
      },
    ),
  );
  rows.push(
    await measure(
      src,
      b.address,
      'same, XBZRLE 64 MiB',
      { ramBytes: 256 * MiB, writeRate: 5000 },
      {
        maxBandwidth: 128 * MiB,
        xbzrle: true,
      },
    ),
  );
  rows.push(
    await measure(
      src,
      b.address,
      'gap 256 MiB, unlimited bandwidth',
      { ramBytes: 256 * MiB, writeRate: 5000 },
      {
        maxBandwidth: 0,
      },
    ),
  );
} finally {
  await Promise.all([a.stop(), b.stop()]);
}

const t = new Table({
  head: [
    'scenario',
    'migration (ms)',
    'progress events',
    'events/s',
    'largest gap (ms)',
    'bytes/event',
    'result',
  ],
});
for (const r of rows)
  t.push([r.scenario, r.migrationMs, r.events, r.eventsPerSec.toFixed(1), r.maxGapMs, r.meanBytes, r.status]);
process.stdout.write(`${t.toString()}\n`);
const files = built.files.map((f) => {
  const raw = readFileSync(`${built.outDir}/${f.name}`);
  return { name: f.name, bytes: statSync(`${built.outDir}/${f.name}`).size, gzipBytes: gzipSync(raw).length };
});
process.stdout.write(
  `page: ${files.map((f) => `${f.name} ${(f.bytes / 1024).toFixed(1)} KiB (${(f.gzipBytes / 1024).toFixed(1)} KiB gzip)`).join(', ')}\n`,
);
mkdirSync('results', { recursive: true });
writeFileSync(
  'results/dashboard.json',
  JSON.stringify({ at: new Date().toISOString(), rows, files }, null, 2),
);
