/**
 * The small measuring tools: `node --import tsx bench/probes.bench.ts`.
 *
 * - Token bucket accuracy on the real clock: about 2 s worth of 256 KiB frames through consume() at three limits;
 *   the achieved rate against the limit.
 * - Cost of reading CPU time from /proc: threadCpuTimes() and processCpuTimeMs(), 1000 calls each.
 *
 * Writes results/bench-probes.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import Table from 'cli-table3';
import { TokenBucket } from '../src/migration/ratelimit.js';
import { processCpuTimeMs, threadCpuTimes } from '../src/power/cputime.js';

const FRAME = 256 * 1024;
const limits = [
  { limit: '100Mbit', bytesPerSecond: 12_500_000 },
  { limit: '32MiB/s', bytesPerSecond: 32 * 2 ** 20 },
  { limit: '1GiB/s', bytesPerSecond: 2 ** 30 },
];

async function main(): Promise<void> {
  const rate: { limit: string; bytesPerSecond: number; seconds: number; achievedRatio: number }[] = [];
  for (const { limit, bytesPerSecond } of limits) {
    const bucket = new TokenBucket(bytesPerSecond);
    const total = bytesPerSecond * 2;
    const t0 = performance.now();
    let sent = 0;
    while (sent < total) {
      await bucket.consume(FRAME);
      sent += FRAME;
    }
    const seconds = (performance.now() - t0) / 1000;
    rate.push({ limit, bytesPerSecond, seconds, achievedRatio: sent / seconds / bytesPerSecond });
  }
  const t1 = new Table({ head: ['limit', 'frames', 'seconds', 'achieved / limit'] });
  for (const r of rate)
    t1.push([r.limit, '256 KiB', r.seconds.toFixed(2), `${(r.achievedRatio * 100).toFixed(1)}%`]);
  console.log('Token bucket on the real clock (first burst included)');
  console.log(t1.toString());

  threadCpuTimes(); // warm up
  let t0 = performance.now();
  let threads = 0;
  for (let i = 0; i < 1000; i++) threads = threadCpuTimes().size;
  const threadCpuTimesUs = performance.now() - t0; // ms for 1000 calls = µs per call
  t0 = performance.now();
  for (let i = 0; i < 1000; i++) processCpuTimeMs();
  const processCpuTimeUs = performance.now() - t0;
  const t2 = new Table({ head: ['call', 'µs per call'] });
  t2.push(
    [`threadCpuTimes() (${threads} threads)`, threadCpuTimesUs.toFixed(0)],
    ['processCpuTimeMs()', processCpuTimeUs.toFixed(0)],
  );
  console.log('\nReading CPU time from /proc');
  console.log(t2.toString());

  mkdirSync('results', { recursive: true });
  const result = {
    bench: 'probes',
    command: 'node --import tsx bench/probes.bench.ts',
    date: new Date().toISOString(),
    node: process.version,
    cores: os.cpus().length,
    loadAverage: os.loadavg(),
    tokenBucket: rate,
    cpuTime: { threads, threadCpuTimesUs, processCpuTimeUs },
  };
  writeFileSync('results/bench-probes.json', `${JSON.stringify(result, null, 2)}\n`);
  console.log(
    `load average ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}; wrote results/bench-probes.json`,
  );
}

await main();
