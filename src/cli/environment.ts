/**
 * Errors from the system rather than from livemig (a port in use, a permission refused, too many open files): one
 * line that says what was refused and what to do, never a stack trace.
 */

const HINTS: Record<string, string> = {
  EADDRINUSE:
    'the address is already in use: another agent or program listens there; pick another port ' +
    '(--listen HOST:PORT, port 0 = any free port) or stop that program',
  EADDRNOTAVAIL: 'this host has no such address; listen on one of its own addresses (e.g. 127.0.0.1)',
  EACCES: 'permission denied: ports below 1024 need privileges, files need read/write rights; choose another',
  EPERM: 'operation not permitted; check the rights of the user running livemig',
  ENOENT: 'no such file or directory; check the path',
  EISDIR: 'a directory was given where a file is needed',
  ENOTDIR: 'a file was given where a directory is needed',
  EMFILE: 'too many open files; raise the limit (ulimit -n) or run fewer things at once',
  ENFILE: 'the system is out of file descriptors; close some programs',
  ENOSPC: 'no space left on the device; free some space or write elsewhere',
  ENOMEM: 'out of memory; ask for less (smaller --ram, fewer guests)',
};

/** The one-line message for a system error (an errno `code` with a syscall), or undefined for anything else. */
export function environmentError(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (typeof e.code !== 'string' || typeof e.syscall !== 'string') return undefined;
  const where =
    e.address !== undefined
      ? ` ${e.address.includes(':') ? `[${e.address}]` : e.address}:${e.port ?? ''}`
      : '';
  const path = e.path !== undefined ? ` ${e.path}` : '';
  const hint = HINTS[e.code] ?? e.message;
  return `${e.syscall}${where}${path}: ${e.code}: ${hint}`;
}
