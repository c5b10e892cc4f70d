import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { resolveOptions } from '../migration/options.js';
import { finishPower, startPower } from './power.js';
import { emptyQemuReport } from './report.js';

// A process standing in for QEMU: on "go" it starts a thread (as QEMU starts its migration thread after `migrate`)
// that burns CPU, reports its own CPU time from /proc and exits before the process is sampled again.
const CHILD = `
const { Worker } = require('node:worker_threads');
const { readFileSync } = require('node:fs');
process.stdin.once('data', () => {
  const w = new Worker(\`
    const { readFileSync } = require('node:fs');
    const { parentPort } = require('node:worker_threads');
    const end = Date.now() + 300;
    let x = 0;
    while (Date.now() < end) x += Math.sqrt(x + 1);
    parentPort.postMessage(Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6 + x * 0);
  \`, { eval: true });
  w.once('message', (ms) => w.once('exit', () => console.log(String(ms))));
});
console.log('ready');
`;

describe('QEMU source CPU (finishPower)', () => {
  it('counts a thread that started after metering began and exited before its end', async () => {
    const child = spawn(process.execPath, ['-e', CHILD], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const lines = createInterface({ input: child.stdout! });
      const next = () => once(lines, 'line').then(([l]) => String(l));
      expect(await next()).toBe('ready');
      const o = resolveOptions({}, undefined, 0);
      const power = startPower(child.pid!, [], o, null);
      expect(power).toBeDefined();
      child.stdin!.write('go\n');
      const threadMs = Number(await next());
      expect(threadMs).toBeGreaterThan(0);
      const r = emptyQemuReport({ options: o, source: 'test', destination: 'tcp:127.0.0.1:1' });
      finishPower(r, power!, o, undefined, undefined);
      const cpu = r.qemu.cpu.source!;
      // /proc/PID/stat counts in 10 ms ticks (utime and stime each truncated): allow 30 ms below the thread's own.
      expect(cpu.mainMs + cpu.otherMs).toBeGreaterThanOrEqual(threadMs - 30);
    } finally {
      child.kill();
    }
  });
});
