/**
 * Host evacuation: the smart order against the naive ones (`npm run bench:evacuate`). For each order and each run,
 * three fresh agents (separate processes, loopback, built dist/), the same six guests started on the source (three
 * small quiet ones, a CPU-bound twolf, a kv store and a large guest dirtying memory as fast as it can), one second
 * of warm-up, then `POST /v1/evacuate` to the two others at --max-parallel 2 and a 64 MiB/s per-migration limit.
 * Prints the median over runs of: total time, sum and max of downtime, bytes, sum of completion times, and fails if
 * any guest did not move verified. Options: --runs N (default 3). Writes results/bench-evacuate.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import Table from 'cli-table3';
import { AgentClient, EVACUATION_ORDERS, type EvacuationReport } from '../src/agent/index.js';
import { spawnAgents } from '../src/agent/spawn.js';
import type { GuestConfig } from '../src/guest/index.js';

process.env.LIVEMIG_CLI ??= fileURLToPath(new URL('../dist/cli/bin.js', import.meta.url));

const MiB = 1024 * 1024;
const runsAt = process.argv.indexOf('--runs');
const runs = runsAt > 0 ? Number(process.argv[runsAt + 1]) : 3;
if (!Number.isInteger(runs) || runs < 1) {
  process.stderr.write('--runs takes a whole number, e.g. --runs 3\n');
  process.exit(2);
}

const GUESTS: { id: string; config: GuestConfig }[] = [
  { id: 'hot-64', config: { ramBytes: 64 * MiB, workload: { name: 'zipf', params: { writeRate: 0 } } } },
  { id: 'idle-16a', config: { ramBytes: 16 * MiB, workload: { name: 'idle' } } },
  { id: 'kv-48', config: { ramBytes: 48 * MiB, workload: { name: 'kv', params: { writeRate: 3000 } } } },
  { id: 'idle-16b', config: { ramBytes: 16 * MiB, workload: { name: 'idle' } } },
  { id: 'twolf-32', config: { ramBytes: 32 * MiB, workload: { name: 'twolf' } } },
  { id: 'idle-16c', config: { ramBytes: 16 * MiB, workload: { name: 'idle' } } },
];

async function once(order: (typeof EVACUATION_ORDERS)[number]): Promise<EvacuationReport> {
  const agents = await spawnAgents([{ args: ['--quiet'] }, { args: ['--quiet'] }, { args: ['--quiet'] }]);
  try {
    const [src, a, b] = agents.map((x) => new AgentClient(x.address)) as [
      AgentClient,
      AgentClient,
      AgentClient,
    ];
    for (const g of GUESTS) await src.startGuest(g.config, g.id);
    await new Promise((r) => setTimeout(r, 1000));
    const r = await src.evacuate({
      to: [a.base.replace('http://', ''), b.base.replace('http://', '')],
      maxParallel: 2,
      order,
      options: { maxBandwidth: 64 * MiB },
    });
    if (r.completed !== GUESTS.length || r.moves.some((m) => !m.verified)) {
      throw new Error(`${order}: ${r.completed}/${GUESTS.length} moved verified: ${JSON.stringify(r.moves)}`);
    }
    return r;
  } finally {
    await Promise.all(agents.map((x) => x.stop()));
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((p, q) => p - q);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const load0 = loadavg();
const results: Record<string, EvacuationReport[]> = {};
for (let i = 0; i < runs; i++) {
  for (const order of EVACUATION_ORDERS) {
    const r = await once(order);
    results[order] = [...(results[order] ?? []), r];
    process.stderr.write(
      `run ${i + 1} ${order}: ${r.totalTimeMs} ms, downtime sum ${r.downtimeSumMs.toFixed(1)} max ${r.downtimeMaxMs.toFixed(1)} ms\n`,
    );
  }
}
const load1 = loadavg();
const t = new Table({
  head: ['order', 'total time s', 'downtime sum ms', 'downtime max ms', 'MiB sent', 'completion sum s'],
});
for (const order of EVACUATION_ORDERS) {
  const rs = results[order]!;
  t.push([
    order,
    (median(rs.map((r) => r.totalTimeMs)) / 1000).toFixed(2),
    median(rs.map((r) => r.downtimeSumMs)).toFixed(1),
    median(rs.map((r) => r.downtimeMaxMs)).toFixed(1),
    (median(rs.map((r) => r.bytes)) / MiB).toFixed(1),
    (median(rs.map((r) => r.completionSumMs)) / 1000).toFixed(2),
  ]);
}
process.stdout.write(
  `${t.toString()}\nmedians of ${runs} runs; load average ${load0.map((x) => x.toFixed(2)).join(' ')} → ` +
    `${load1.map((x) => x.toFixed(2)).join(' ')}\n`,
);
mkdirSync('results', { recursive: true });
writeFileSync(
  'results/bench-evacuate.json',
  JSON.stringify({ runs, load: [load0, load1], results }, null, 2),
);
