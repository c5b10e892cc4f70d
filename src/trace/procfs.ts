/**
 * What the recorder reads of another process through /proc: its mappings (`maps`), the page table view
 * (`pagemap`: present, swapped, soft-dirty bits), its memory (`mem`, pread per contiguous run) and the soft-dirty
 * reset (`clear_refs`). The root is a parameter so tests can stand up a fake /proc tree.
 *
 * Access errors become one-line MigrationErrors that name the pid and what to do.
 */
import { closeSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MigrationError } from '../errors.js';

/** A mapping the recorder follows: writable and private (heap, stack, anonymous, a library's data). */
export interface Mapping {
  start: number;
  end: number;
  perms: string;
  path: string;
}

/**
 * Pagemap bits (linux Documentation/admin-guide/mm/pagemap.rst), as bits of an entry's high 32-bit word: the
 * recorder tests them on a Uint32Array view, much faster than BigInt per page.
 */
export const PM_PRESENT = 1 << 31; // bit 63
export const PM_SWAPPED = 1 << 30; // bit 62
export const PM_SOFT_DIRTY = 1 << 23; // bit 55

const SKIP = new Set(['[vvar]', '[vdso]', '[vsyscall]', '[vvar_vclock]', '[uprobes]']);

/** Parses /proc/PID/maps and keeps the writable private mappings. */
export function parseMaps(text: string): Mapping[] {
  const out: Mapping[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const m = /^([0-9a-f]+)-([0-9a-f]+)\s+(\S{4})\s+\S+\s+\S+\s+\S+\s*(.*)$/.exec(line);
    if (!m) continue;
    const perms = m[3]!;
    const path = m[4]!.trim();
    // Shared mappings change under other processes too; vvar/vdso are the kernel's.
    if (perms[1] !== 'w' || perms[3] !== 'p' || SKIP.has(path)) continue;
    out.push({ start: Number.parseInt(m[1]!, 16), end: Number.parseInt(m[2]!, 16), perms, path });
  }
  return out;
}

function accessError(pid: number, what: string, err: unknown): MigrationError {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (code === 'ENOENT' || code === 'ESRCH') {
    return new MigrationError('PROCESS_NOT_FOUND', `process ${pid} does not exist (or has exited): ${what}`, {
      pid,
    });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new MigrationError(
      'PROCESS_ACCESS',
      `cannot read process ${pid}'s ${what} (${code}): run livemig as root or as the process's user, and allow ` +
        'ptrace access (cat /proc/sys/kernel/yama/ptrace_scope: 0, or 1 for your own children; ' +
        'sysctl -w kernel.yama.ptrace_scope=0 as root)',
      { pid },
    );
  }
  return new MigrationError('INTERNAL', `reading process ${pid}'s ${what}: ${String(err)}`, { pid });
}

/** Open handles on one process's /proc files. */
export class ProcessMemory {
  readonly pid: number;
  private readonly dir: string;
  private memFd: number;
  private pagemapFd: number;
  readonly pageSize: number;

  constructor(pid: number, opts: { procRoot?: string; pageSize?: number } = {}) {
    this.pid = pid;
    this.pageSize = opts.pageSize ?? 4096;
    this.dir = join(opts.procRoot ?? '/proc', String(pid));
    this.memFd = this.open('mem');
    try {
      this.pagemapFd = this.open('pagemap');
    } catch (err) {
      closeSync(this.memFd);
      throw err;
    }
  }

  /**
   * Opens mem and pagemap afresh. An open /proc/PID/mem is bound to the address space the process had when it was
   * opened, so after an exec (a shell wrapper exec-ing the real program) the old descriptors read nothing. The
   * recorder reopens at every snapshot; false when the process has gone.
   */
  reopen(): boolean {
    let mem: number;
    let pagemap: number;
    try {
      mem = this.open('mem');
      try {
        pagemap = this.open('pagemap');
      } catch (err) {
        closeSync(mem);
        throw err;
      }
    } catch (err) {
      if (err instanceof MigrationError && err.code === 'PROCESS_NOT_FOUND') return false;
      throw err;
    }
    this.close();
    this.memFd = mem;
    this.pagemapFd = pagemap;
    return true;
  }

  private open(name: string): number {
    try {
      return openSync(join(this.dir, name), 'r');
    } catch (err) {
      throw accessError(this.pid, name, err);
    }
  }

  /** The writable private mappings, or null when the process has gone. */
  maps(): Mapping[] | null {
    try {
      return parseMaps(readFileSync(join(this.dir, 'maps'), 'latin1'));
    } catch (err) {
      const e = accessError(this.pid, 'maps', err);
      if (e.code === 'PROCESS_NOT_FOUND') return null;
      throw e;
    }
  }

  /**
   * The pagemap entries of pages [firstPage, firstPage + count) as 32-bit words, entry i's high word at 2i + 1
   * (little-endian). Zeros (not present) for what cannot be read.
   */
  pagemap(firstPage: number, count: number): Uint32Array {
    const out = new Uint32Array(count * 2);
    const bytes = new Uint8Array(out.buffer);
    let got = 0;
    try {
      while (got < bytes.length) {
        const n = readSync(this.pagemapFd, bytes, got, bytes.length - got, firstPage * 8 + got);
        if (n <= 0) break;
        got += n;
      }
    } catch {
      // the process exited or unmapped the range meanwhile: not present
    }
    return out;
  }

  /** Reads `length` bytes at `address` into `into`; returns the bytes read (short when a page cannot be read). */
  read(address: number, into: Uint8Array, offset: number, length: number): number {
    let got = 0;
    while (got < length) {
      let n: number;
      try {
        n = readSync(this.memFd, into, offset + got, length - got, address + got);
      } catch {
        return got;
      }
      if (n <= 0) return got;
      got += n;
    }
    return got;
  }

  /** Resets the soft-dirty bits of every page (write 4 to clear_refs); false if the kernel or access refuses. */
  clearSoftDirty(): boolean {
    try {
      writeFileSync(join(this.dir, 'clear_refs'), '4');
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    for (const fd of [this.memFd, this.pagemapFd]) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
  }
}
