/**
 * The floor under a switch-over's waits (issue 17, point 1), measured beside it by `bench:downtime`: two plain Node
 * processes on loopback TCP (no-delay) pass a 64-byte message back and forth four times — A→B, B→A, A→B, B→A, the
 * four one-way messages of a pre-copy switch-over after the digest (SWITCHOVER, READY, GO, RESUMED) — with nothing
 * else to do. Each sequence starts after both processes have slept in their event loops, as the agents have. What
 * a switch-over spends beyond this is its own work and its processes' other threads.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

// B: echoes every message at once. A: on "go" from stdin, runs one sequence of four messages and prints its ms.
const ECHO = `
const net = require('node:net');
const reply = Buffer.alloc(64, 2);
const srv = net.createServer((s) => { s.setNoDelay(true); s.on('data', () => s.write(reply)); });
srv.listen(0, '127.0.0.1', () => console.log(srv.address().port));
process.stdin.on('end', () => process.exit(0)); process.stdin.resume();`;
const CLIENT = `
const net = require('node:net');
const msg = Buffer.alloc(64, 1);
const s = net.connect(Number(process.argv[1]), '127.0.0.1', () => { s.setNoDelay(true); console.log('up'); });
let t0 = 0, got = 0;
s.on('data', () => {
  if (++got === 1) s.write(msg);
  else { const ms = performance.now() - t0; got = 0; console.log(ms.toFixed(4)); }
});
require('node:readline').createInterface({ input: process.stdin }).on('line', () => { t0 = performance.now(); s.write(msg); });
process.stdin.on('end', () => process.exit(0));`;

export interface HopFloor {
  /** One sequence of four one-way messages: its duration in ms. */
  sample(): Promise<number>;
  stop(): void;
}

function firstLine(child: ChildProcess): Promise<string> {
  const lines = createInterface({ input: child.stdout! });
  return new Promise((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`hop-floor process exited (${code})`)));
  });
}

export async function startHopFloor(): Promise<HopFloor> {
  const echo = spawn(process.execPath, ['-e', ECHO], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await firstLine(echo);
  const client = spawn(process.execPath, ['-e', CLIENT, port], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: client.stdout! });
  const waiting: ((ms: number) => void)[] = [];
  let up: () => void;
  const ready = new Promise<void>((r) => {
    up = r;
  });
  lines.on('line', (l) => {
    if (l === 'up') up();
    else waiting.shift()?.(Number(l));
  });
  await ready;
  return {
    async sample() {
      // Both sides asleep first, as the agents are before a switch-over.
      await new Promise((r) => setTimeout(r, 20));
      const done = new Promise<number>((r) => waiting.push(r));
      client.stdin!.write('go\n');
      return done;
    },
    stop() {
      client.stdin!.end();
      echo.stdin!.end();
    },
  };
}
