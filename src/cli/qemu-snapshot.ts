/**
 * `livemig qemu snapshot` and `livemig qemu restore`: a QEMU guest to a file and back, over QMP (src/qemu/snapshot.ts).
 */
import type { Command } from 'commander';
import { MigrationError } from '../errors.js';
import {
  type QemuRestoreReport,
  type QemuSnapshotReport,
  type QmpClient,
  QmpError,
  QmpTimeoutError,
  restoreQemu,
  snapshotQemu,
} from '../qemu/index.js';
import { formatBytes, formatMs } from '../units.js';
import { intFlag } from './values.js';

interface SnapshotFlags {
  qmp: string;
  to: string;
  mappedRam?: boolean;
  background?: boolean;
  multifdChannels?: string;
  json?: boolean;
}

interface RestoreFlags {
  qmp: string;
  from: string;
  mappedRam?: boolean;
  paused?: boolean;
  multifdChannels?: string;
  json?: boolean;
}

type Connect = (text: string, flag: string) => Promise<QmpClient>;

export function registerQemuSnapshot(qemu: Command, connect: Connect): void {
  qemu
    .command('snapshot')
    .description(
      "write a QEMU guest's RAM and device state to a file (a migration to file:); with --background the guest " +
        'keeps running (QEMU background-snapshot), else it is paused when the file is complete',
    )
    .requiredOption('--qmp <qmp>', 'QMP monitor of the QEMU to snapshot: unix:PATH, PATH or tcp:HOST:PORT')
    .requiredOption('--to <file>', 'snapshot file (overwritten)')
    .option('--mapped-ram', 'QEMU mapped-ram: each page at a fixed offset of the file')
    .option(
      '--background',
      'QEMU background-snapshot: the guest keeps running (write-protect via userfaultfd)',
    )
    .option('--multifd-channels <n>', 'QEMU multifd: write pages with N threads (needs --mapped-ram)')
    .option('--json', 'print the report as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  livemig qemu snapshot --qmp unix:/tmp/a/qmp.sock --to guest.snap --background\n' +
        '  livemig qemu snapshot --qmp unix:/tmp/a/qmp.sock --to guest.snap --mapped-ram --json\n' +
        '  livemig qemu snapshot --qmp unix:/tmp/a/qmp.sock --to guest.snap --mapped-ram --multifd-channels 2\n',
    )
    .action(async (f: SnapshotFlags) => {
      const qmp = await connect(f.qmp, '--qmp');
      try {
        const report = await qmpErrors(() =>
          snapshotQemu(qmp, {
            file: f.to,
            mappedRam: f.mappedRam ?? false,
            background: f.background ?? false,
            ...channels(f.multifdChannels),
          }),
        );
        process.stdout.write(f.json ? `${JSON.stringify(report, null, 2)}\n` : snapshotText(report));
      } finally {
        await qmp.close();
      }
    });

  qemu
    .command('restore')
    .description(
      'load a snapshot file into a QEMU started with -incoming defer and the same command line, and run the guest',
    )
    .requiredOption('--qmp <qmp>', 'QMP monitor of the QEMU started with -incoming defer')
    .requiredOption('--from <file>', 'snapshot file written by `livemig qemu snapshot`')
    .option('--mapped-ram', 'the snapshot was made with --mapped-ram')
    .option('--paused', 'leave the restored guest paused')
    .option('--multifd-channels <n>', 'QEMU multifd: read pages with N threads (needs --mapped-ram)')
    .option('--json', 'print the report as JSON')
    .addHelpText(
      'after',
      '\nExample:\n' +
        '  livemig qemu testvm --incoming defer --json   # the same --mem/--guest-mem as the snapshotted guest\n' +
        '  livemig qemu restore --qmp unix:/tmp/b/qmp.sock --from guest.snap\n',
    )
    .action(async (f: RestoreFlags) => {
      const qmp = await connect(f.qmp, '--qmp');
      try {
        const report = await qmpErrors(() =>
          restoreQemu(qmp, {
            file: f.from,
            mappedRam: f.mappedRam ?? false,
            resume: !f.paused,
            ...channels(f.multifdChannels),
          }),
        );
        process.stdout.write(f.json ? `${JSON.stringify(report, null, 2)}\n` : restoreText(report));
      } finally {
        await qmp.close();
      }
    });
}

function channels(text: string | undefined): { multifdChannels?: number } {
  return text === undefined ? {} : { multifdChannels: intFlag(text, '--multifd-channels', 1, 255) };
}

/** QEMU refusing a command becomes one line with a code, as for `qemu migrate`. */
async function qmpErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof QmpError)
      throw new MigrationError('CAPABILITY', err.message, { class: err.errorClass });
    if (err instanceof QmpTimeoutError) throw new MigrationError('TIMEOUT', err.message);
    throw err;
  }
}

function caps(c: Record<string, boolean>, channels?: number): string {
  const on = Object.entries(c)
    .filter(([, v]) => v)
    .map(([k]) => (k === 'multifd' ? `multifd (${channels} channels)` : k));
  return on.length ? on.join(', ') : 'none';
}

function snapshotText(r: QemuSnapshotReport): string {
  return (
    `snapshot ${r.file}\n` +
    `  capabilities  ${caps(r.capabilities, r.multifdChannels)}\n` +
    `  time          ${formatMs(r.snapshotMs)} (QEMU total-time ${formatMs(r.qemuTotalMs)})\n` +
    `  guest paused  ${formatMs(r.downtimeMs)} (QEMU downtime); guest now ${r.guestState}\n` +
    `  written       ${formatBytes(r.transferredBytes)}, file ${formatBytes(r.fileBytes)}\n`
  );
}

function restoreText(r: QemuRestoreReport): string {
  return (
    `restored ${r.file} (${formatBytes(r.fileBytes)}, capabilities ${caps(r.capabilities, r.multifdChannels)})\n` +
    `  time to running  ${formatMs(r.restoreMs)}; guest now ${r.guestState}\n`
  );
}
