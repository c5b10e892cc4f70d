/**
 * `livemig qemu`: the QEMU bridge.
 *   livemig qemu testvm   build the test VM from Debian packages and start it under QEMU (source or -incoming)
 *   livemig qemu migrate  migrate a running QEMU guest to a QEMU started with -incoming, over QMP
 *   livemig qemu snapshot / restore  a guest to a file and back (qemu-snapshot.ts)
 */
import Table from 'cli-table3';
import type { Command } from 'commander';
import { MigrationError, UsageError } from '../errors.js';
import {
  buildTestVm,
  findQemu,
  migrateQemu,
  parseQmpAddress,
  type QemuMigrationReport,
  QmpClient,
  QmpClosedError,
  QmpError,
  QmpProtocolError,
  QmpTimeoutError,
  qemuUnfitReason,
  startTestVm,
  waitForConsole,
  waitRunning,
} from '../qemu/index.js';
import { formatBytes, formatMs } from '../units.js';
import { addMigrationFlags, type MigrationFlagValues, migrationOptionsFromFlags } from './flags.js';
import { MigrationProgress, reportTable } from './format.js';
import { registerQemuSnapshot } from './qemu-snapshot.js';
import { intFlag, sizeFlag } from './values.js';

interface TestVmFlags {
  cache?: string;
  buildOnly?: boolean;
  mem: string;
  guestMem: string;
  rate: string;
  bytesPerWrite: string;
  hot: string;
  incoming?: string;
  runDir?: string;
  json?: boolean;
}

/** The flags `qemu migrate` adds to livemig's migration flags (flags.ts). */
interface MigrateFlags {
  source: string;
  dest: string;
  uri?: string;
  stallRounds?: string;
  json?: boolean;
}

const int = intFlag;

function mib(value: string, flag: string): number {
  const bytes = sizeFlag(/^\d+$/.test(value) ? `${value}MiB` : value, flag, 2 ** 20, 2 ** 40);
  if (bytes < 2 ** 20 || bytes % 2 ** 20 !== 0)
    throw new UsageError(`${flag}: "${value}" is not a whole number of MiB`, flag);
  return bytes / 2 ** 20;
}

function qmpAddress(text: string, flag: string) {
  try {
    return parseQmpAddress(text);
  } catch (err) {
    throw new UsageError(`${flag}: ${(err as Error).message}`, flag);
  }
}

export function registerQemu(program: Command): void {
  const qemu = program
    .command('qemu')
    .description(
      'drive real QEMU guests: build and start the test VM, migrate over QMP with livemig options',
    );

  qemu
    .command('testvm')
    .description(
      'build the test VM from Debian packages (linux-image-amd64, busybox-static, a static C guest program that ' +
        'dirties memory and checks it) and start it under QEMU with a QMP socket; QEMU keeps running after exit',
    )
    .option('--cache <dir>', 'where the kernel and initramfs are kept (default ~/.cache/livemig/qemu-testvm)')
    .option('--build-only', 'build (or find in the cache) and print the paths, start nothing')
    .option('--mem <size>', 'guest RAM', '256MiB')
    .option('--guest-mem <size>', 'memory the guest program dirties and checks', '64MiB')
    .option('--rate <pages/s>', 'pages the guest program writes per second', '2000')
    .option(
      '--bytes-per-write <n>',
      'bytes changed per page write (1..4096; small = XBZRLE-friendly)',
      '4096',
    )
    .option('--hot <pages>', 'hot set taking 90% of the writes, in pages (0 = writes spread uniformly)', '0')
    .option('--incoming <uri>', 'start as a migration destination listening on URI, e.g. tcp:127.0.0.1:4444')
    .option('--run-dir <dir>', 'directory for qmp.sock and console.log (default: a fresh temporary one)')
    .option('--json', 'print what was built/started as JSON')
    .action(async (f: TestVmFlags) => {
      const memMiB = mib(f.mem, '--mem');
      const guestMiB = mib(f.guestMem, '--guest-mem');
      if (guestMiB > memMiB - 64)
        throw new UsageError('--guest-mem: leave at least 64 MiB of --mem to the kernel', '--guest-mem');
      const rate = int(f.rate, '--rate', 0, 10_000_000);
      const bytes = int(f.bytesPerWrite, '--bytes-per-write', 1, 4096);
      const log = f.json ? () => {} : (l: string) => process.stderr.write(`${l}\n`);
      const image = await buildTestVm({ ...(f.cache ? { cacheDir: f.cache } : {}), log });
      if (f.buildOnly) {
        process.stdout.write(
          f.json ? `${JSON.stringify(image)}\n` : `kernel ${image.kernel}\ninitrd ${image.initrd}\n`,
        );
        return;
      }
      const why = qemuUnfitReason(await findQemu());
      if (why) throw new MigrationError('RESOURCE_LIMIT', why);
      const vm = await startTestVm({
        image,
        memMiB,
        mib: guestMiB,
        rate,
        bytes,
        hot: int(f.hot, '--hot', 0, guestMiB * 256),
        detached: true,
        ...(f.incoming ? { incoming: f.incoming } : {}),
        ...(f.runDir ? { runDir: f.runDir } : {}),
      });
      const qmp = await vm.connect();
      await qmp.close();
      // A destination does not run until a migration arrives; a source is ready once its program says so.
      if (!f.incoming) await waitForConsole(vm.consolePath, (c) => c.ready, 60_000);
      const out = {
        pid: vm.pid,
        qmp: `unix:${vm.qmpPath}`,
        console: vm.consolePath,
        incoming: f.incoming ?? null,
        args: vm.args,
      };
      if (f.json) process.stdout.write(`${JSON.stringify(out)}\n`);
      else
        process.stdout.write(
          `QEMU pid ${vm.pid} (${f.incoming ? `destination, -incoming ${f.incoming}` : 'source, guest program running'})\n` +
            `  QMP      ${out.qmp}\n  console  ${vm.consolePath}   (LIVEMIG sweep=… corrupt=0 lines)\n` +
            `  stop     kill ${vm.pid}\n`,
        );
    });

  const migrate = qemu
    .command('migrate')
    .description(
      'migrate a running QEMU guest to a QEMU started with -incoming, driven over QMP with the options, policies, ' +
        'progress bar and report of `livemig migrate`',
    )
    .requiredOption('--source <qmp>', 'source QMP monitor: unix:PATH, PATH or tcp:HOST:PORT')
    .requiredOption('--dest <qmp>', 'destination QMP monitor (QEMU started with -incoming)')
    .option('--uri <uri>', "where the source sends the stream (default: the destination's listening address)")
    .option(
      '--stall-rounds <n>',
      'rounds without the dirty set shrinking before a stall is declared (default 5)',
    )
    .option('--json', 'print the final report as JSON (no progress bar)');
  addMigrationFlags(migrate);
  migrate.addHelpText(
    'after',
    '\nExamples:\n' +
      '  livemig qemu migrate --source unix:/tmp/a/qmp.sock --dest unix:/tmp/b/qmp.sock --max-bandwidth 32MiB\n' +
      '  livemig qemu migrate ... --xbzrle --cache-sizing dynamic --xbzrle-cache-max 64MiB\n' +
      '  livemig qemu migrate ... --strategy hybrid --postcopy-after-rounds 1 --migration-cap 15 --json\n' +
      '  livemig qemu migrate ... --on-stall postcopy --stall-rounds 3 --preset proxmox\n',
  );
  migrate.action(async (f: MigrationFlagValues & MigrateFlags) => {
    const { options, preset } = migrationOptionsFromFlags(f);
    if (f.stallRounds !== undefined) options.stallRounds = int(f.stallRounds, '--stall-rounds', 1, 1000);
    const source = await connectQmp(f.source, '--source');
    const dest = await connectQmp(f.dest, '--dest').catch(async (err: unknown) => {
      await source.close();
      throw err;
    });
    const progress = f.json ? undefined : new MigrationProgress();
    try {
      // A destination started with -incoming defer listens only once told where (after its capabilities are set).
      const listening = await incomingAddress(dest);
      const uri = f.uri ?? listening ?? (await incomingUri(dest));
      const report = await migrateQemu(source, dest, {
        ...options,
        ...(preset ? { preset } : {}),
        uri,
        ...(listening === undefined ? { listen: true } : {}),
        sourceName: f.source,
        onProgress: (r) => progress?.update(r),
      }).finally(() => progress?.stop());
      if (report.status === 'completed') await waitRunning(dest, 30_000);
      process.stdout.write(f.json ? `${JSON.stringify(report, null, 2)}\n` : `${qemuReportTable(report)}\n`);
      if (report.status !== 'completed')
        throw new MigrationError(
          'INTERNAL',
          `QEMU migration ${report.status}: ${report.error?.message ?? 'no reason given'}`,
        );
    } catch (err) {
      // QMP failures (QEMU refused a command, a monitor went away or stopped answering) as one line with a code.
      if (err instanceof QmpError)
        throw new MigrationError('CAPABILITY', err.message, { class: err.errorClass });
      if (err instanceof QmpTimeoutError) throw new MigrationError('TIMEOUT', err.message);
      if (err instanceof QmpClosedError || err instanceof QmpProtocolError)
        throw new MigrationError('PEER_CLOSED', err.message);
      throw err;
    } finally {
      await source.close();
      await dest.close();
    }
  });

  registerQemuSnapshot(qemu, connectQmp);
}

/** Connect to a monitor named by a flag; failures become one line naming the flag and the likely cause. */
export async function connectQmp(text: string, flag: string): Promise<QmpClient> {
  try {
    return await QmpClient.connect(qmpAddress(text, flag), { timeoutMs: 5000 });
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
        ? 'nothing listens there (is QEMU running with -qmp …,server=on?)'
        : e.message;
    throw new MigrationError(
      'CONNECTION_REFUSED',
      `${flag} ${text}: cannot open the QMP monitor: ${why}`,
      {},
      { cause: err },
    );
  }
}

/** Where the destination listens (`query-migrate`'s `socket-address`), or undefined (-incoming defer). */
async function incomingAddress(dest: QmpClient): Promise<string | undefined> {
  const info = await dest.execute<{
    'socket-address'?: { type: string; host?: string; port?: string; path?: string }[];
  }>('query-migrate');
  const a = info['socket-address']?.[0];
  if (a?.type === 'inet' && a.host && a.port)
    return `tcp:${a.host === '0.0.0.0' ? '127.0.0.1' : a.host}:${a.port}`;
  if (a?.type === 'unix' && a.path) return `unix:${a.path}`;
  return undefined;
}

/** The destination's listening address, from its `query-migrate` (`socket-address`) during -incoming. */
async function incomingUri(dest: QmpClient): Promise<string> {
  const info = await dest.execute<{
    'socket-address'?: { type: string; host?: string; port?: string; path?: string }[];
  }>('query-migrate');
  const a = info['socket-address']?.[0];
  if (a?.type === 'inet' && a.host && a.port)
    return `tcp:${a.host === '0.0.0.0' ? '127.0.0.1' : a.host}:${a.port}`;
  if (a?.type === 'unix' && a.path) return `unix:${a.path}`;
  throw new UsageError(
    '--uri: the destination does not report a listening address; give --uri tcp:HOST:PORT',
    '--uri',
  );
}

/** livemig's report table, then what only QEMU reports. */
export function qemuReportTable(r: QemuMigrationReport): string {
  const q = r.qemu;
  const t = new Table({ head: ['QEMU', `pid ${q.pid ?? '-'}`], style: { head: [], border: [] } });
  t.push(
    ['dirty syncs', String(q.dirtySyncCount)],
    [
      'post-copy',
      q.switchedToPostcopy
        ? `switched (${q.postcopyReason ?? 'strategy'}), ${formatBytes(q.postcopyBytes)} in post-copy` +
          (q.capabilities['postcopy-preempt'] ? ', postcopy-preempt on' : '')
        : 'no',
    ],
    ...(q.postcopyBlocktime
      ? [
          [
            'postcopy-blocktime',
            `${formatMs(q.postcopyBlocktime.totalMs)} (per vCPU: ${q.postcopyBlocktime.vcpuMs.map((v) => formatMs(v)).join(', ')})`,
          ],
        ]
      : []),
    [
      'auto-converge',
      q.capabilities['auto-converge'] ? `on (throttle up to ${q.cpuThrottlePercent}%)` : 'off',
    ],
  );
  if (q.cpu.source)
    t.push([
      'CPU, source QEMU',
      `${formatMs(q.cpu.source.totalMs)} (vCPU ${formatMs(q.cpu.source.vcpuMs)}, main loop ${formatMs(q.cpu.source.mainMs)}, migration and I/O threads ${formatMs(q.cpu.source.otherMs)})`,
    ]);
  if (q.cpu.destination) t.push(['CPU, destination QEMU', formatMs(q.cpu.destination.totalMs)]);
  if (q.cgroupCap)
    t.push([
      'CAP (cgroup)',
      `${q.cgroupCap.cgroup}: throttled ${q.cgroupCap.throttledPeriods} periods, ${formatMs(q.cgroupCap.throttledMs)}`,
    ]);
  for (const n of q.notApplied) t.push(['not applied', n]);
  for (const e of r.events) t.push(['event', e]);
  return `${reportTable(r)}\n${t.toString()}`;
}
