import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MigrationError } from '../errors.js';
import { TraceReader } from './format.js';
import { parseMaps } from './procfs.js';
import { Recorder } from './recorder.js';

const PS = 4096;
const root = mkdtempSync(join(tmpdir(), 'livemig-fakeproc-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A fake /proc/PID: maps text, a pagemap file and a sparse mem file, both indexed by address. */
class FakeProcess {
  readonly pid: number;
  readonly dir: string;
  maps: string[] = [];

  constructor(pid: number) {
    this.pid = pid;
    this.dir = join(root, String(pid));
    mkdirSync(this.dir);
    for (const f of ['mem', 'pagemap', 'clear_refs']) writeFileSync(join(this.dir, f), '');
    this.sync();
  }

  sync(): void {
    writeFileSync(join(this.dir, 'maps'), `${this.maps.join('\n')}\n`);
  }

  /** Writes a page's content and its pagemap entry (present, soft-dirty as told). */
  page(addr: number, fill: number | null, softDirty: boolean): void {
    const fd = openSync(join(this.dir, 'mem'), 'r+');
    const data = Buffer.alloc(PS, fill ?? 0);
    if (fill) data.write(`page at ${addr.toString(16)} = ${fill}`, 0);
    writeSync(fd, data, 0, PS, addr);
    closeSync(fd);
    const e = Buffer.alloc(8);
    if (fill !== null) e.writeUInt32LE(((1 << 31) | (softDirty ? 1 << 23 : 0)) >>> 0, 4);
    const pm = openSync(join(this.dir, 'pagemap'), 'r+');
    writeSync(pm, e, 0, 8, (addr / PS) * 8);
    closeSync(pm);
  }

  /** What clear_refs does on a real kernel: every soft-dirty bit off. */
  clearBits(addrs: number[]): void {
    const pm = openSync(join(this.dir, 'pagemap'), 'r+');
    for (const a of addrs) {
      const e = Buffer.alloc(8);
      e.writeUInt32LE(2 ** 31, 4);
      writeSync(pm, e, 0, 8, (a / PS) * 8);
    }
    closeSync(pm);
  }
}

const A = 0x10000;
const B = 0x40000;

/** The flat page space after every record, replayed from the trace. */
function replay(trace: Uint8Array): Map<number, Buffer>[] {
  const r = TraceReader.open(trace);
  const cur = new Map<number, Buffer>();
  const out: Map<number, Buffer>[] = [];
  for (let i = 0; i < r.records.length; i++) {
    r.forEachPage(i, (p, d) => {
      const old = cur.get(p) ?? Buffer.alloc(PS);
      const next = Buffer.alloc(PS);
      for (let b = 0; b < PS; b++) next[b] = old[b]! ^ d[b]!;
      cur.set(p, next);
    });
    out.push(new Map([...cur].map(([k, v]) => [k, Buffer.from(v)])));
  }
  return out;
}

function fill(buf: Buffer | undefined): number {
  return buf ? buf[PS - 1]! : 0;
}

describe('recorder on a fake /proc', () => {
  it('parses maps: writable private mappings only, no vvar/vdso, no shared or read-only ones', () => {
    const maps = parseMaps(
      [
        '55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                          [heap]',
        '7f0000000000-7f0000001000 r--p 00000000 08:01 123                        /usr/lib/libc.so.6',
        '7f0000001000-7f0000002000 rw-p 00001000 08:01 123                        /usr/lib/libc.so.6',
        '7f0000002000-7f0000004000 rw-s 00000000 00:01 5                          /dev/zero (deleted)',
        '7f0000004000-7f0000008000 rw-p 00000000 00:00 0 ',
        '7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]',
        '7ffd00100000-7ffd00104000 r--p 00000000 00:00 0                          [vvar]',
        '7ffd00104000-7ffd00106000 r-xp 00000000 00:00 0                          [vdso]',
      ].join('\n'),
    );
    expect(maps.map((m) => m.path)).toEqual(['[heap]', '/usr/lib/libc.so.6', '', '[stack]']);
    expect(maps[0]).toMatchObject({ start: 0x55d0c0a00000, end: 0x55d0c0a21000 });
  });

  it('uses soft-dirty where the kernel has it, reads only flagged pages, and maps growing/vanishing mappings', () => {
    const p = new FakeProcess(1001);
    p.maps = [`${A.toString(16)}-${(A + 4 * PS).toString(16)} rw-p 00000000 00:00 0`];
    p.sync();
    p.page(A, 1, true);
    p.page(A + PS, 2, true);
    p.page(A + 2 * PS, 0, true); // present but zero: no guest page
    p.page(A + 3 * PS, 4, true);
    const rec = new Recorder({
      pid: p.pid,
      intervalMs: 10,
      procRoot: root,
      meta: { program: 'fake', command: [] },
    });
    expect(rec.method).toBe('soft-dirty');
    expect(rec.snapshot(0)).toMatchObject({ dirtyPages: 3, pagesInUse: 3 });
    p.clearBits([A, A + PS, A + 2 * PS, A + 3 * PS]);
    // Interval 1 (soft-dirty is verified by a full comparison): page A+PS written.
    p.page(A + PS, 22, true);
    expect(rec.snapshot(10)).toMatchObject({ dirtyPages: 1, pagesRead: 4 });
    expect(rec.method).toBe('soft-dirty');
    p.clearBits([A + PS]);
    // Interval 2: only flagged pages are read. The zero page gets data (a new guest page); a heap appears.
    p.page(A + 2 * PS, 33, true);
    p.maps.push(`${B.toString(16)}-${(B + 2 * PS).toString(16)} rw-p 00000000 00:00 0  [heap]`);
    p.sync();
    p.page(B, 50, true);
    expect(rec.snapshot(20)).toMatchObject({ dirtyPages: 2, pagesRead: 2, pagesInUse: 5 });
    p.clearBits([A + 2 * PS, B]);
    // Interval 3: the first mapping goes away: its pages are recorded as zeroed and their guest pages freed.
    p.maps = [p.maps[1]!];
    p.sync();
    expect(rec.snapshot(30)).toMatchObject({ dirtyPages: 4, pagesRead: 0, pagesInUse: 1 });
    // Interval 4: the heap grows; its new page takes the lowest free guest page.
    p.maps = [`${B.toString(16)}-${(B + 3 * PS).toString(16)} rw-p 00000000 00:00 0  [heap]`];
    p.sync();
    p.page(B + 2 * PS, 60, true);
    expect(rec.snapshot(40)).toMatchObject({ dirtyPages: 1, pagesRead: 1, pagesInUse: 2 });
    const sum = rec.finish();
    expect(sum).toMatchObject({ method: 'soft-dirty', records: 5, pageCount: 5 });
    const states = replay(sum.trace!);
    // guest pages: 0 = A, 1 = A+PS, 2 = A+3PS, 3 = A+2PS (appeared later), 4 = B
    expect([0, 1, 2].map((g) => fill(states[0]!.get(g)))).toEqual([1, 2, 4]);
    expect(fill(states[1]!.get(1))).toBe(22);
    expect([3, 4].map((g) => fill(states[2]!.get(g)))).toEqual([33, 50]);
    expect([0, 1, 2, 3, 4].map((g) => fill(states[3]!.get(g)))).toEqual([0, 0, 0, 0, 50]);
    expect([0, 1, 2, 3, 4].map((g) => fill(states[4]!.get(g)))).toEqual([60, 0, 0, 0, 50]);
    expect(TraceReader.open(sum.trace!).header.method).toBe('soft-dirty');
  });

  it('falls back to page-compare when a page changes without its soft-dirty bit, and says so', () => {
    const p = new FakeProcess(1002);
    p.maps = [`${A.toString(16)}-${(A + 2 * PS).toString(16)} rw-p 00000000 00:00 0`];
    p.sync();
    p.page(A, 1, true);
    p.page(A + PS, 2, true);
    const rec = new Recorder({
      pid: p.pid,
      intervalMs: 10,
      procRoot: root,
      meta: { program: 'fake', command: [] },
    });
    expect(rec.method).toBe('soft-dirty');
    rec.snapshot(0);
    p.clearBits([A, A + PS]);
    p.page(A, 9, false); // written, but the "kernel" did not flag it
    expect(rec.snapshot(10)).toMatchObject({ dirtyPages: 1 });
    expect(rec.method).toBe('page-compare');
    p.page(A + PS, 7, false);
    expect(rec.snapshot(20)).toMatchObject({ dirtyPages: 1 });
    const sum = rec.finish();
    const h = TraceReader.open(sum.trace!).header;
    expect(h.method).toBe('page-compare');
    expect(String(h.meta.methodReason)).toMatch(/without the soft-dirty bit/);
  });

  it('uses page-compare when no page shows the soft-dirty bit; refuses a forced soft-dirty', () => {
    const p = new FakeProcess(1003);
    p.maps = [`${A.toString(16)}-${(A + PS).toString(16)} rw-p 00000000 00:00 0`];
    p.sync();
    p.page(A, 1, false);
    const opts = { pid: p.pid, intervalMs: 10, procRoot: root, meta: { program: 'fake', command: [] } };
    const rec = new Recorder(opts);
    expect(rec.method).toBe('page-compare');
    expect(rec.methodReason).toMatch(/CONFIG_MEM_SOFT_DIRTY/);
    rec.abort();
    expect(() => new Recorder({ ...opts, method: 'soft-dirty' })).toThrow(
      /soft-dirty tracking is not available/,
    );
  });

  it('names the pid and what to do when the process does not exist', () => {
    expect.assertions(3);
    try {
      new Recorder({ pid: 999999, intervalMs: 10, procRoot: root, meta: { program: 'x', command: [] } });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(MigrationError);
      expect((err as MigrationError).code).toBe('PROCESS_NOT_FOUND');
      expect((err as MigrationError).message).toMatch(/process 999999/);
    }
  });
});

describe('recorder on a real process (this machine: page-compare)', () => {
  it('follows the process across an exec (a wrapper shell replaced by the real program)', async () => {
    const child = spawn(
      'sh',
      [
        '-c',
        `sleep 0.3; exec ${JSON.stringify(process.execPath)} -e "const b = Buffer.alloc(64 * 4096, 0x42); process.stdout.write('ready\\n'); setInterval(() => b[0]++, 50)"`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      const rec = new Recorder({
        pid: child.pid!,
        intervalMs: 100,
        meta: { program: 'sh', command: ['sh'] },
      });
      expect(rec.snapshot(0)).not.toBeNull(); // the shell
      await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
      const after = rec.snapshot(400)!;
      // The shell's pages are gone and node's are read through freshly opened /proc files.
      expect(after.dirtyPages).toBeGreaterThan(64);
      const r = TraceReader.open(rec.finish().trace!);
      let markers = 0;
      r.forEachPage(1, (_p, d) => {
        if (d[100] === 0x42 && d[PS - 1] === 0x42) markers++;
      });
      expect(markers).toBeGreaterThanOrEqual(60);
    } finally {
      child.kill();
    }
  });

  it('records a child that writes a known page pattern', async () => {
    // The child fills 64 pages with a marker, then bumps one byte in page k of 64 every 20 ms.
    const child = spawn(
      process.execPath,
      [
        '-e',
        `const b = Buffer.alloc(64 * 4096, 0x41); let i = 0;
         process.stdout.write('ready\\n');
         setInterval(() => { b[(i % 64) * 4096 + 100] = (b[(i % 64) * 4096 + 100] + 1) & 0xff; i++; }, 20);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
      const rec = new Recorder({
        pid: child.pid!,
        intervalMs: 100,
        meta: { program: 'node', command: ['node'] },
      });
      const first = rec.snapshot(0)!;
      expect(first.dirtyPages).toBeGreaterThan(64);
      await new Promise((r) => setTimeout(r, 250));
      const second = rec.snapshot(250)!;
      expect(second.dirtyPages).toBeGreaterThan(0);
      const sum = rec.finish();
      const r = TraceReader.open(sum.trace!);
      expect(r.records.length).toBe(2);
      // The marker pages are in the snapshot: at least the 63 whole pages of the (unaligned) 64-page buffer.
      let markers = 0;
      r.forEachPage(0, (_p, d) => {
        let a = 0;
        for (let i = 0; i < PS; i += 64) if (d[i] === 0x41) a++;
        if (a === PS / 64) markers++;
      });
      expect(markers).toBeGreaterThanOrEqual(63);
    } finally {
      child.kill();
    }
  });
});
