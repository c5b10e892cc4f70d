/**
 * Parallel channels benchmark (`npm run bench:multifd`): two agents as separate processes on loopback migrate a guest
 * of non-zero pages without a bandwidth limit, with --multifd-channels 1, 2 and 4, plain and with zstd (QEMU's
 * multifd-zstd). For each: round 1's throughput (bytes on the wire per second) and the CPU the two agent processes
 * spent per MiB of guest RAM moved (utime + stime from /proc, whole migration: round 1 dominates, the guest barely
 * writes). Each configuration runs --repeat times (default 3), interleaved; the table gives medians and the load
 * average before and after.
 *
 * Each run also migrates a small guest (--small, 32 MiB) with the same settings: the CPU difference between the two
 * sizes is the marginal CPU per MiB, the rest the fixed cost of a migration (threads started, handshake, setup).
 *
 * Options: --ram <MiB> (default 256), --small <MiB> (32), --repeat <n> (default 3), --channels 1,2,4,
 * --compress none,zstd.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import Table from 'cli-table3';
import { AgentClient } from '../src/agent/index.js';
import { type ChildAgent, spawnAgent } from '../src/agent/spawn.js';
import type { GuestConfig } from '../src/guest/index.js';
import type { MigrationOptions } from '../src/migration/index.js';
import { formatBytes } from '../src/units.js';

process.env.LIVEMIG_CLI ??= fileURLToPath(new URL('../dist/cli/bin.js', import.meta.url));

const MiB = 1024 * 1024;
function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const ramMiB = Number(arg('--ram', '256'));
/** A second, small guest per run: the difference gives CPU per MiB without the per-migration fixed cost. */
const smallMiB = Number(arg('--small', '32'));
const repeat = Number(arg('--repeat', '3'));
const channelsList = arg('--channels', '1,2,4').split(',').map(Number);
const compressList = arg('--compress', 'none,zstd').split(',') as MigrationOptions['compress'][];

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ (100 here)
}

interface Sample {
  /** Guest RAM round 1 moved per second (its pages over its duration). */
  round1RamPerSec: number;
  /** Bytes round 1 put on the wire per second. */
  round1BytesPerSec: number;
  /** CPU seconds of the source and destination agent processes over the whole migration. */
  srcCpu: number;
  dstCpu: number;
}

async function once(
  src: ChildAgent,
  dst: ChildAgent,
  mib: number,
  options: Partial<MigrationOptions>,
  k: number,
): Promise<Sample> {
  const a = new AgentClient(src.address);
  const b = new AgentClient(dst.address);
  const ram = mib * MiB;
  const config: GuestConfig = {
    ramBytes: ram,
    seed: 5,
    workload: { name: 'gap', params: { workingSetBytes: ram, writeRate: 1 } },
  };
  const id = `mfd-${k}`;
  await a.startGuest(config, id);
  await new Promise((r) => setTimeout(r, 300));
  const s0 = cpuSeconds(src.pid);
  const d0 = cpuSeconds(dst.pid);
  const started = await a.migrate(id, dst.address, { maxBandwidth: 0, ...options });
  const report = await a.follow(started.id, undefined, 100);
  const s1 = cpuSeconds(src.pid);
  const d1 = cpuSeconds(dst.pid);
  await b.stopGuest(id).catch(() => a.stopGuest(id).catch(() => undefined));
  if (report.status !== 'completed' || !report.verified) {
    throw new Error(`migration ${report.status}: ${report.error?.code} ${report.error?.message}`);
  }
  const r1 = report.perRound[0]!;
  return {
    round1RamPerSec: (r1.pagesSent * 4096 * 1000) / r1.durationMs,
    round1BytesPerSec: (r1.bytes * 1000) / r1.durationMs,
    srcCpu: s1 - s0,
    dstCpu: d1 - d0,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function main(): Promise<void> {
  const load0 = loadavg();
  const [src, dst] = await Promise.all([
    spawnAgent('127.0.0.1', ['--quiet']),
    spawnAgent('127.0.0.1', ['--quiet']),
  ]);
  const configs = compressList.flatMap((compress) =>
    channelsList.map((channels) => ({ compress, channels })),
  );
  const samples = new Map<string, { big: Sample; small: Sample }[]>();
  let k = 0;
  try {
    // Interleaved: a change of the machine's load hits every configuration alike.
    for (let r = 0; r < repeat; r++) {
      for (const c of configs) {
        const key = `${c.compress}/${c.channels}`;
        process.stderr.write(`run ${r + 1}/${repeat}: ${key} channels...\n`);
        const o = { compress: c.compress, multifdChannels: c.channels };
        const big = await once(src, dst, ramMiB, o, k++);
        const small = await once(src, dst, smallMiB, o, k++);
        samples.set(key, [...(samples.get(key) ?? []), { big, small }]);
      }
    }
  } finally {
    await Promise.all([src.stop(), dst.stop()]);
  }
  const load1 = loadavg();
  const table = new Table({
    head: [
      'compress',
      'channels',
      'round 1: guest RAM/s (median)',
      'range',
      'wire/s',
      'CPU ms/MiB src + dst (whole migration)',
      'marginal CPU ms/MiB src + dst',
      'fixed CPU ms per migration src + dst',
    ],
  });
  for (const c of configs) {
    const ss = samples.get(`${c.compress}/${c.channels}`)!;
    const thr = ss.map((s) => s.big.round1RamPerSec);
    // The CPU of a migration = fixed (threads, handshake, setup) + marginal × MiB: from the two guest sizes.
    const marginal = (side: 'srcCpu' | 'dstCpu') =>
      median(ss.map((s) => ((s.big[side] - s.small[side]) * 1000) / (ramMiB - smallMiB)));
    const fixed = (side: 'srcCpu' | 'dstCpu') =>
      median(
        ss.map(
          (s) =>
            s.small[side] * 1000 - ((s.big[side] - s.small[side]) * 1000 * smallMiB) / (ramMiB - smallMiB),
        ),
      );
    const f1 = (x: number) => x.toFixed(1);
    table.push([
      c.compress,
      String(c.channels),
      `${formatBytes(median(thr))}/s`,
      `${formatBytes(Math.min(...thr))}–${formatBytes(Math.max(...thr))}/s`,
      `${formatBytes(median(ss.map((s) => s.big.round1BytesPerSec)))}/s`,
      `${median(ss.map((s) => (s.big.srcCpu * 1000) / ramMiB)).toFixed(2)} + ${median(ss.map((s) => (s.big.dstCpu * 1000) / ramMiB)).toFixed(2)}`,
      `${marginal('srcCpu').toFixed(2)} + ${marginal('dstCpu').toFixed(2)}`,
      `${f1(fixed('srcCpu'))} + ${f1(fixed('dstCpu'))}`,
    ]);
  }
  const fmt = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
  process.stdout.write(
    `${table.toString()}\n${ramMiB} MiB (and ${smallMiB} MiB) guests of non-zero pages, unlimited bandwidth, ${repeat} runs each, medians; ` +
      `load average before ${fmt(load0)}, after ${fmt(load1)}\n`,
  );
}

await main();
