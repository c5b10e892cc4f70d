/**
 * Where a migration's CPU goes, thread by thread (`npm run bench:threads [-- GiB [runs]]`): two agents from the
 * built dist/, a guest whose every page is non-zero, a pre-copy without a bandwidth limit, and the user and system
 * CPU time of every thread of both agents over the transfer (from /proc/PID/task/TID/stat, sampled every 20 ms so
 * that threads that end before the migration does — the destination's page sink — are counted). Threads that used
 * under 30 ms are left out.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AgentClient } from '../src/agent/index.js';
import { spawnAgent } from '../src/agent/spawn.js';
import type { GuestConfig } from '../src/guest/index.js';

process.env.LIVEMIG_CLI ??= fileURLToPath(new URL('../dist/cli/bin.js', import.meta.url));
const TICK_MS = 1000 / 100; // USER_HZ

type Times = Map<string, [number, number]>;

function threads(pid: number): Times {
  const m: Times = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const s = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const comm = s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'));
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      m.set(`${tid}:${comm}`, [Number(f[11]) * TICK_MS, Number(f[12]) * TICK_MS]);
    } catch {
      // the thread ended between readdir and read
    }
  }
  return m;
}

function diff(before: Times, after: Times, perGiB: number): string {
  const out: string[] = [];
  for (const [k, [u, s]] of after) {
    const [u0, s0] = before.get(k) ?? [0, 0];
    if (u - u0 + (s - s0) >= 30)
      out.push(
        `${k} ${(((u - u0) * perGiB) / 1000).toFixed(2)}+${(((s - s0) * perGiB) / 1000).toFixed(2)} s`,
      );
  }
  return out.join(', ');
}

const gib = Number(process.argv[2] ?? 1);
const runs = Number(process.argv[3] ?? 1);
const size = Math.round(gib * 1024 ** 3);
const [src, dst] = await Promise.all([
  spawnAgent('127.0.0.1', ['--quiet']),
  spawnAgent('127.0.0.1', ['--quiet']),
]);
try {
  const a = new AgentClient(src.address);
  const b = new AgentClient(dst.address);
  console.log('CPU per GiB sent, user+system, by thread (tid:name)');
  for (let i = 0; i < runs; i++) {
    const id = `threads-${i}`;
    const guest: GuestConfig = {
      ramBytes: size,
      seed: 5,
      workload: { name: 'gap', params: { workingSetBytes: size, writeRate: 1 } },
    };
    await a.startGuest(guest, id);
    await new Promise((r) => setTimeout(r, 300));
    const s0 = threads(src.pid);
    const d0 = threads(dst.pid);
    const s1: Times = new Map();
    const d1: Times = new Map();
    const sample = () => {
      for (const [k, v] of threads(src.pid)) s1.set(k, v);
      for (const [k, v] of threads(dst.pid)) d1.set(k, v);
    };
    const started = await a.migrate(id, dst.address, { maxBandwidth: 0 });
    const r = await a.follow(started.id, sample, 20);
    sample();
    const r1 = r.perRound[0]!;
    const perGiB = 1024 ** 3 / r1.bytes;
    console.log(
      `run ${i + 1}: round 1 ${(((r1.bytes / r1.durationMs) * 1000) / 2 ** 20).toFixed(0)} MiB/s, total ${r.totalTimeMs.toFixed(0)} ms, verified ${r.verified}`,
    );
    console.log(`  source      ${diff(s0, s1, perGiB)}`);
    console.log(`  destination ${diff(d0, d1, perGiB)}`);
    await b.stopGuest(id);
  }
} finally {
  await Promise.all([src.stop(), dst.stop()]);
}
