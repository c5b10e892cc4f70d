/**
 * Real CPU time from the OS (Linux procfs): per thread from /proc/PID/task/TID/stat, per process from
 * /proc/PID/stat. The power models turn CPU time into watts; this is where the CPU time comes from when we
 * measure a real process (the migration source, a vCPU worker thread) rather than model it.
 *
 * The stat line is `pid (comm) state ppid ... utime stime ...` (proc(5)); comm is the thread's name, up to 15
 * bytes, and may itself contain spaces and parentheses, so it is everything between the first "(" and the LAST
 * ")". utime and stime are fields 14 and 15, in clock ticks (USER_HZ).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { kernelThreadId } from '../thread-id.js';

export interface ThreadCpuTime {
  /**
   * The thread's name (comm). Node 20 names none of its threads, so every one reads "node": tell worker threads
   * apart by TID, which a worker learns with currentThreadId().
   */
  name: string;
  /** CPU time in user mode, ms. */
  utimeMs: number;
  /** CPU time in the kernel on the thread's behalf, ms. */
  stimeMs: number;
}

/** The fields of a stat line that we use. */
export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  utimeTicks: number;
  stimeTicks: number;
}

/** Parses one /proc/.../stat line; throws a TypeError naming the text if it is not one. */
export function parseProcStat(line: string): ProcStat {
  const open = line.indexOf('(');
  const close = line.lastIndexOf(')');
  if (open < 0 || close < open)
    throw new TypeError(`not a /proc stat line: ${JSON.stringify(line.slice(0, 80))}`);
  const pid = Number(line.slice(0, open).trim());
  // After ") ": field 3 (state) is rest[0], so field n is rest[n - 3].
  const rest = line
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const utimeTicks = Number(rest[14 - 3]);
  const stimeTicks = Number(rest[15 - 3]);
  if (
    !Number.isInteger(pid) ||
    !Number.isFinite(utimeTicks) ||
    !Number.isFinite(stimeTicks) ||
    rest.length < 13
  ) {
    throw new TypeError(`not a /proc stat line: ${JSON.stringify(line.slice(0, 80))}`);
  }
  return { pid, comm: line.slice(open + 1, close), state: rest[0]!, utimeTicks, stimeTicks };
}

let clockTicks: number | undefined;

/**
 * Clock ticks per second of the stat fields (USER_HZ), read once with `getconf CLK_TCK`. Node exposes no
 * sysconf(); USER_HZ is 100 on every mainstream Linux architecture, so 100 is the fallback when getconf is missing.
 */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 }).trim());
      clockTicks = Number.isInteger(n) && n > 0 ? n : 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

function ticksToMs(ticks: number): number {
  return (ticks * 1000) / clockTicksPerSecond();
}

/** Reads a procfs file, or undefined when the thread or process has gone (it may exit while we look). */
function readGone(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return undefined;
    throw e;
  }
}

/** CPU time of every live thread of a process, by thread id (TID; the main thread's TID is the PID). */
export function threadCpuTimes(pid: number = process.pid): Map<number, ThreadCpuTime> {
  const out = new Map<number, ThreadCpuTime>();
  const dir = `/proc/${pid}/task`;
  for (const entry of readdirSync(dir)) {
    const stat = readGone(`${dir}/${entry}/stat`);
    if (stat === undefined) continue;
    const s = parseProcStat(stat);
    // The comm file holds the same name without stat's parentheses to undo; stat's copy is the fallback.
    const comm = readGone(`${dir}/${entry}/comm`);
    out.set(s.pid, {
      name: comm === undefined ? s.comm : comm.replace(/\n$/, ''),
      utimeMs: ticksToMs(s.utimeTicks),
      stimeMs: ticksToMs(s.stimeTicks),
    });
  }
  return out;
}

/**
 * The OS thread id (TID) of the calling thread: the main thread's is the PID, a worker thread's is its own. A
 * vCPU worker reports it so that its CPU time can be found in threadCpuTimes().
 */
export function currentThreadId(): number {
  const tid = kernelThreadId();
  if (tid === null) throw new Error('no /proc/thread-self: thread ids need Linux');
  return tid;
}

/** User and system CPU time of a whole process (all its threads, including ones that have exited), ms. */
export function processCpuTimes(pid: number = process.pid): { utimeMs: number; stimeMs: number } {
  const s = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  return { utimeMs: ticksToMs(s.utimeTicks), stimeMs: ticksToMs(s.stimeTicks) };
}

/** Total CPU time (user + system) of a whole process, ms. */
export function processCpuTimeMs(pid: number = process.pid): number {
  const t = processCpuTimes(pid);
  return t.utimeMs + t.stimeMs;
}

/**
 * CPU time of one thread in ms from /proc/PID/task/TID/schedstat (nanoseconds on the CPU, the scheduler's own
 * count), falling back to the stat line's 10 ms ticks where schedstat is missing. Undefined when the thread is gone.
 * The meter samples every few hundred ms, where 10 ms ticks would be a 4 % error per sample.
 */
export function threadCpuMs(pid: number, tid: number): number | undefined {
  const sched = readGone(`/proc/${pid}/task/${tid}/schedstat`);
  if (sched !== undefined) {
    const ns = Number(sched.split(' ')[0]);
    if (Number.isFinite(ns)) return ns / 1e6;
  }
  const stat = readGone(`/proc/${pid}/task/${tid}/stat`);
  if (stat === undefined) return undefined;
  const s = parseProcStat(stat);
  return ticksToMs(s.utimeTicks + s.stimeTicks);
}

/** Thread ids of a live process (empty when it has gone). */
export function threadIds(pid: number = process.pid): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number).filter(Number.isInteger);
  } catch {
    return [];
  }
}
