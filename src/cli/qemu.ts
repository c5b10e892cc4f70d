/**
 * `livemig qemu`: the QEMU bridge.
 *   livemig qemu testvm   build the test VM from Debian packages and start it under QEMU (source or -incoming)
 *   livemig qemu migrate  migrate a running QEMU guest to a QEMU started with -incoming, over QMP
 */
import cliProgress from 'cli-progress';
import Table from 'cli-table3';
import { type Command, Option } from 'commander';
import { MigrationError, UsageError } from '../errors.js';
import {
  buildTestVm,
  findQemu,
  migrateQemu,
  parseQmpAddress,
  type QemuMigrationReport,
  type QemuStrategy,
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
import { formatBytes, formatMs, parseDuration, parseRate, parseSize } from '../units.js';

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

interface MigrateFlags {
  source: string;
  dest: string;
  uri?: string;
  strategy: QemuStrategy;
  xbzrle?: boolean;
  xbzrleCache?: string;
  downtimeLimit?: string;
  bandwidth?: string;
  autoConverge?: boolean;
  cap: string;
  stallRounds: string;
  onStall: 'postcopy' | 'cancel';
  hybridRounds: string;
  timeout: string;
  json?: boolean;
}

function int(value: string, flag: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`${flag}: "${value}" is not an integer from ${min} to ${max}`, flag);
  return n;
}

function mib(value: string, flag: string): number {
  const bytes = parseSize(/^\d+$/.test(value) ? `${value}MiB` : value, flag);
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

  qemu
    .command('migrate')
    .description('migrate a running QEMU guest to a QEMU started with -incoming, driven over QMP')
    .requiredOption('--source <qmp>', 'source QMP monitor: unix:PATH, PATH or tcp:HOST:PORT')
    .requiredOption('--dest <qmp>', 'destination QMP monitor (QEMU started with -incoming)')
    .option('--uri <uri>', "where the source sends the stream (default: the destination's listening address)")
    .addOption(
      new Option('--strategy <s>', 'pre-copy, post-copy, or hybrid (pre-copy rounds, then post-copy)')
        .choices(['pre-copy', 'post-copy', 'hybrid'])
        .default('pre-copy'),
    )
    .option('--xbzrle', 'enable XBZRLE delta compression of resent pages')
    .option('--xbzrle-cache <size>', 'XBZRLE cache size (e.g. 64MiB)')
    .option('--downtime-limit <ms>', 'maximum downtime QEMU aims for (e.g. 300ms)')
    .option('--bandwidth <rate>', 'maximum bandwidth (e.g. 32MiB, 100Mbit)')
    .option('--auto-converge', 'throttle the guest vCPU when pre-copy does not converge')
    .option(
      '--cap <percent>',
      "CAP of the source's vCPU threads while migrating, % of one CPU (cgroup; 0 = none)",
      '0',
    )
    .option(
      '--stall-rounds <n>',
      "stall detection (livemig's policy): rounds without the dirty set shrinking, 0 = off",
      '0',
    )
    .addOption(
      new Option(
        '--on-stall <action>',
        'on a stall: switch to post-copy, or cancel (the source keeps the guest)',
      )
        .choices(['postcopy', 'cancel'])
        .default('cancel'),
    )
    .option('--hybrid-rounds <n>', 'pre-copy rounds before a hybrid migration switches to post-copy', '3')
    .option('--timeout <duration>', 'cancel and fail after this long', '120s')
    .option('--json', 'print the final report as JSON (no progress bar)')
    .action(async (f: MigrateFlags) => {
      const source = await connectQmp(f.source, '--source');
      const dest = await connectQmp(f.dest, '--dest').catch(async (err: unknown) => {
        await source.close();
        throw err;
      });
      try {
        const uri = f.uri ?? (await incomingUri(dest));
        const bar =
          !f.json && process.stderr.isTTY && process.env.CI !== 'true'
            ? new cliProgress.SingleBar({
                stream: process.stderr,
                format: '{status} round {round} |{bar}| {sent}  {mbps} Mbit/s  expected downtime {downtime}',
                barsize: 24,
                hideCursor: true,
                clearOnComplete: true,
              })
            : undefined;
        bar?.start(100, 0, { status: 'setup', round: '-', sent: '0 B', mbps: '-', downtime: '-' });
        const report = await migrateQemu(source, dest, {
          uri,
          strategy: f.strategy,
          ...(f.xbzrle ? { xbzrle: true } : {}),
          ...(f.xbzrleCache ? { xbzrleCacheBytes: parseSize(f.xbzrleCache, '--xbzrle-cache') } : {}),
          ...(f.downtimeLimit ? { downtimeLimitMs: parseDuration(f.downtimeLimit, '--downtime-limit') } : {}),
          ...(f.bandwidth ? { maxBandwidth: parseRate(f.bandwidth, '--bandwidth') } : {}),
          ...(f.autoConverge ? { autoConverge: true } : {}),
          cap: int(f.cap, '--cap', 0, 100_000),
          stallRounds: int(f.stallRounds, '--stall-rounds', 0, 1000),
          onStall: f.onStall,
          hybridRounds: int(f.hybridRounds, '--hybrid-rounds', 1, 1000),
          timeoutMs: parseDuration(f.timeout, '--timeout'),
          onProgress: (i) => {
            const total = Math.max(1, i.ram?.total ?? 1);
            bar?.update(Math.round(100 * (1 - (i.ram?.remaining ?? total) / total)), {
              status: i.status ?? '-',
              round: String(i.ram?.['dirty-sync-count'] ?? '-'),
              sent: formatBytes(i.ram?.transferred ?? 0),
              mbps: (i.ram?.mbps ?? 0).toFixed(0),
              downtime: formatMs(i['expected-downtime'] ?? 0),
            });
          },
        });
        bar?.stop();
        if (report.status === 'completed') await waitRunning(dest, 30_000);
        process.stdout.write(
          f.json ? `${JSON.stringify(report, null, 2)}\n` : `${qemuReportTable(report)}\n`,
        );
        if (report.status !== 'completed')
          throw new MigrationError(
            'INTERNAL',
            `QEMU migration ${report.status}: ${report.error ?? 'no reason given'}`,
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
}

/** Connect to a monitor named by a flag; failures become one line naming the flag and the likely cause. */
async function connectQmp(text: string, flag: string): Promise<QmpClient> {
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

export function qemuReportTable(r: QemuMigrationReport): string {
  const t = new Table({ head: ['QEMU migration', r.status] });
  t.push(
    [
      'strategy',
      `${r.strategy}${r.switchedToPostcopy ? ` (switched to post-copy: ${r.postcopyReason ?? 'strategy'})` : ''}`,
    ],
    ['stalled', r.stalled ? 'yes' : 'no'],
    ['total time', formatMs(r.totalTimeMs)],
    ['downtime', `${formatMs(r.downtimeMs)} (limit ${formatMs(r.downtimeLimitMs)})`],
    ['rounds', String(r.rounds)],
    ['RAM', formatBytes(r.ramBytes)],
    ['transferred', formatBytes(r.transferredBytes)],
    ['pages zero / raw', `${r.pages.zero} / ${r.pages.raw}`],
    ['throughput', `${r.throughputMbps.toFixed(0)} Mbit/s`],
    [
      'XBZRLE',
      r.xbzrle.enabled
        ? `${r.xbzrle.pages} pages, ${formatBytes(r.xbzrle.encodedBytes)}, ${r.xbzrle.cacheMisses} misses, cache ${formatBytes(r.xbzrle.cacheBytes)}`
        : 'off',
    ],
    ['auto-converge', r.autoConverge ? `on (throttle ${r.cpuThrottlePercent}%)` : 'off'],
    ['post-copy requests', String(r.postcopy.requests)],
    [
      'CAP',
      r.cap
        ? `${r.cap.percent}% (cgroup ${r.cap.cgroup}), throttled ${r.cap.throttledPeriods} periods, ${formatMs(r.cap.throttledMs)}`
        : 'none',
    ],
  );
  return t.toString();
}
