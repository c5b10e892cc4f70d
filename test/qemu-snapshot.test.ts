/**
 * QEMU snapshots to a file and restores, against real QEMU under TCG: a running test VM is snapshotted live
 * (`livemig qemu snapshot --background --json`, QEMU's background-snapshot) while its program keeps running, restored
 * into a fresh QEMU started with `-incoming defer`, then that guest is snapshotted again with mapped-ram and restored
 * into a third QEMU. Each restored guest must carry on its program (sweep numbers continue, no reboot) and find no
 * corrupt page over a whole sweep made after the restore. Then the refusals: background-snapshot with mapped-ram
 * (QEMU 10 cannot load what it writes), multifd without mapped-ram, a missing file, a file that is not a QEMU stream, a QEMU not started with
 * -incoming.
 *
 * Skips with a message when QEMU >= 9, gcc, busybox-static or the Debian kernel package are not available.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { cliCommand } from '../src/agent/spawn.js';
import {
  type GuestConsole,
  type QemuSnapshotReport,
  type QmpClient,
  type RunningTestVm,
  readGuestConsole,
  restoreQemu,
  snapshotQemu,
  startTestVm,
  waitForConsole,
} from '../src/qemu/index.js';
import { prepareQemuTestVm } from './qemu-vm.js';

const { skipReason, image } = await prepareQemuTestVm('qemu-snapshot.test');

const run = promisify(execFile);
// Small: 128 MiB of RAM, 32 MiB checked by the guest program, so a sweep takes ~4 s at 2000 pages/s.
const VM = { memMiB: 128, mib: 32, rate: 2000 };
const vms: RunningTestVm[] = [];
const clients: QmpClient[] = [];
const dir = await mkdtemp(join(tmpdir(), 'livemig-qsnap-'));

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  for (const vm of vms) await vm.stop();
  await rm(dir, { recursive: true, force: true });
});

async function start(incoming?: string): Promise<{ vm: RunningTestVm; qmp: QmpClient }> {
  if (!image) throw new Error('no test VM image');
  const vm = await startTestVm({ image, ...VM, ...(incoming ? { incoming } : {}) });
  vms.push(vm);
  const qmp = await vm.connect(30_000);
  clients.push(qmp);
  return { vm, qmp };
}

/** The restored guest carries on from `lastSweep` and completes a whole sweep after the restore without corruption. */
async function expectHealthy(vm: RunningTestVm, lastSweep: number): Promise<GuestConsole> {
  // The first sweep line may cover pages checked before the snapshot; the second is a whole sweep after it.
  const c = await waitForConsole(vm.consolePath, (g) => g.sweeps.length >= 2, 120_000);
  expect(c.failed).toBeUndefined();
  expect(c.ready).toBe(false); // no "LIVEMIG ready": the program did not start again, the kernel did not reboot
  expect(c.sweeps[0]?.sweep).toBeGreaterThanOrEqual(lastSweep);
  expect(c.sweeps.map((s) => s.corrupt)).toEqual(c.sweeps.map(() => 0));
  expect(c.corruptPages).toEqual([]);
  return c;
}

describe.skipIf(skipReason !== undefined)('QEMU snapshot to a file and restore', () => {
  it('background-snapshot (live, CLI) and mapped-ram snapshots restore into new QEMUs with no corrupt page', async () => {
    const src = await start();
    await waitForConsole(src.vm.consolePath, (c) => c.sweeps.length >= 1, 120_000);
    const live = join(dir, 'live.snap');
    // A QMP socket serves one client at a time: hand it to the CLI, then take it back.
    await src.qmp.close();
    const { file, execArgv } = cliCommand();
    const args = [
      'qemu',
      'snapshot',
      '--qmp',
      `unix:${src.vm.qmpPath}`,
      '--to',
      live,
      '--background',
      '--json',
    ];
    const { stdout } = await run(process.execPath, [...execArgv, file, ...args], { timeout: 120_000 });
    const snap = JSON.parse(stdout) as QemuSnapshotReport;
    expect(snap.capabilities).toEqual({ 'background-snapshot': true, 'mapped-ram': false, multifd: false });
    expect(snap.guestState).toBe('running');
    expect(snap.fileBytes).toBeGreaterThan(VM.mib * 2 ** 20); // at least the guest program's pages
    // The source guest kept running through and after the snapshot.
    const atSnapshot = (await readGuestConsole(src.vm.consolePath)).sweeps.length;
    await waitForConsole(src.vm.consolePath, (c) => c.sweeps.length > atSnapshot, 120_000);
    const lastSweep = (await readGuestConsole(src.vm.consolePath)).sweeps[atSnapshot - 1]?.sweep ?? 0;
    await src.vm.stop();

    const a = await start('defer');
    const restored = await restoreQemu(a.qmp, { file: live });
    expect(restored.guestState).toBe('running');
    const c = await expectHealthy(a.vm, lastSweep);

    // mapped-ram without background-snapshot: a live migration to a file that ends with the guest paused; pages
    // written and read by two multifd channels each.
    const mapped = join(dir, 'mapped.snap');
    // Through the CLI again, so its --mapped-ram and --multifd-channels flags are checked too.
    await a.qmp.close();
    const out2 = await run(
      process.execPath,
      [...execArgv, file, 'qemu', 'snapshot', '--qmp', a.vm.qmpPath, '--to', mapped, '--mapped-ram'].concat([
        '--multifd-channels',
        '2',
        '--json',
      ]),
      { timeout: 120_000 },
    );
    const snap2 = JSON.parse(out2.stdout) as QemuSnapshotReport;
    expect(snap2.capabilities).toEqual({ 'background-snapshot': false, 'mapped-ram': true, multifd: true });
    expect(snap2.multifdChannels).toBe(2);
    expect(snap2.guestState).toBe('postmigrate');
    expect(snap2.fileBytes).toBeGreaterThanOrEqual(VM.memMiB * 2 ** 20); // every page has its place in the file
    const b = await start('defer');
    const back = await restoreQemu(b.qmp, { file: mapped, mappedRam: true, multifdChannels: 2 });
    expect(back.guestState).toBe('running');
    await expectHealthy(b.vm, c.sweeps.at(-1)?.sweep ?? 0);
  }, 400_000);

  it('refuses what cannot work, with typed errors', async () => {
    expect.assertions(6);
    const dest = await start('defer');
    const junk = join(dir, 'junk.snap');
    await writeFile(junk, 'not a QEMU migration stream');
    await expect(restoreQemu(dest.qmp, { file: join(dir, 'missing.snap') })).rejects.toMatchObject({
      code: 'BAD_ARGUMENT',
      message: expect.stringMatching(/does not exist/),
    });
    await expect(restoreQemu(dest.qmp, { file: junk })).rejects.toMatchObject({ code: 'SNAPSHOT_FORMAT' });
    // The QEMU is still waiting for its migration: the refusals above did not touch it.
    expect((await dest.qmp.execute('query-status')).status).toBe('inmigrate');
    await expect(
      snapshotQemu(dest.qmp, { file: junk, background: true, mappedRam: true }),
    ).rejects.toMatchObject({ code: 'CAPABILITY', message: expect.stringMatching(/cannot restore it/) });
    await expect(snapshotQemu(dest.qmp, { file: junk, multifdChannels: 2 })).rejects.toMatchObject({
      code: 'BAD_ARGUMENT',
      message: expect.stringMatching(/needs mapped-ram/),
    });
    const running = await start();
    await expect(restoreQemu(running.qmp, { file: junk.replace('junk', 'live') })).rejects.toMatchObject({
      code: 'CAPABILITY',
      message: expect.stringMatching(/-incoming defer/),
    });
  }, 120_000);
});
