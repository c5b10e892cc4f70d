/**
 * The migration power session's report figures: the guest's speed before the migration when the source's own
 * 100 ms sample saw no step, the closed-loop budget account, energy per migration and the series.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Guest } from '../guest/index.js';
import { HostPower } from './host.js';
import { MiB, newReport, OPTIONS, sleep } from './session.fixtures.js';
import type { PowerSessionOptions } from './session-view.js';

describe('migration power session', () => {
  const guests: Guest[] = [];
  const hosts: HostPower[] = [];
  afterEach(async () => {
    for (const h of hosts.splice(0)) h.stop();
    for (const g of guests.splice(0)) await g.destroy();
  });

  const setup = async (options: Partial<PowerSessionOptions>) => {
    const vm = await Guest.create({ ramBytes: 4 * MiB, workload: { name: 'twolf' } });
    guests.push(vm);
    const host = new HostPower({ guests: () => [{ id: 'vm', guest: vm }], raplRoot: null });
    hosts.push(host);
    host.start();
    vm.resume();
    // A window before the migration for the "before" figures.
    await sleep(1200);
    const report = newReport('127.0.0.1:1');
    const session = host.beginMigration({
      guestId: 'vm',
      guest: vm,
      options: { ...OPTIONS, ...options },
      report,
    });
    return { vm, host, report, session };
  };

  it('takes the speed before from the meter when the source’s 100 ms sample saw no step', async () => {
    const { report, session } = await setup({});
    // What the source reports when the vCPU was not scheduled in its 100 ms sample.
    report.guest.stepsPerSecBefore = 0;
    report.guest.stepsPerSecDuring = 1;
    report.status = 'active';
    session.onProgress(report);
    await sleep(300);
    report.status = 'completed';
    report.transferredBytes = 512 * MiB;
    await session.finish(report);
    expect(report.guest.stepsPerSecBefore).toBeGreaterThan(0);
    expect(report.guest.slowdown).toBeGreaterThan(0);
    // Energy per migration: J per GiB from the bytes moved; the destination (nobody there) is not available.
    const c = report.energy!.cost!;
    expect(c.model).toBe('intel-core-i7-920');
    expect(c.sourceJoulesPerGiB).toBeCloseTo(c.sourceJoules * 2, 9);
    expect(c.destinationJoules).toBeNull();
    expect(report.energy!.series!.some((p) => p.atMs < 0)).toBe(true);
  });

  it('gives the VM row the source’s speed before when the meter’s window saw no step of it', async () => {
    // A guest that made no step in the meter's 2 s before the migration (here: paused until the migration starts).
    const vm = await Guest.create({ ramBytes: 4 * MiB, workload: { name: 'twolf' } });
    guests.push(vm);
    const host = new HostPower({ guests: () => [{ id: 'vm', guest: vm }], raplRoot: null });
    hosts.push(host);
    host.start();
    await sleep(600);
    const report = newReport('127.0.0.1:1');
    const session = host.beginMigration({ guestId: 'vm', guest: vm, options: OPTIONS, report });
    vm.resume();
    report.guest.stepsPerSecBefore = 1e9; // the source's own sample, far above what the guest does during
    report.status = 'active';
    session.onProgress(report);
    await sleep(400);
    report.status = 'completed';
    await session.finish(report);
    const row = report.energy!.vms.find((v) => v.migrating)!;
    expect(row.stepsPerSecBefore).toBe(1e9);
    expect(row.stepsPerSecDuring).toBeGreaterThan(0);
    expect(row.slowdown).toBeGreaterThan(0.9);
  });

  it('with a budget, the closed loop decides on every sample and accounts for the windowed budget', async () => {
    const { report, session, host } = await setup({ capping: 'dvfs', powerCap: 125, powerWindowMs: 500 });
    report.status = 'active';
    session.onProgress(report);
    await sleep(1500);
    report.status = 'completed';
    await session.finish(report);
    const b = report.energy!.budget!;
    expect(b.budgetWatts).toBe(125);
    expect(b.windowMs).toBe(500);
    expect(b.decisions.length).toBeGreaterThan(0);
    // A busy twolf vCPU on this machine's cores: 125 W (0.5 W over the static power) needs the slowest states.
    expect(b.decisions.some((d) => d.ghz !== null && d.ghz < 2.6)).toBe(true);
    // The host's DVFS state is restored when the migration ends.
    expect(host.meter.dvfsState).toBe(8);
  });
});
