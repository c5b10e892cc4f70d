/**
 * Live snapshot and restore figures (docs/snapshot.md): two agents as separate processes sharing a --snapshot-dir,
 * a guest snapshotted on A while it runs, restored on B. For 64 and 256 MiB guests, a `gap` guest writing as fast
 * as it can (a whole core) and one paced at 20 000 page writes/s (room to spare): snapshot time, the pause at the
 * instant, pages saved from pre-write copies, guest steps/s before and during, file size (logical and on disk),
 * restore time to the first instruction. Every restored guest must start at the snapshot's steps.
 *
 *   node --import tsx bench/snapshot.bench.ts [--runs N (per configuration, default 3)] [--quick (64 MiB only)]
 * (run `npm run build` first: the agents run from dist/). Prints a Markdown table with the load average of each row.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentClient } from '../src/agent/index.js';
import { spawnAgents } from '../src/agent/spawn.js';
import type { GuestConfig } from '../src/guest/index.js';
import { formatBytes } from '../src/units.js';

process.env.LIVEMIG_CLI ??= fileURLToPath(new URL('../dist/cli/bin.js', import.meta.url));
const MiB = 1 << 20;
const runsAt = process.argv.indexOf('--runs');
const runs = runsAt > 0 ? Number(process.argv[runsAt + 1]) : 3;
const sizes = process.argv.includes('--quick') ? [64 * MiB] : [64 * MiB, 256 * MiB];
const load = () => loadavg()[0]!.toFixed(1);

const dir = mkdtempSync(join(tmpdir(), 'livemig-bench-snapshot-'));
const [a, b] = await spawnAgents([
  { args: ['--quiet', '--snapshot-dir', dir] },
  { args: ['--quiet', '--snapshot-dir', dir] },
]);
const ca = new AgentClient(a!.address);
const cb = new AgentClient(b!.address);
const rows: string[] = [];
let n = 0;
try {
  for (const ramBytes of sizes) {
    for (const writeRate of [0, 20_000]) {
      for (let k = 0; k < runs; k++) {
        const id = `g${n++}`;
        const config: GuestConfig = { ramBytes, seed: n, workload: { name: 'gap', params: { writeRate } } };
        await ca.startGuest(config, id);
        await new Promise((r) => setTimeout(r, 2000));
        const loadBefore = load();
        const s = await ca.snapshot(id, `${id}.snap`, { baselineMs: 1000 });
        const r = await cb.restore(`${id}.snap`, { id });
        if (JSON.stringify(r.steps) !== JSON.stringify(s.steps))
          throw new Error(`${id}: restored at other steps`);
        const pct = (v: number | null) => (v === null ? '-' : `${Math.round(v * 100)}%`);
        const rate = (v: number | null) => (v === null ? '-' : `${Math.round(v / 1000)}k`);
        rows.push(
          `| ${formatBytes(ramBytes)} | gap, ${writeRate ? `${writeRate / 1000}k writes/s` : 'unpaced'} | ` +
            `${Math.round(s.snapshotMs)} ms | ${s.pauseMs.toFixed(1)} ms | ${s.copiedPages} of ${s.pages} | ` +
            `${rate(s.stepsPerSecBefore)} → ${rate(s.stepsPerSecDuring)} (${pct(s.slowdown)}) | ` +
            `${formatBytes(s.fileBytes)} / ${formatBytes(s.diskBytes)} | ${Math.round(r.restoreMs)} ms | ` +
            `${loadBefore} / ${load()} |`,
        );
        console.log(rows.at(-1));
        await Promise.all([ca.stopGuest(id), cb.stopGuest(id)]);
        rmSync(join(dir, `${id}.snap`));
      }
    }
  }
} finally {
  await Promise.all([a!.stop(), b!.stop()]);
  rmSync(dir, { recursive: true, force: true });
}
console.log(
  '\n| RAM | guest | snapshot time | pause | pages from pre-write copies | guest steps/s before → during (slowdown) | ' +
    'file size / on disk | restore to first instruction | load average (before / after) |',
);
console.log('|---|---|---|---|---|---|---|---|---|');
for (const row of rows) console.log(row);
