import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MigrationError } from '../errors.js';
import { capQemu, detectCpuCgroup } from './cgroup.js';

/** A fake cgroup tree: plain files where the kernel has control files. */
function fakeTree(version: 'v1' | 'v2' | 'none'): string {
  const root = mkdtempSync(join(tmpdir(), 'cgroup-'));
  if (version === 'v1') {
    mkdirSync(join(root, 'cpu'));
    writeFileSync(join(root, 'cpu', 'cpu.cfs_quota_us'), '-1\n');
    writeFileSync(join(root, 'cpu', 'tasks'), '');
  } else if (version === 'v2') writeFileSync(join(root, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
  return root;
}

describe('detectCpuCgroup', () => {
  it('finds v1 by cpu.cfs_quota_us, v2 by cgroup.controllers, and nothing otherwise', async () => {
    expect((await detectCpuCgroup(fakeTree('v1')))?.version).toBe('v1');
    expect((await detectCpuCgroup(fakeTree('v2')))?.version).toBe('v2');
    expect(await detectCpuCgroup(fakeTree('none'))).toBeUndefined();
  });
});

describe('capQemu', () => {
  it('v1: a group per VM, vCPU threads in tasks, quota from the percent, 0 = uncapped, stats read', async () => {
    const root = fakeTree('v1');
    const cap = await capQemu({ pid: 100, threadIds: [101] }, 15, { root });
    const dir = join(root, 'cpu', 'livemig', 'qemu-100');
    expect(cap.dir).toBe(dir);
    expect(readFileSync(join(dir, 'cpu.cfs_period_us'), 'utf8')).toBe('100000');
    expect(readFileSync(join(dir, 'cpu.cfs_quota_us'), 'utf8')).toBe('15000');
    expect(readFileSync(join(dir, 'tasks'), 'utf8')).toBe('101');
    await cap.set(0);
    expect(readFileSync(join(dir, 'cpu.cfs_quota_us'), 'utf8')).toBe('-1');
    await cap.set(0.1); // below the kernel's 1 ms floor
    expect(readFileSync(join(dir, 'cpu.cfs_quota_us'), 'utf8')).toBe('1000');
    writeFileSync(join(dir, 'cpu.stat'), 'nr_periods 50\nnr_throttled 40\nthrottled_time 2000000000\n');
    expect(await cap.stat()).toEqual({ periods: 50, throttled: 40, throttledNs: 2e9 });
    await cap.release();
    expect(readFileSync(join(root, 'cpu', 'tasks'), 'utf8')).toBe('101');
  });

  it('v2: cpu.max "quota period" or "max", the process in cgroup.procs', async () => {
    const root = fakeTree('v2');
    const cap = await capQemu({ pid: 200, threadIds: [201] }, 50, { root, name: 'vm1' });
    const dir = join(root, 'livemig-vm1');
    expect(readFileSync(join(dir, 'cpu.max'), 'utf8')).toBe('50000 100000');
    expect(readFileSync(join(dir, 'cgroup.procs'), 'utf8')).toBe('200');
    await cap.set(0);
    expect(readFileSync(join(dir, 'cpu.max'), 'utf8')).toBe('max 100000');
    writeFileSync(join(dir, 'cpu.stat'), 'usage_usec 9\nnr_periods 5\nnr_throttled 3\nthrottled_usec 7\n');
    expect(await cap.stat()).toEqual({ periods: 5, throttled: 3, throttledNs: 7000 });
  });

  it('fails with RESOURCE_LIMIT naming both versions when there is no CPU controller', async () => {
    const err = await capQemu({ pid: 1, threadIds: [1] }, 10, { root: fakeTree('none') }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as MigrationError).code).toBe('RESOURCE_LIMIT');
    expect((err as MigrationError).message).toMatch(/v1 .*v2/);
  });

  it('rejects a negative CAP', async () => {
    const cap = await capQemu({ pid: 1, threadIds: [1] }, 10, { root: fakeTree('v1') });
    await expect(cap.set(-5)).rejects.toBeInstanceOf(MigrationError);
  });
});
