import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import {
  clockTicksPerSecond,
  currentThreadId,
  parseProcStat,
  processCpuTimeMs,
  threadCpuTimes,
} from './cputime.js';

/** A stat line as the kernel writes it, with the given comm and utime/stime ticks (fields 14 and 15). */
function statLine(pid: number, comm: string, utime: number, stime: number): string {
  const after = [
    'S',
    '1',
    `${pid}`,
    '4801',
    '0',
    '-1',
    '4194304',
    '99',
    '0',
    '0',
    '0',
    `${utime}`,
    `${stime}`,
  ];
  after.push('0', '0', '20', '0', '7', '0', '119810', '3133440', '379', '18446744073709551615');
  return `${pid} (${comm}) ${after.join(' ')}\n`;
}

describe('parseProcStat', () => {
  it('reads pid, comm, state, utime and stime', () => {
    expect(parseProcStat(statLine(13999, 'cat', 12, 3))).toEqual({
      pid: 13999,
      comm: 'cat',
      state: 'S',
      utimeTicks: 12,
      stimeTicks: 3,
    });
  });

  it('takes comm up to the LAST parenthesis, whatever it contains', () => {
    for (const comm of ['(weird) name)', 'a b c', ') 1 2 3 (', '()', 'x) S 1 2 3 4', '']) {
      const s = parseProcStat(statLine(42, comm, 700, 25));
      expect(s.comm).toBe(comm);
      expect(s.utimeTicks).toBe(700);
      expect(s.stimeTicks).toBe(25);
      expect(s.state).toBe('S');
    }
  });

  it('parses this very process', () => {
    const s = parseProcStat(readFileSync(`/proc/${process.pid}/stat`, 'utf8'));
    expect(s.pid).toBe(process.pid);
  });

  it('rejects what is not a stat line', () => {
    expect(() => parseProcStat('')).toThrow(TypeError);
    expect(() => parseProcStat('12 (x) S 1 2')).toThrow(TypeError);
    expect(() => parseProcStat('12 x S 1 2 3 4 5 6 7 8 9 10 11 12 13 14')).toThrow(TypeError);
  });
});

/** Worker (plain JS, no loader needed): reports its thread id, spins on request until it has used `ms` of CPU. */
const SPINNER = `
const { parentPort } = require('node:worker_threads');
const { readFileSync, readlinkSync } = require('node:fs');
const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
const cpuMs = (hz) => {
  const line = readFileSync('/proc/thread-self/stat', 'utf8');
  const f = line.slice(line.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / hz;
};
parentPort.on('message', ({ spinMs, hz }) => {
  const deadline = Date.now() + 60000;
  let x = 0;
  while (cpuMs(hz) < spinMs && Date.now() < deadline) for (let i = 0; i < 1e6; i++) x = (x * 31 + i) | 0;
  parentPort.postMessage({ done: true, cpuMs: cpuMs(hz), x });
});
parentPort.postMessage({ tid });
`;

describe('threadCpuTimes / processCpuTimeMs', () => {
  it('sees the CPU time of a busy worker thread in its own thread entry', async () => {
    const hz = clockTicksPerSecond();
    expect(hz).toBeGreaterThan(0);
    const worker = new Worker(SPINNER, { eval: true });
    const next = () =>
      new Promise<{ tid?: number; cpuMs?: number }>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
    try {
      const { tid } = await next();
      expect(tid).toBeGreaterThan(0);
      expect(tid).not.toBe(process.pid);
      const before = threadCpuTimes().get(tid!);
      expect(before).toBeDefined();
      // Spin until the worker's own stat line shows 300 ms more than we saw (its start-up already used some).
      const target = before!.utimeMs + before!.stimeMs + 300;
      worker.postMessage({ spinMs: target, hz });
      const { cpuMs } = await next();
      expect(cpuMs).toBeGreaterThanOrEqual(target); // else the worker hit its 60 s wall-clock deadline
      const all = threadCpuTimes();
      const after = all.get(tid!)!;
      const spent = after.utimeMs + after.stimeMs - (before!.utimeMs + before!.stimeMs);
      expect(spent).toBeGreaterThanOrEqual(300);
      expect(after.utimeMs).toBeGreaterThan(after.stimeMs); // a pure computation is user time
      expect(after.name.length).toBeGreaterThan(0);
      // The main thread's TID is the PID; the process total covers every thread, live or gone.
      expect(all.has(process.pid)).toBe(true);
      let sum = 0;
      for (const t of all.values()) sum += t.utimeMs + t.stimeMs;
      expect(processCpuTimeMs()).toBeGreaterThanOrEqual(sum - (1000 / hz) * all.size);
      expect(processCpuTimeMs(process.pid)).toBeGreaterThanOrEqual(after.utimeMs + after.stimeMs);
    } finally {
      await worker.terminate();
    }
  });

  it("knows the calling thread's TID: the main thread's is the PID", () => {
    expect(currentThreadId()).toBe(process.pid);
    expect(threadCpuTimes().has(currentThreadId())).toBe(true);
  });

  it('fails loudly for a process that does not exist', () => {
    expect(() => threadCpuTimes(2 ** 30)).toThrow(/ENOENT/);
    expect(() => processCpuTimeMs(2 ** 30)).toThrow(/ENOENT/);
  });
});
