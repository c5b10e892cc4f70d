/**
 * The calling thread's kernel id (TID). On Linux /proc/thread-self links to "PID/task/TID": the main thread's TID is
 * the PID, a worker thread's its own, and setpriority or /proc/PID/task/TID name that thread alone. Null where there
 * is no such link (not Linux).
 */
import { readlinkSync } from 'node:fs';

export function kernelThreadId(): number | null {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isInteger(tid) && tid > 0 ? tid : null;
  } catch {
    return null;
  }
}
