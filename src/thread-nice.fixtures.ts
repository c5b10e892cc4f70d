/** For tests of the switch-over's priority: a thread's nice value as the kernel has it, and whether it may be raised. */
import { readFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** The kernel's nice value of thread `tid` of this process (field 19 of its stat line). */
export function kernelNice(tid: number): number {
  const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

/** Whether this process may raise a thread's priority (root, CAP_SYS_NICE, RLIMIT_NICE). */
export function mayRaise(tid: number): boolean {
  const before = getPriority(tid);
  try {
    setPriority(tid, before - 1);
    setPriority(tid, before);
    return true;
  } catch {
    return false;
  }
}
