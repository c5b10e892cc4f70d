import { describe, expect, it } from 'vitest';
import { cpioNewc, S_IFREG } from './cpio.js';
import { parseGuestConsole, qemuUnfitReason, testVmArgs } from './testvm.js';

describe('parseGuestConsole', () => {
  it('reads sweeps, corrupt pages and failures from the serial log', () => {
    const c = parseGuestConsole(
      [
        '[    0.1] booting',
        'LIVEMIG init',
        'LIVEMIG ready mib=64 rate=2000 bytes=4096 pages=16384',
        'LIVEMIG sweep=1 dirtied=4000 corrupt=0 uptime_ms=1991',
        'LIVEMIG CORRUPT page=17 word=3',
        'LIVEMIG sweep=2 dirtied=8000 corrupt=1 uptime_ms=3991',
        'Kernel panic - not syncing: Attempted to kill init!',
      ].join('\r\n'),
    );
    expect(c.ready).toBe(true);
    expect(c.sweeps).toEqual([
      { sweep: 1, dirtied: 4000, corrupt: 0, uptimeMs: 1991 },
      { sweep: 2, dirtied: 8000, corrupt: 1, uptimeMs: 3991 },
    ]);
    expect(c.corruptPages).toEqual(['LIVEMIG CORRUPT page=17 word=3']);
    expect(c.failed).toMatch(/Kernel panic/);
  });
});

describe('qemuUnfitReason', () => {
  it('refuses a missing QEMU and the 7.x that corrupts guests, accepts 10', () => {
    expect(qemuUnfitReason(undefined)).toMatch(/not found/);
    expect(qemuUnfitReason({ path: 'q', version: { major: 7, minor: 2, micro: 0 } })).toMatch(/corrupts/);
    expect(qemuUnfitReason({ path: 'q', version: { major: 10, minor: 0, micro: 2 } })).toBeUndefined();
  });
});

describe('testVmArgs', () => {
  it('passes the workload on the kernel command line and adds -incoming only for a destination', () => {
    const image = { dir: '/c', kernel: '/c/vmlinux', kernelPackage: 'k', initrd: '/c/i.cpio' };
    const src = testVmArgs({
      image,
      mib: 32,
      rate: 500,
      bytes: 64,
      qmpPath: '/r/q.sock',
      consolePath: '/r/c.log',
    });
    expect(src[src.indexOf('-append') + 1]).toContain('lm_mib=32 lm_rate=500 lm_bytes=64');
    expect(src).toContain('unix:/r/q.sock,server=on,wait=off');
    expect(src).not.toContain('-incoming');
    const dst = testVmArgs({
      image,
      incoming: 'tcp:127.0.0.1:4444',
      qmpPath: '/r/q.sock',
      consolePath: '/r/c.log',
    });
    expect(dst.slice(-2)).toEqual(['-incoming', 'tcp:127.0.0.1:4444']);
    // Apart from -incoming, source and destination must be the same machine.
    expect(dst.slice(0, -2)).toEqual(testVmArgs({ image, qmpPath: '/r/q.sock', consolePath: '/r/c.log' }));
  });
});

describe('cpioNewc', () => {
  it('writes 4-byte aligned newc entries and the trailer', () => {
    const a = cpioNewc([{ name: 'init', mode: S_IFREG | 0o755, data: Buffer.from('abc') }]);
    expect(a.length % 4).toBe(0);
    expect(a.subarray(0, 6).toString()).toBe('070701');
    // file size field (7th) = 3, name size (12th) = 5 ("init\0")
    expect(a.subarray(6 + 6 * 8, 6 + 7 * 8).toString()).toBe('00000003');
    expect(a.subarray(6 + 11 * 8, 6 + 12 * 8).toString()).toBe('00000005');
    expect(a.subarray(116, 119).toString()).toBe('abc');
    expect(a.includes(Buffer.from('TRAILER!!!\0'))).toBe(true);
  });
});
