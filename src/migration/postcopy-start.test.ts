/**
 * Post-copy's switch-over with `postcopyGoWithStart`: GO rides in the write of the vCPU state and POSTCOPY_START (as
 * QEMU's post-copy package carries its "run" command), so one round trip is inside the pause instead of two. What
 * must not change: a destination that refuses the state or the start never runs the guest (it stays on the
 * source), and after the write a fault is settled by RECONCILE, a partial copy never resuming anywhere on its own.
 */
import { describe, expect, it, vi } from 'vitest';
import type { Guest } from '../guest/index.js';
import { inPausedWindow } from '../paused-window.js';
import { raisedThreadIds } from '../switchover-priority.js';
import { kernelThreadId } from '../thread-id.js';
import { mayRaise } from '../thread-nice.fixtures.js';
import type { MigrationOptions } from './options.js';
import { Command } from './protocol/index.js';
import { runSource } from './source/index.js';
import type { MigrationReport } from './stats.js';
import {
  DestinationHarness,
  differingPages,
  disposeAfterEach,
  expectSwitchoverSteps,
  FakeDestination,
  type FakeDestinationOptions,
  ramImage,
  sourceRun,
  testGuest,
} from './testing/index.js';

const track = disposeAfterEach();

const WITH_GO = 'post-copy: vCPU state and start sent (with GO)';
const hasEvent = (r: MigrationReport, text: string) =>
  r.events.some((e) => e.replace(/^\d+\.\d{6}s /, '').startsWith(text));

interface Outcome {
  report: MigrationReport;
  guest: Guest;
  fake: FakeDestination;
  resumes: number;
}

/** A running guest migrated by post-copy to a scripted destination that can be redialled (RECONCILE). */
async function toFake(fake: FakeDestinationOptions, options: Partial<MigrationOptions>): Promise<Outcome> {
  const guest = await testGuest();
  guest.resume();
  const d = track(new FakeDestination(fake));
  let resumes = 0;
  const resume = guest.resume.bind(guest);
  vi.spyOn(guest, 'resume').mockImplementation(() => {
    resumes++;
    resume();
  });
  const run = sourceRun(
    guest,
    d.connect(),
    { strategy: 'postcopy', ...options },
    {
      redial: async () => d.connect(),
    },
  );
  const report = await runSource(run);
  return { report, guest, fake: d, resumes };
}

describe('post-copy switch-over: GO with the start', () => {
  it('real destination, can reconcile: GO rides with the start, the guest runs there once, verified', async () => {
    const guest = await testGuest();
    guest.resume();
    const h = track(new DestinationHarness());
    const { conn, done } = h.connect();
    const redial = async () => h.connect().conn;
    const r = await runSource(
      sourceRun(guest, conn, { strategy: 'postcopy', postcopyGoWithStart: true }, { redial }),
    );
    await done;
    expect(r.status).toBe('completed');
    expect(r.verified).toBe(true);
    expect(hasEvent(r, WITH_GO)).toBe(true);
    expect(h.resumed).toHaveLength(1);
    expect(guest.running).toBe(false);
    // The steps add up to the downtime; the destination's own steps come back in RESUMED, as in pre-copy.
    const s = expectSwitchoverSteps(r);
    expect(s.goWithDigest).toBe(true);
    // The destination's account covers the vCPU state's decode too (VCPU_STATE taken → POSTCOPY_START taken).
    expect(s.destination?.stateMs).toBeGreaterThanOrEqual(0);
  });

  it('without the option, or without a way to reconcile: GO only after READY', async () => {
    for (const [options, canRedial] of [
      [{}, true],
      [{ postcopyGoWithStart: true }, false],
    ] as const) {
      const guest = await testGuest();
      guest.resume();
      const h = track(new DestinationHarness());
      const { conn, done } = h.connect();
      const extra = canRedial ? { redial: async () => h.connect().conn } : {};
      const r = await runSource(sourceRun(guest, conn, { strategy: 'postcopy', ...options }, extra));
      await done;
      expect(r.status).toBe('completed');
      expect(hasEvent(r, WITH_GO)).toBe(false);
      expect(r.switchover?.goWithDigest).toBe(false);
      expect(h.resumed).toHaveLength(1);
    }
  });

  it('the frames: vCPU state, POSTCOPY_START and GO back to back; pages pushed after; byte for byte', async () => {
    const o = await toFake({}, { postcopyGoWithStart: true });
    expect(o.report.status).toBe('completed');
    const trail = o.fake.script.trail;
    const i = trail.indexOf('VCPU_STATE');
    expect(trail.slice(i, i + 3)).toEqual(['VCPU_STATE', 'POSTCOPY_START', 'GO']);
    expect(differingPages(ramImage(o.guest), o.fake.ram, o.fake.pageSize)).toEqual([]);
    expect(o.resumes).toBe(0);
  });

  it('ERROR instead of READY at POSTCOPY_START: the destination never ran it, the guest resumes on the source', async () => {
    const o = await toFake(
      { script: [{ at: 'POSTCOPY_START', do: 'error', code: 'RESOURCE_LIMIT' }] },
      { postcopyGoWithStart: true },
    );
    expect(o.report.status).toBe('failed');
    expect(o.report.error?.code).toBe('RESOURCE_LIMIT');
    expect(o.fake.resumed).toBe(false);
    expect(o.guest.running).toBe(true);
    expect(o.resumes).toBe(1);
  });

  it('the link drops at POSTCOPY_START (GO lost with it): RECONCILE finds no running copy, the guest goes back to the source', async () => {
    const o = await toFake(
      { script: [{ at: 'POSTCOPY_START', do: 'drop' }] },
      { postcopyGoWithStart: true, reconcileTimeoutMs: 5000 },
    );
    expect(o.report.status).toBe('failed');
    expect(o.fake.script.trail).toContain('RECONCILE');
    expect(o.fake.resumed).toBe(false);
    expect(o.guest.running).toBe(true);
    expect(o.resumes).toBe(1);
  });
});

describe('post-copy switch-over: the destination ready before the pause', () => {
  it.runIf(process.platform === 'linux')(
    'a pure post-copy has no APPLIED: the destination raises its switch-over priority with SWITCHOVER_ACK, which the pause follows',
    async () => {
      const tid = kernelThreadId()!;
      const allowed = mayRaise(tid);
      const guest = await testGuest();
      guest.resume();
      const h = track(new DestinationHarness());
      const { conn, done } = h.connect();
      // Source and destination share this thread: look when the source has read the ACK, before its own pause.
      let atAck: { inWindow: boolean; raised: boolean } | undefined;
      const expectFrame = conn.expect.bind(conn);
      vi.spyOn(conn, 'expect').mockImplementation(async (command, ...rest) => {
        const f = await expectFrame(command, ...rest);
        if (command === Command.SWITCHOVER_ACK)
          atAck = { inWindow: inPausedWindow(), raised: raisedThreadIds().includes(tid) };
        return f;
      });
      const r = await runSource(
        sourceRun(
          guest,
          conn,
          { strategy: 'postcopy', postcopyGoWithStart: true },
          { redial: async () => h.connect().conn },
        ),
      );
      await done;
      expect(r.status).toBe('completed');
      expect(atAck).toBeDefined();
      expect(atAck?.inWindow).toBe(false); // the source has not paused yet
      expect(atAck?.raised).toBe(allowed);
      expect(raisedThreadIds()).toEqual([]); // released with the window
    },
  );
});
