/**
 * How faithful the fault proxy is (`node --import tsx bench/proxy.bench.ts`): relay throughput on loopback with
 * no faults, round-trip time against the set delay, throughput against the set rate, and loss events against the
 * model's expectation. Prints a table and writes results/proxy.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import Table from 'cli-table3';
import { FaultProxy, type LinkFaults } from '../src/faults/index.js';

const MiB = 1024 * 1024;

/** A sink that counts bytes and echoes one-byte pings. */
async function sink(): Promise<{ address: string; received: () => number; close: () => void }> {
  let n = 0;
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    s.on('data', (b: Buffer) => {
      n += b.length;
      if (b.length === 1) s.write(b);
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    address: `127.0.0.1:${port}`,
    received: () => n,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

async function dial(address: string): Promise<Socket> {
  const [host, port] = address.split(':');
  const s = connect({ host: host!, port: Number(port) });
  await new Promise<void>((r) => s.once('connect', () => r()));
  s.setNoDelay(true);
  return s;
}

async function transfer(faults: Partial<LinkFaults>, bytes: number) {
  const k = await sink();
  const p = await FaultProxy.start({ target: k.address, faults, seed: 5 });
  const c = await dial(p.address);
  const chunk = Buffer.alloc(64 * 1024, 7);
  const t = performance.now();
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    if (!c.write(chunk)) await new Promise((r) => c.once('drain', r));
  }
  while (k.received() < bytes) await new Promise((r) => setTimeout(r, 1));
  const ms = performance.now() - t;
  const stats = { ...p.stats };
  c.destroy();
  await p.close();
  k.close();
  return { ms, mibps: bytes / MiB / (ms / 1000), stats };
}

async function rtt(faults: Partial<LinkFaults>, n: number): Promise<number[]> {
  const k = await sink();
  const p = await FaultProxy.start({ target: k.address, faults, seed: 5 });
  const c = await dial(p.address);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    c.write('x');
    await new Promise((r) => c.once('data', r));
    out.push(performance.now() - t);
  }
  c.destroy();
  await p.close();
  k.close();
  return out.sort((a, b) => a - b);
}

const rows: Record<string, string | number>[] = [];
const direct = await (async () => {
  const k = await sink();
  const c = await dial(k.address);
  const chunk = Buffer.alloc(64 * 1024, 7);
  const bytes = 512 * MiB;
  const t = performance.now();
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    if (!c.write(chunk)) await new Promise((r) => c.once('drain', r));
  }
  while (k.received() < bytes) await new Promise((r) => setTimeout(r, 1));
  c.destroy();
  k.close();
  return bytes / MiB / ((performance.now() - t) / 1000);
})();
rows.push({ case: 'loopback, no proxy (512 MiB)', set: '-', measured: `${direct.toFixed(0)} MiB/s` });
const clean = await transfer({}, 512 * MiB);
rows.push({
  case: 'through the proxy, no faults (512 MiB)',
  set: '-',
  measured: `${clean.mibps.toFixed(0)} MiB/s`,
});
const rate = await transfer({ rateBytesPerSec: 64 * MiB }, 128 * MiB);
rows.push({ case: 'throttle (128 MiB)', set: '64 MiB/s', measured: `${rate.mibps.toFixed(1)} MiB/s` });
for (const d of [5, 20]) {
  const r = await rtt({ delayMs: d }, 50);
  rows.push({
    case: `round trip, delay ${d} ms each way (50 pings)`,
    set: `${2 * d} ms`,
    measured: `median ${r[25]!.toFixed(1)} ms, max ${r[49]!.toFixed(1)} ms`,
  });
}
const jit = await rtt({ delayMs: 10, jitterMs: 5 }, 50);
rows.push({
  case: 'round trip, delay 10 ± 5 ms each way',
  set: '10–30 ms',
  measured: `min ${jit[0]!.toFixed(1)}, median ${jit[25]!.toFixed(1)}, max ${jit[49]!.toFixed(1)} ms`,
});
const loss = await transfer({ loss: 0.001, rtoMs: 20 }, 64 * MiB);
rows.push({
  case: 'loss 0.1 % of segments, RTO 20 ms (64 MiB)',
  set: `P(chunk held) = 1 − 0.999^⌈bytes/1448⌉`,
  measured: `${loss.stats.retransmitStalls} stalls, ${loss.mibps.toFixed(0)} MiB/s`,
});

const t = new Table({ head: ['case', 'set', 'measured'] });
for (const r of rows) t.push([r.case, r.set, r.measured] as string[]);
process.stdout.write(`${t.toString()}\n`);
mkdirSync('results', { recursive: true });
writeFileSync('results/proxy.json', `${JSON.stringify({ date: new Date().toISOString(), rows }, null, 2)}\n`);
process.stdout.write('wrote results/proxy.json\n');
