/**
 * QEMU snapshots to a file and restores from one, over QMP: a migration whose URI is `file:PATH`.
 *
 * - `background-snapshot`: the guest keeps running; QEMU write-protects guest RAM (userfaultfd) and saves a page before
 *   the guest may change it, so the file holds the guest as it was when the snapshot started.
 * - `mapped-ram` (QEMU >= 9.0): each page at a fixed offset of the file (the file is as large as guest RAM plus
 *   device state); without `background-snapshot` this is a live migration to a file that ends with the guest paused.
 * - restore: a QEMU started with `-incoming defer` (same command line) loads the file with `migrate-incoming`.
 *
 * QEMU 10.0 under TCG accepts both capabilities together and writes the file, but its own restore of that file fails
 * ("error while loading state for instance 0x0 of device 'kvm-tpr-opt'", see docs/snapshot.md), so livemig refuses
 * the combination rather than write a snapshot that cannot be restored.
 */
import { open, stat } from 'node:fs/promises';
import { LivemigError, MigrationError } from '../errors.js';
import { type QmpClient, QmpClosedError, type QmpMigrationInfo } from './qmp.js';

export interface QemuSnapshotOptions {
  /** Where the snapshot goes (QEMU writes it; overwritten if present). */
  file: string;
  /** QEMU's `mapped-ram` capability: each page at a fixed file offset. */
  mappedRam?: boolean;
  /** QEMU's `background-snapshot` capability: the guest keeps running while the file is written. */
  background?: boolean;
  /** QEMU's `multifd` with this many `multifd-channels`: pages written by N threads (needs mapped-ram). */
  multifdChannels?: number;
  /** Give up (and cancel) after this long. Default 10 min. */
  timeoutMs?: number;
}

export interface QemuSnapshotReport {
  file: string;
  capabilities: { 'background-snapshot': boolean; 'mapped-ram': boolean; multifd: boolean };
  /** `multifd-channels` when multifd is on. */
  multifdChannels?: number;
  /** Wall time from `migrate` to `completed`, as livemig saw it. */
  snapshotMs: number;
  /** QEMU's `total-time` and `downtime` (the guest was stopped this long). */
  qemuTotalMs: number;
  downtimeMs: number;
  /** Bytes QEMU wrote (`ram.transferred`) and the file's size on disk. */
  transferredBytes: number;
  fileBytes: number;
  /** The guest's run state after the snapshot: `running` with background-snapshot, else `postmigrate` (paused). */
  guestState: string;
}

export interface QemuRestoreOptions {
  file: string;
  /** Must match the snapshot's `mapped-ram`. */
  mappedRam?: boolean;
  /** Read pages with this many multifd threads (needs mapped-ram; any count, whatever the snapshot used). */
  multifdChannels?: number;
  /** Resume the guest if it arrives paused (a snapshot of a paused guest). Default true. */
  resume?: boolean;
  timeoutMs?: number;
}

export interface QemuRestoreReport {
  file: string;
  capabilities: { 'mapped-ram': boolean; multifd: boolean };
  multifdChannels?: number;
  /** Wall time from `migrate-incoming` until the guest runs (its first instruction after restore). */
  restoreMs: number;
  fileBytes: number;
  guestState: string;
}

const ACTIVE = new Set(['none', 'setup', 'active', 'device', 'wait-unplug', 'pre-switchover']);
const QEMU_FILE_MAGIC = 0x5145564d; // "QEVM", the first four bytes of every QEMU migration stream

/** Snapshot the guest behind `qmp` to `options.file`. */
export async function snapshotQemu(
  qmp: QmpClient,
  options: QemuSnapshotOptions,
): Promise<QemuSnapshotReport> {
  const caps = {
    'background-snapshot': options.background ?? false,
    'mapped-ram': options.mappedRam ?? false,
    multifd: options.multifdChannels !== undefined,
  };
  checkMultifd(caps['mapped-ram'], options.multifdChannels);
  if (caps['background-snapshot'] && caps['mapped-ram'])
    throw new MigrationError(
      'CAPABILITY',
      'background-snapshot with mapped-ram: QEMU 10 writes this file but cannot restore it ' +
        '("error while loading state for instance 0x0 of device \'kvm-tpr-opt\'"); use one of the two',
    );
  const before = (await qmp.execute('query-migrate')).status ?? 'none';
  if (ACTIVE.has(before) && before !== 'none')
    throw new MigrationError('CAPABILITY', `QEMU is already migrating (status ${before})`);
  if (options.multifdChannels !== undefined)
    await qmp.execute('migrate-set-parameters', { 'multifd-channels': options.multifdChannels });
  await setCapabilities(qmp, caps);
  try {
    const started = Date.now();
    await qmp.execute('migrate', { uri: `file:${options.file}` });
    const info = await waitMigration(qmp, options.timeoutMs ?? 600_000, 'snapshot');
    const snapshotMs = Date.now() - started;
    const status = await qmp.execute('query-status');
    return {
      file: options.file,
      capabilities: caps,
      ...(options.multifdChannels !== undefined ? { multifdChannels: options.multifdChannels } : {}),
      snapshotMs,
      qemuTotalMs: info['total-time'] ?? snapshotMs,
      downtimeMs: info.downtime ?? 0,
      transferredBytes: info.ram?.transferred ?? 0,
      fileBytes: (await stat(options.file)).size,
      guestState: status.status,
    };
  } finally {
    // Capabilities stay set on a QEMU: clear them so a later migration of this guest is a plain one.
    await setCapabilities(qmp, { 'background-snapshot': false, 'mapped-ram': false, multifd: false }).catch(
      () => {},
    );
  }
}

/** Check that `file` holds a QEMU migration stream (its magic), before a QEMU is asked to load it. */
export async function checkQemuSnapshotFile(file: string): Promise<number> {
  const fh = await open(file, 'r').catch((err: NodeJS.ErrnoException) => {
    throw new LivemigError(
      'BAD_ARGUMENT',
      err.code === 'ENOENT'
        ? `snapshot file ${file} does not exist`
        : `cannot read snapshot file ${file}: ${err.message}`,
    );
  });
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await fh.read(head, 0, 4, 0);
    if (bytesRead < 4 || head.readUInt32BE(0) !== QEMU_FILE_MAGIC)
      throw new LivemigError(
        'SNAPSHOT_FORMAT',
        `${file} is not a QEMU snapshot (no QEVM magic at its start); make one with \`livemig qemu snapshot\``,
      );
    return (await fh.stat()).size;
  } finally {
    await fh.close();
  }
}

/** Load `options.file` into the QEMU behind `qmp`, which must have been started with `-incoming defer`. */
export async function restoreQemu(qmp: QmpClient, options: QemuRestoreOptions): Promise<QemuRestoreReport> {
  const fileBytes = await checkQemuSnapshotFile(options.file);
  const state = await qmp.execute('query-status');
  if (state.status !== 'inmigrate')
    throw new MigrationError(
      'CAPABILITY',
      `the QEMU to restore into is ${state.status}, not waiting for a migration: start it with -incoming defer`,
    );
  const caps = { 'mapped-ram': options.mappedRam ?? false, multifd: options.multifdChannels !== undefined };
  checkMultifd(caps['mapped-ram'], options.multifdChannels);
  if (options.multifdChannels !== undefined)
    await qmp.execute('migrate-set-parameters', { 'multifd-channels': options.multifdChannels });
  await setCapabilities(qmp, caps);
  const started = Date.now();
  try {
    await qmp.execute('migrate-incoming', { uri: `file:${options.file}` });
    await waitMigration(qmp, options.timeoutMs ?? 600_000, 'restore');
    let status = await qmp.execute('query-status');
    if (status.status !== 'running' && (options.resume ?? true)) {
      await qmp.execute('cont');
      status = await qmp.execute('query-status');
    }
    return {
      file: options.file,
      capabilities: caps,
      ...(options.multifdChannels !== undefined ? { multifdChannels: options.multifdChannels } : {}),
      restoreMs: Date.now() - started,
      fileBytes,
      guestState: status.status,
    };
  } catch (err) {
    // QEMU exits when it cannot load the stream: the monitor closing is the only answer it gives.
    if (err instanceof QmpClosedError)
      throw new LivemigError(
        'SNAPSHOT_FORMAT',
        `QEMU exited while loading ${options.file} (its stderr says why): the file is damaged, or ` +
          `--mapped-ram${caps['mapped-ram'] ? ' was given but the snapshot was not made with it' : ' is missing'}, ` +
          'or the QEMU command line differs from the snapshotted one',
        {},
        { cause: err },
      );
    throw err;
  }
}

function checkMultifd(mappedRam: boolean, channels: number | undefined): void {
  if (channels === undefined) return;
  if (!Number.isInteger(channels) || channels < 1 || channels > 255)
    throw new LivemigError('BAD_ARGUMENT', `multifd-channels ${channels}: give a whole number from 1 to 255`);
  // Without mapped-ram a file has no place for pages that arrive out of order from several channels.
  if (!mappedRam)
    throw new LivemigError('BAD_ARGUMENT', 'multifd to a file needs mapped-ram: add --mapped-ram');
}

async function setCapabilities(qmp: QmpClient, caps: Record<string, boolean>): Promise<void> {
  await qmp.execute('migrate-set-capabilities', {
    capabilities: Object.entries(caps).map(([capability, state]) => ({ capability, state })),
  });
}

async function waitMigration(qmp: QmpClient, timeoutMs: number, what: string): Promise<QmpMigrationInfo> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await qmp.execute('query-migrate');
    const status = info.status ?? 'none';
    if (status === 'completed') return info;
    if (status === 'failed' || status === 'cancelled')
      throw new LivemigError(
        'QMP_ERROR',
        `QEMU ${what} ${status}: ${info['error-desc'] ?? 'no reason given'}`,
      );
    if (!ACTIVE.has(status))
      throw new MigrationError('INTERNAL', `QEMU ${what}: unexpected migration status ${status}`);
    if (Date.now() > deadline) {
      await qmp.execute('migrate_cancel').catch(() => {});
      throw new MigrationError('TIMEOUT', `QEMU ${what} did not finish in ${timeoutMs} ms (cancelled)`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
