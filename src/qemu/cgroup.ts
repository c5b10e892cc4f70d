/**
 * CAP for a real QEMU: hold its vCPU threads to a percentage of one CPU through the cgroup CPU controller, the
 * Linux counterpart of the Xen credit scheduler's per-VM cap in the seed's power-capping experiment.
 *
 * - cgroup v1 (`<root>/cpu/cpu.cfs_quota_us` exists): a child group `<root>/cpu/livemig/<name>`; each vCPU thread id
 *   goes into its `tasks` file (v1 moves single threads), quota = percent × period / 100.
 * - cgroup v2 (`<root>/cgroup.controllers` lists `cpu`): a child group `<root>/livemig-<name>` with `cpu.max`
 *   "quota period". v2 moves whole processes (`cgroup.procs`) unless threaded mode is set up, so the cap covers all of
 *   QEMU's threads there, not only the vCPUs.
 * CAP 0 means uncapped (Xen semantics). `release()` moves the threads back to the root group and removes ours.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MigrationError } from '../errors.js';

export const CFS_PERIOD_US = 100_000;

export type CpuCgroup = { version: 'v1'; dir: string } | { version: 'v2'; dir: string };

/** The CPU controller's hierarchy under `root`, or undefined when neither v1 nor v2 offers it. */
export async function detectCpuCgroup(root = '/sys/fs/cgroup'): Promise<CpuCgroup | undefined> {
  if (existsSync(join(root, 'cpu', 'cpu.cfs_quota_us'))) return { version: 'v1', dir: join(root, 'cpu') };
  const controllers = await readFile(join(root, 'cgroup.controllers'), 'utf8').catch(() => '');
  if (controllers.split(/\s+/).includes('cpu')) return { version: 'v2', dir: root };
  return undefined;
}

export interface CpuCap {
  readonly version: 'v1' | 'v2';
  /** The group holding the capped threads. */
  readonly dir: string;
  /** Current CAP in percent of one CPU; 0 = uncapped. */
  readonly percent: number;
  set(percent: number): Promise<void>;
  /** `nr_throttled` and `throttled_time` (v1, ns) / `throttled_usec` (v2, converted to ns) from cpu.stat. */
  stat(): Promise<{ periods: number; throttled: number; throttledNs: number }>;
  release(): Promise<void>;
}

/**
 * Put `threadIds` (v1) or `pid` (v2) of one QEMU under a CAP. `name` keeps groups of different VMs apart.
 * Fails with RESOURCE_LIMIT when no CPU controller is usable (say which) or the kernel refuses a write.
 */
export async function capQemu(
  target: { pid: number; threadIds: number[] },
  percent: number,
  options: { name?: string; root?: string } = {},
): Promise<CpuCap> {
  const cg = await detectCpuCgroup(options.root);
  if (!cg)
    throw new MigrationError(
      'RESOURCE_LIMIT',
      `no cgroup CPU controller under ${options.root ?? '/sys/fs/cgroup'} (neither v1 cpu.cfs_quota_us nor v2 cpu.max): cannot CAP`,
    );
  const name = options.name ?? `qemu-${target.pid}`;
  const dir = cg.version === 'v1' ? join(cg.dir, 'livemig', name) : join(cg.dir, `livemig-${name}`);
  await mkdir(dir, { recursive: true }).catch((err: unknown) => fail(`mkdir ${dir}`, err));
  let current = 0;
  const write = (file: string, value: string) =>
    writeFile(join(dir, file), value).catch((err: unknown) =>
      fail(`write ${value.trim()} to ${join(dir, file)}`, err),
    );
  const cap: CpuCap = {
    version: cg.version,
    dir,
    get percent() {
      return current;
    },
    async set(p: number) {
      if (!Number.isFinite(p) || p < 0)
        throw new MigrationError('BAD_ARGUMENT', `CAP ${p}: expected a percent >= 0`);
      // Below 1 ms per period the kernel refuses the quota (EINVAL); 1% of 100 ms is the floor.
      const quota = p === 0 ? -1 : Math.max(1000, Math.round((p * CFS_PERIOD_US) / 100));
      if (cg.version === 'v1') {
        await write('cpu.cfs_period_us', String(CFS_PERIOD_US));
        await write('cpu.cfs_quota_us', String(quota));
      } else await write('cpu.max', `${quota < 0 ? 'max' : quota} ${CFS_PERIOD_US}`);
      current = p;
    },
    async stat() {
      const text = await readFile(join(dir, 'cpu.stat'), 'utf8').catch(() => '');
      const field = (k: string) => Number(new RegExp(`^${k} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
      return {
        periods: field('nr_periods'),
        throttled: field('nr_throttled'),
        throttledNs: cg.version === 'v1' ? field('throttled_time') : field('throttled_usec') * 1000,
      };
    },
    async release() {
      // Threads go back to the root group first: a group with members cannot be removed.
      if (cg.version === 'v1') {
        for (const tid of target.threadIds)
          await writeFile(join(cg.dir, 'tasks'), String(tid)).catch(() => undefined);
      } else await writeFile(join(cg.dir, 'cgroup.procs'), String(target.pid)).catch(() => undefined);
      await rmdir(dir).catch(() => undefined);
    },
  };
  await cap.set(percent);
  if (cg.version === 'v1') for (const tid of target.threadIds) await write('tasks', String(tid));
  else await write('cgroup.procs', String(target.pid));
  return cap;
}

function fail(what: string, err: unknown): never {
  throw new MigrationError(
    'RESOURCE_LIMIT',
    `cgroup: cannot ${what}: ${(err as Error).message}`,
    {},
    { cause: err },
  );
}
