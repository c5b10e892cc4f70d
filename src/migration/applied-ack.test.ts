/**
 * Capability APPLIED_ACK (source/applied-ack.ts, destination-applied.ts): the source pauses the guest only once the
 * destination has applied everything sent, so the destination's backlog of the last live pass is not downtime.
 * The real source against a scripted destination, and the real destination against a scripted source.
 */
import { describe, expect, it, vi } from 'vitest';
import { Guest } from '../guest/index.js';
import { ramEquals } from '../guest/oracle.js';
import type { MigrationOptions } from './options.js';
import { Capability, Command } from './protocol/index.js';
import { APPLIED_WAIT } from './source/applied-ack.js';
import { runSource } from './source/index.js';
import {
  DestinationHarness,
  differingPages,
  disposeAfterEach,
  FakeDestination,
  type FakeDestinationOptions,
  FakeSource,
  type FakeSourceOptions,
  ramImage,
  sourceRun,
  testGuest,
} from './testing/index.js';

const timeoutBefore = APPLIED_WAIT.timeoutMs;
const track = disposeAfterEach(() => {
  APPLIED_WAIT.timeoutMs = timeoutBefore;
  vi.restoreAllMocks();
});

/** A running guest migrated by the real source to a fake destination; `during` may act on the fake meanwhile. */
async function migrate(
  fake: FakeDestinationOptions,
  options: Partial<MigrationOptions> = {},
  during: (d: FakeDestination, guest: Guest, pauses: () => number) => void = () => undefined,
) {
  const guest = await testGuest();
  guest.resume();
  const d = track(new FakeDestination(fake));
  let pauses = 0;
  const pause = guest.pause.bind(guest);
  vi.spyOn(guest, 'pause').mockImplementation(() => {
    pauses++;
    return pause();
  });
  const run = sourceRun(guest, d.connect(), options);
  during(d, guest, () => pauses);
  const report = await runSource(run);
  return { report, guest, fake: d, pauses };
}

function released(): { until: Promise<void>; release: () => void } {
  let release: () => void = () => undefined;
  const until = new Promise<void>((r) => {
    release = r;
  });
  return { until, release };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('APPLIED_ACK, the real source', () => {
  it('pauses the guest only after the destination answered APPLIED (the answer held back: still running)', async () => {
    const { until, release } = released();
    let seen: { running: boolean; pauses: number; frames: string[] } | undefined;
    const o = await migrate({ script: [{ at: 'APPLIED', do: 'delay', until }] }, {}, (d, guest, pauses) => {
      void d.script.reached('APPLIED').then(async () => {
        await sleep(50); // long enough for a source that did not wait to have paused and sent the state
        seen = { running: guest.running, pauses: pauses(), frames: [...d.received] };
        release();
      });
    });
    expect(o.report.status).toBe('completed');
    expect(o.fake.verified).toBe(true);
    expect(differingPages(ramImage(o.guest), o.fake.ram, o.fake.pageSize)).toEqual([]);
    expect(seen).toEqual({ running: true, pauses: 0, frames: expect.any(Array) });
    expect(seen?.frames).not.toContain('VCPU_STATE');
    // In the stream: the question after the last round, the pause's frames after the answer.
    const trail = o.fake.script.trail;
    expect(trail.indexOf('APPLIED')).toBeGreaterThan(trail.lastIndexOf('ROUND'));
    expect(trail.indexOf('VCPU_STATE')).toBeGreaterThan(trail.lastIndexOf('APPLIED'));
    expect(o.report.events.some((e) => e.includes('the destination applied everything sent so far'))).toBe(
      true,
    );
  });

  it('hot-last + XBZRLE: each live pass after the decision is acknowledged before the next, and before the pause', async () => {
    const o = await migrate(
      {},
      { pageOrder: 'hot-last', xbzrle: true, xbzrleCacheBytes: 4 << 20, maxRounds: 4 },
    );
    expect(o.report.status).toBe('completed');
    expect(o.fake.verified).toBe(true);
    expect(differingPages(ramImage(o.guest), o.fake.ram, o.fake.pageSize)).toEqual([]);
    const trail = o.fake.script.trail;
    expect(o.fake.script.count('APPLIED')).toBeGreaterThanOrEqual(1);
    // Nothing but the last pages and the state (first, when the last pages go in one write with it: handover.ts)
    // between the last answer and the switch-over, and no question asked twice about the same bytes (each APPLIED
    // follows pages or a round).
    const last = trail.findLastIndex((t) => t.startsWith('APPLIED'));
    expect(trail.indexOf('VCPU_STATE')).toBeGreaterThan(last);
    for (const f of trail.slice(last + 1, -2)) expect(f).toMatch(/^(PAGES|VCPU_STATE)/);
    expect(trail.slice(-2)).toEqual(['SWITCHOVER', 'GO']);
    trail.forEach((t, i) => {
      if (t.startsWith('APPLIED')) expect(trail[i - 1]).toMatch(/^(PAGES|ROUND)/);
    });
  });

  it('a destination that does not grant it (an older agent): no APPLIED is sent, the migration completes', async () => {
    const o = await migrate({ withhold: Capability.APPLIED_ACK }, { pageOrder: 'hot-last', xbzrle: true });
    expect(o.report.status).toBe('completed');
    expect(o.fake.verified).toBe(true);
    expect(o.fake.hello!.capabilities & Capability.APPLIED_ACK).toBe(Capability.APPLIED_ACK);
    expect(o.fake.received).not.toContain('APPLIED');
  });

  it('no answer within the bound: pauses anyway, and the late answer is read before READY (completed)', async () => {
    APPLIED_WAIT.timeoutMs = 30;
    const { until, release } = released();
    const o = await migrate({ script: [{ at: 'APPLIED', do: 'delay', until }] }, {}, (_d, _guest, pauses) => {
      // The answer comes only once the source has paused without it (its state and last pages queue behind).
      const poll = setInterval(() => {
        if (pauses() === 0) return;
        clearInterval(poll);
        release();
      }, 5);
    });
    expect(o.report.status).toBe('completed');
    expect(o.fake.verified).toBe(true);
    expect(o.pauses).toBe(1);
    expect(o.report.events.some((e) => /APPLIED 1: no answer within 30 ms/.test(e))).toBe(true);
  });

  it('the link lost while the answer is awaited: CONNECTION_LOST, never paused, the guest runs on the source', async () => {
    const o = await migrate({ script: [{ at: 'APPLIED', do: 'drop' }] });
    expect(o.report.status).toBe('failed');
    expect(o.report.error?.code).toBe('CONNECTION_LOST');
    expect(o.pauses).toBe(0);
    expect(o.guest.running).toBe(true);
    expect(o.fake.resumed).toBe(false);
  });

  it('another frame in place of the answer: PROTOCOL, never paused, the guest runs on the source', async () => {
    const o = await migrate({ script: [{ at: 'APPLIED', do: 'wrong', command: Command.READY }] });
    expect(o.report.status).toBe('failed');
    expect(o.report.error?.code).toBe('PROTOCOL');
    expect(o.pauses).toBe(0);
    expect(o.guest.running).toBe(true);
  });
});

describe('APPLIED_ACK, the real destination', () => {
  /** The guest the destination builds for the incoming migration (caught as it is made), and the source's. */
  let incoming: Guest | undefined;
  let source: Guest | undefined;

  /** The fake source migrates a guest paused at step 300 to the real destination. */
  async function toDestination(options: FakeSourceOptions) {
    const h = track(new DestinationHarness());
    const g = await testGuest();
    await g.runToStep(300);
    source = g;
    incoming = undefined;
    const begin = Guest.beginIncoming.bind(Guest);
    vi.spyOn(Guest, 'beginIncoming').mockImplementation((...args) => {
      const r = begin(...args);
      incoming = r.guest;
      return r;
    });
    const fake = new FakeSource(g, options);
    const { conn, done } = h.connect();
    void fake.run(conn);
    const m = await done;
    return { m, fake, h };
  }

  it('answers APPLIED only once every page sent before it is in RAM, then completes', async () => {
    let atAnswer: { equal: boolean; firstDifferentPage: number } | undefined;
    const o = await toDestination({
      applied: 'asked',
      // Checked when the answer is read, before anything else is sent: the destination's RAM must equal the source's.
      onApplied: () => {
        atAnswer = ramEquals(incoming!.ram, source!.ram);
      },
      pagesPerFrame: 16, // many frames: a destination answering on receipt would still have some in its sink queue
    });
    expect(o.m?.phase).toBe('done');
    expect(o.fake.result.answers).toEqual(['HELLO_ACK', 'APPLIED', 'READY', 'RESUMED']);
    expect(atAnswer).toEqual({ equal: true, firstDifferentPage: -1 });
    expect(o.h.resumed).toHaveLength(1);
  });

  it('APPLIED from a source that did not ask for the capability: PROTOCOL, the copy is discarded', async () => {
    const o = await toDestination({ applied: 'unasked' });
    expect(o.m?.phase).toBe('discarded');
    expect(o.m?.error?.code).toBe('PROTOCOL');
    expect(o.h.resumed).toEqual([]);
  });
});
