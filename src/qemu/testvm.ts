/**
 * The test VM: built from Debian packages alone (no download from anywhere else) and run under QEMU.
 *
 * - kernel: the package `linux-image-amd64` depends on, fetched with `apt-get download`; only `boot/vmlinuz-*` is
 *   unpacked (dpkg-deb | tar), and the uncompressed ELF vmlinux is cut out of the bzImage (xz stream), because QEMU
 *   boots an ELF by PVH in ~2.3 s instead of ~5.9 s for the bzImage under TCG.
 * - initramfs: busybox from `busybox-static` as /bin/busybox, an /init shell script, and the guest program.
 * - guest program: `guest-program.ts` built with `gcc -static`; it dirties memory at a set rate and checks it.
 * Everything lands in a cache directory and is rebuilt only when missing.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MigrationError } from '../errors.js';
import { cpioNewc, S_IFCHR, S_IFDIR, S_IFREG } from './cpio.js';
import { DIRTIER_C } from './guest-program.js';
import { QmpClient } from './qmp.js';

const run = promisify(execFile);

export interface QemuInfo {
  path: string;
  version: { major: number; minor: number; micro: number };
}

/** QEMU on PATH and its version, or undefined. */
export async function findQemu(binary = 'qemu-system-x86_64'): Promise<QemuInfo | undefined> {
  try {
    const { stdout } = await run(binary, ['--version']);
    const m = /version (\d+)\.(\d+)\.(\d+)/.exec(stdout);
    if (!m) return undefined;
    return { path: binary, version: { major: Number(m[1]), minor: Number(m[2]), micro: Number(m[3]) } };
  } catch {
    return undefined;
  }
}

/** Why this QEMU must not migrate guests, or undefined when it may (see docs/qemu.md: 7.2 corrupts guests). */
export function qemuUnfitReason(q: QemuInfo | undefined): string | undefined {
  if (!q)
    return 'qemu-system-x86_64 not found (install qemu-system-x86 from bookworm-backports, see docs/qemu.md)';
  if (q.version.major < 9)
    return `QEMU ${q.version.major}.${q.version.minor} corrupts guests on live migration under TCG; use QEMU >= 9 (bookworm-backports)`;
  return undefined;
}

export function defaultCacheDir(): string {
  const base =
    process.env.LIVEMIG_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'livemig');
  return join(base, 'qemu-testvm');
}

export interface TestVmImage {
  dir: string;
  /** Uncompressed ELF kernel (boots by PVH). */
  kernel: string;
  kernelPackage: string;
  initrd: string;
}

export interface BuildOptions {
  cacheDir?: string;
  log?: (line: string) => void;
}

/** Build (or find in the cache) the kernel and initramfs. Needs apt-get, dpkg-deb, tar, xz, gcc, busybox-static. */
export async function buildTestVm(options: BuildOptions = {}): Promise<TestVmImage> {
  const dir = options.cacheDir ?? defaultCacheDir();
  const log = options.log ?? (() => {});
  await mkdir(dir, { recursive: true });
  const { kernel, kernelPackage } = await fetchKernel(dir, log);
  const initrd = await buildInitramfs(dir, log);
  return { dir, kernel, kernelPackage, initrd };
}

async function fetchKernel(
  dir: string,
  log: (line: string) => void,
): Promise<{ kernel: string; kernelPackage: string }> {
  // The meta-package only depends on the versioned image package, which holds the kernel.
  const { stdout } = await tool('apt-cache', ['depends', 'linux-image-amd64']);
  const pkg = /Depends: (linux-image-[^\s]+)/.exec(stdout)?.[1];
  if (!pkg)
    throw new MigrationError(
      'RESOURCE_LIMIT',
      'cannot resolve linux-image-amd64 to a kernel package (apt-get update?)',
    );
  const kernel = join(dir, `vmlinux-${pkg.replace(/^linux-image-/, '')}`);
  if (existsSync(kernel)) return { kernel, kernelPackage: pkg };
  const work = await mkdtemp(join(tmpdir(), 'livemig-kernel-'));
  try {
    log(`apt-get download ${pkg}`);
    await tool('apt-get', ['download', '-q', pkg], { cwd: work });
    const deb = (await readdir(work)).find((f) => f.endsWith('.deb'));
    if (!deb) throw new MigrationError('RESOURCE_LIMIT', `apt-get download ${pkg} produced no .deb`);
    // Only boot/ is needed: unpacking the whole package (modules) would cost seconds and hundreds of MB.
    await tool('sh', [
      '-c',
      `dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards './boot/vmlinuz-*'`,
      'sh',
      join(work, deb),
      work,
    ]);
    const vmlinuz = (await readdir(join(work, 'boot'))).find((f) => f.startsWith('vmlinuz-'));
    if (!vmlinuz) throw new MigrationError('RESOURCE_LIMIT', `${pkg} holds no boot/vmlinuz-*`);
    const elf = await extractVmlinux(await readFile(join(work, 'boot', vmlinuz)));
    // A name of our own: two test files may build the same cache at once; the rename makes the result atomic.
    await writeFile(`${kernel}.${process.pid}.tmp`, elf);
    await tool('mv', [`${kernel}.${process.pid}.tmp`, kernel]);
    log(`kernel ${kernel} (${(elf.length / 2 ** 20).toFixed(1)} MiB ELF)`);
    return { kernel, kernelPackage: pkg };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Cut the ELF vmlinux out of a bzImage: the payload is an xz stream (Debian's kernels), decompressed by xz(1). */
export async function extractVmlinux(bzImage: Buffer): Promise<Buffer> {
  const xzMagic = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
  for (let at = bzImage.indexOf(xzMagic); at >= 0; at = bzImage.indexOf(xzMagic, at + 1)) {
    const out = await pipeThrough('xz', ['-dc', '--single-stream'], bzImage.subarray(at)).catch(
      () => undefined,
    );
    if (out && out.length > 4 && out.readUInt32BE(0) === 0x7f454c46) return out;
  }
  throw new MigrationError('RESOURCE_LIMIT', 'no xz-compressed ELF kernel found inside the bzImage');
}

async function buildInitramfs(dir: string, log: (line: string) => void): Promise<string> {
  const busybox = '/bin/busybox';
  const hash = createHash('sha256').update(DIRTIER_C).update(INIT).digest('hex').slice(0, 12);
  const initrd = join(dir, `initramfs-${hash}.cpio`);
  if (existsSync(initrd)) return initrd;
  const bb = await readFile(busybox).catch(() => undefined);
  if (!bb) throw new MigrationError('RESOURCE_LIMIT', 'no /bin/busybox: apt-get install busybox-static');
  // The Debian `busybox` package is dynamic; only busybox-static runs alone in an initramfs.
  const file = await tool('file', ['-L', busybox]).catch(() => undefined);
  if (file && /dynamically linked/.test(file.stdout))
    throw new MigrationError(
      'RESOURCE_LIMIT',
      '/bin/busybox is dynamically linked: apt-get install busybox-static',
    );
  const work = await mkdtemp(join(tmpdir(), 'livemig-guest-'));
  try {
    await writeFile(join(work, 'dirtier.c'), DIRTIER_C);
    log('gcc -static dirtier.c');
    await tool('gcc', ['-static', '-O2', '-o', join(work, 'dirtier'), join(work, 'dirtier.c')]);
    const program = await readFile(join(work, 'dirtier'));
    const d = (name: string) => ({ name, mode: S_IFDIR | 0o755 });
    const archive = cpioNewc([
      d('bin'),
      d('dev'),
      d('proc'),
      d('sys'),
      d('tmp'),
      // The kernel opens /dev/console for init before anything is mounted.
      { name: 'dev/console', mode: S_IFCHR | 0o600, rdev: { major: 5, minor: 1 } },
      { name: 'bin/busybox', mode: S_IFREG | 0o755, data: bb },
      { name: 'bin/sh', mode: S_IFREG | 0o755, data: bb },
      { name: 'bin/dirtier', mode: S_IFREG | 0o755, data: program },
      { name: 'init', mode: S_IFREG | 0o755, data: Buffer.from(INIT) },
    ]);
    await writeFile(`${initrd}.${process.pid}.tmp`, archive);
    await tool('mv', [`${initrd}.${process.pid}.tmp`, initrd]);
    log(`initramfs ${initrd} (${(archive.length / 2 ** 20).toFixed(1)} MiB)`);
    return initrd;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

// lm_* parameters on the kernel command line reach init (and the guest program) as environment variables.
const INIT = `#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
echo "LIVEMIG init"
exec /bin/dirtier
`;

export interface GuestWorkload {
  /** MiB the guest program dirties and checks. Default 64. */
  mib?: number;
  /** Pages written per second. Default 2000. */
  rate?: number;
  /** Bytes changed per write (1..4096). Default 4096. */
  bytes?: number;
  /** Pages of a hot set taking 90% of the writes; 0 (default) spreads writes uniformly. */
  hot?: number;
}

export interface StartOptions extends GuestWorkload {
  image: TestVmImage;
  /** Directory for the QMP socket and the console log; a fresh temporary one by default. */
  runDir?: string;
  /** Guest RAM in MiB. Default 256. */
  memMiB?: number;
  /** Start as a migration destination, e.g. `tcp:127.0.0.1:4444`. */
  incoming?: string;
  /** Let QEMU outlive this process (the CLI). */
  detached?: boolean;
  qemu?: string;
  accel?: 'tcg' | 'kvm';
}

export interface RunningTestVm {
  pid: number;
  qmpPath: string;
  consolePath: string;
  runDir: string;
  args: string[];
  process: ChildProcess;
  connect(timeoutMs?: number): Promise<QmpClient>;
  /** Kill QEMU and wait for it to exit; remove the run directory if startTestVm made it (and QEMU is not detached). */
  stop(): Promise<void>;
}

/** QEMU's command line for the test VM (source and destination must match, apart from -incoming). */
export function testVmArgs(o: StartOptions & { qmpPath: string; consolePath: string }): string[] {
  const append = [
    'console=ttyS0',
    'panic=-1',
    // Under TCG on a loaded host the kernel's check that the IO-APIC timer ticks can time out and panic the boot
    // ("IO-APIC + timer doesn't work!", seen at load 45): skip it, as virtual machines commonly do.
    'no_timer_check',
    'quiet',
    `lm_mib=${o.mib ?? 64}`,
    `lm_rate=${o.rate ?? 2000}`,
    `lm_bytes=${o.bytes ?? 4096}`,
    `lm_hot=${o.hot ?? 0}`,
  ].join(' ');
  const args = [
    '-nodefaults',
    '-display',
    'none',
    '-machine',
    'pc',
    '-accel',
    o.accel ?? 'tcg',
    '-m',
    String(o.memMiB ?? 256),
    '-smp',
    '1',
    '-kernel',
    o.image.kernel,
    '-initrd',
    o.image.initrd,
    '-append',
    append,
    '-serial',
    `file:${o.consolePath}`,
    '-qmp',
    `unix:${o.qmpPath},server=on,wait=off`,
    '-no-reboot',
  ];
  if (o.incoming) args.push('-incoming', o.incoming);
  return args;
}

export async function startTestVm(o: StartOptions): Promise<RunningTestVm> {
  const runDir = o.runDir ?? (await mkdtemp(join(tmpdir(), 'livemig-vm-')));
  // A run directory we made is ours to remove on stop(); a detached QEMU (the CLI's) keeps its socket and log.
  const ownRunDir = o.runDir === undefined && !o.detached;
  await mkdir(runDir, { recursive: true });
  const qmpPath = join(runDir, 'qmp.sock');
  const consolePath = join(runDir, 'console.log');
  await rm(qmpPath, { force: true });
  const args = testVmArgs({ ...o, qmpPath, consolePath });
  const child = spawn(o.qemu ?? 'qemu-system-x86_64', args, {
    stdio: ['ignore', 'ignore', o.detached ? 'ignore' : 'pipe'],
    detached: o.detached ?? false,
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    stderr = (stderr + s).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const spawned = await new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', (err) => resolve(err));
  });
  if (spawned || child.pid === undefined)
    throw new MigrationError('RESOURCE_LIMIT', `cannot start QEMU: ${spawned?.message ?? 'no pid'}`);
  if (o.detached) child.unref();
  const vm: RunningTestVm = {
    pid: child.pid,
    qmpPath,
    consolePath,
    runDir,
    args,
    process: child,
    connect: async (timeoutMs = 10_000) => {
      const failed = exited.then((code) => {
        throw new MigrationError(
          'PEER_CLOSED',
          `QEMU exited (code ${code}) before its QMP socket answered: ${stderr.trim()}`,
        );
      });
      return Promise.race([QmpClient.connect({ path: qmpPath }, { timeoutMs, retry: true }), failed]);
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      if (ownRunDir) await rm(runDir, { recursive: true, force: true });
    },
  };
  return vm;
}

/** One `LIVEMIG sweep=` line of the guest program. */
export interface GuestSweep {
  sweep: number;
  dirtied: number;
  corrupt: number;
  uptimeMs: number;
}

export interface GuestConsole {
  ready: boolean;
  sweeps: GuestSweep[];
  /** `LIVEMIG CORRUPT page=… word=…` lines. */
  corruptPages: string[];
  /** The kernel panicked or the program failed. */
  failed: string | undefined;
}

export function parseGuestConsole(text: string): GuestConsole {
  const sweeps: GuestSweep[] = [];
  const corruptPages: string[] = [];
  let failed: string | undefined;
  for (const line of text.split('\n')) {
    const m = /LIVEMIG sweep=(\d+) dirtied=(\d+) corrupt=(\d+) uptime_ms=(\d+)/.exec(line);
    if (m)
      sweeps.push({
        sweep: +(m[1] as string),
        dirtied: +(m[2] as string),
        corrupt: +(m[3] as string),
        uptimeMs: +(m[4] as string),
      });
    else if (line.includes('LIVEMIG CORRUPT')) corruptPages.push(line.trim());
    else if (/Kernel panic|LIVEMIG FAILED/.test(line)) failed ??= line.trim();
  }
  return { ready: text.includes('LIVEMIG ready'), sweeps, corruptPages, failed };
}

export async function readGuestConsole(path: string): Promise<GuestConsole> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return parseGuestConsole(text);
}

/** Poll the console log until `until` holds; MigrationError TIMEOUT otherwise, or as soon as the guest fails. */
export async function waitForConsole(
  path: string,
  until: (c: GuestConsole) => boolean,
  timeoutMs: number,
): Promise<GuestConsole> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = await readGuestConsole(path);
    if (until(c)) return c;
    if (c.failed) throw new MigrationError('INTERNAL', `guest failed: ${c.failed}`, { console: path });
    if (Date.now() > deadline)
      throw new MigrationError(
        'TIMEOUT',
        `guest console ${path} did not reach the expected state in ${timeoutMs} ms`,
      );
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function tool(
  cmd: string,
  args: string[],
  opts: { cwd?: string } = {},
): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(cmd, args, { cwd: opts.cwd, maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    const why = e.code === 'ENOENT' ? `${cmd} not found` : (e.stderr?.trim() || e.message).slice(0, 500);
    throw new MigrationError('RESOURCE_LIMIT', `${cmd} ${args.join(' ')}: ${why}`, {}, { cause: err });
  }
}

function pipeThrough(cmd: string, args: string[], input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'ignore'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.on('error', reject);
    child.stdin.on('error', () => {}); // xz stops reading after the stream's end; EPIPE is expected
    child.on('close', (code) =>
      code === 0
        ? resolve(Buffer.concat(out))
        : reject(new MigrationError('INTERNAL', `${cmd} exited ${code} while building the test VM`)),
    );
    child.stdin.end(input);
  });
}
