/**
 * The real source (source/) against a scripted destination (testing/fake-destination.ts), in one process over an
 * in-memory link: for each protocol state, what happens when the destination answers, drops, stalls, corrupts or
 * refuses there. The safety property throughout: before GO the guest ends up running on the source exactly as it
 * was (resumed at most once, only if the migration paused it); after GO the source never resumes it unless the
 * destination said it dropped its copy.
 */
import { describe, expect, it, vi } from 'vitest';
import type { Guest } from '../guest/index.js';
import type { MigrationOptions } from './options.js';
import { Capability, Command } from './protocol/index.js';
import { runSource, type SourceRun } from './source/index.js';
import type { MigrationReport } from './stats.js';
import {
  differingPages,
  disposeAfterEach,
  expireWhenWaiting,
  FakeDestination,
  type FakeDestinationOptions,
  ramImage,
  sourceRun,
  testGuest,
  useFakeClock,
} from './testing/index.js';

const track = disposeAfterEach();

interface Outcome {
  report: MigrationReport;
  guest: Guest;
  fake: FakeDestination;
  resumes: number;
  pauses: number;
}

/** A running guest migrated by the real source to a fake destination scripted by `fake`. */
async function migrate(
  fake: FakeDestinationOptions,
  options: Partial<MigrationOptions> = {},
  extra: (d: FakeDestination, run: SourceRun & { abort: AbortController }) => Partial<SourceRun> = () => ({}),
  opts: {
    running?: boolean;
    during?: (d: FakeDestination, run: SourceRun & { abort: AbortController }) => void;
  } = {},
): Promise<Outcome> {
  const guest = await testGuest();
  if (opts.running !== false) guest.resume();
  const d = track(new FakeDestination(fake));
  let resumes = 0;
  let pauses = 0;
  const resume = guest.resume.bind(guest);
  const pause = guest.pause.bind(guest);
  vi.spyOn(guest, 'resume').mockImplementation(() => {
    resumes++;
    resume();
  });
  vi.spyOn(guest, 'pause').mockImplementation(() => {
    pauses++;
    return pause();
  });
  const run = sourceRun(guest, d.connect(), options);
  Object.assign(run, extra(d, run));
  opts.during?.(d, run);
  const report = await runSource(run);
  return { report, guest, fake: d, resumes, pauses };
}

/** Before GO: the migration failed with `code` and the guest runs on the source, resumed once if it was paused. */
function keptOnSource(o: Outcome, code: string): void {
  expect(o.report.status).toBe(code === 'CANCELLED' ? 'cancelled' : 'failed');
  expect(o.report.error?.code).toBe(code);
  expect(o.guest.running).toBe(true);
  expect(o.resumes).toBe(o.pauses > 0 ? 1 : 0);
  expect(o.fake.resumed).toBe(false);
}

describe('real source, scripted destination: the happy paths verify byte for byte', () => {
  it('pre-copy: completed, verified, and the destination holds the source RAM exactly', async () => {
    const o = await migrate({});
    expect(o.report.status).toBe('completed');
    expect(o.report.verified).toBe(true);
    expect(o.fake.verified).toBe(true);
    expect(o.guest.running).toBe(false); // handed over: paused here for good
    expect(o.resumes).toBe(0);
    expect(differingPages(ramImage(o.guest), o.fake.ram, o.fake.pageSize)).toEqual([]);
    expect(o.fake.script.trail[0]).toBe('HELLO');
    const trail = o.fake.script.trail;
    // The pause comes once the destination has answered APPLIED, asked right after the last round; a small
    // stop-and-copy then leaves in one write, the vCPU state first, then the last pages and the digest
    // (handover.ts, beginOneWrite, says why).
    const applied = trail.lastIndexOf('APPLIED');
    expect(applied).toBe(trail.lastIndexOf('ROUND') + 1);
    expect(trail.indexOf('VCPU_STATE')).toBe(applied + 1);
    expect(trail.slice(-2)).toEqual(['SWITCHOVER', 'GO']);
    for (const f of trail.slice(applied + 2, -2)) expect(f).toMatch(/^PAGES/);
  });

  it('cold: every page, then VCPU_STATE with the digest; verified byte for byte', async () => {
    const o = await migrate({}, { strategy: 'cold' });
    expect(o.report.status).toBe('completed');
    expect(o.fake.verified).toBe(true);
    expect(differingPages(ramImage(o.guest), o.fake.ram, o.fake.pageSize)).toEqual([]);
    const trail = o.fake.script.trail;
    expect(trail.indexOf('VCPU_STATE')).toBe(trail.length - 3);
    expect(trail.slice(-3)).toEqual(['VCPU_STATE', 'SWITCHOVER', 'GO']);
    const pages = trail.slice(trail.indexOf('HELLO') + 1, -3).filter((f) => f.startsWith('PAGES'));
    expect(pages.length).toBeGreaterThan(0);
  });

  it.each<[string, Partial<MigrationOptions>]>([
    ['XBZRLE and zstd', { xbzrle: true, xbzrleCacheBytes: 1 << 20, compress: 'zstd' }],
    ['lz4, hot-last', { compress: 'lz4', pageOrder: 'hot-last' }],
    ['RLE, full verify', { compress: 'rle', verify: 'full' }],
  ])('pre-copy, %s: completed, verified, byte for byte', async (_name, options) => {
    const o = await migrate({}, { ...options, maxRounds: 4 });
    expect(o.report.status).toBe('completed');
    expect(o.fake.verified).toBe(true);
    expect(differingPages(ramImage(o.guest), o.fake.ram, o.fake.pageSize)).toEqual([]);
  });
});

describe('real source, scripted destination: HELLO', () => {
  it('link dropped instead of HELLO_ACK: CONNECTION_LOST, the guest runs on the source', async () => {
    keptOnSource(await migrate({ script: [{ at: 'HELLO', do: 'drop' }] }), 'CONNECTION_LOST');
  });

  it.each([['VERSION'], ['CAPABILITY'], ['RESOURCE_LIMIT'], ['GUEST_BUSY']] as const)(
    'ERROR %s instead of HELLO_ACK: the peer’s code, the guest runs on the source',
    async (code) => {
      const o = await migrate({ script: [{ at: 'HELLO', do: 'error', code }] });
      keptOnSource(o, code);
      expect(o.report.error?.message).toMatch(/^peer reported/);
    },
  );

  it('a capability the source needs is not granted (XBZRLE): CAPABILITY', async () => {
    const o = await migrate({ withhold: Capability.XBZRLE }, { xbzrle: true, xbzrleCacheBytes: 1 << 20 });
    keptOnSource(o, 'CAPABILITY');
    expect(o.fake.received).toEqual(['HELLO']); // nothing sent after the refusal is a migration frame
  });

  it('OWNER_RECONCILE not granted is no refusal: the migration completes without it', async () => {
    const o = await migrate({ withhold: Capability.OWNER_RECONCILE }, {}, (d) => ({
      redial: async () => d.connect(),
    }));
    expect(o.report.status).toBe('completed');
  });

  it('HELLO_ACK corrupt: CHECKSUM', async () => {
    keptOnSource(await migrate({ script: [{ at: 'HELLO', do: 'corrupt' }] }), 'CHECKSUM');
  });

  it('READY instead of HELLO_ACK: PROTOCOL', async () => {
    const o = await migrate({ script: [{ at: 'HELLO', do: 'wrong', command: Command.READY }] });
    keptOnSource(o, 'PROTOCOL');
    expect(o.report.error?.message).toMatch(/expected HELLO_ACK but the peer sent READY/);
  });

  it('HELLO_ACK choosing a protocol version the source does not speak: VERSION', async () => {
    keptOnSource(await migrate({ version: 9 }), 'VERSION');
  });

  it('no answer to HELLO: TIMEOUT after the handshake timeout (15 s of fake time)', async () => {
    useFakeClock();
    const o = await migrate({ script: [{ at: 'HELLO', do: 'silence' }] }, {}, undefined, {
      during: (d) => expireWhenWaiting(d.script.reached('HELLO'), 15_000),
    });
    keptOnSource(o, 'TIMEOUT');
    expect(o.report.error?.message).toMatch(/HELLO_ACK/);
  });
});

describe('real source, scripted destination: pre-copy rounds', () => {
  it('link dropped at the second PAGES frame: CONNECTION_LOST, the guest runs on the source', async () => {
    // Frames of 64 KiB: round 1 (a MiB of working set) takes several.
    const o = await migrate(
      { script: [{ at: 'PAGES', nth: 2, do: 'drop' }] },
      { framePayloadBytes: 64 * 1024 },
    );
    keptOnSource(o, 'CONNECTION_LOST');
  });

  it('ERROR during a round: the destination’s code, not CONNECTION_LOST', async () => {
    const o = await migrate(
      { script: [{ at: 'PAGES', nth: 1, do: 'error', code: 'RESOURCE_LIMIT' }] },
      { framePayloadBytes: 64 * 1024 },
    );
    keptOnSource(o, 'RESOURCE_LIMIT');
  });

  it('a corrupt frame from the destination during a round: CHECKSUM', async () => {
    keptOnSource(await migrate({ script: [{ at: 'ROUND', do: 'corrupt' }] }), 'CHECKSUM');
  });

  it('a frame from another stream during a round: FOREIGN_FRAME', async () => {
    keptOnSource(await migrate({ script: [{ at: 'ROUND', do: 'foreign' }] }), 'FOREIGN_FRAME');
  });

  it('an unexpected frame during a round (RESUMED): PROTOCOL at the next answer the source waits for', async () => {
    const o = await migrate({ script: [{ at: 'ROUND', do: 'wrong', command: Command.RESUMED }] });
    keptOnSource(o, 'PROTOCOL');
  });

  it('cancel while pages flow: CANCELLED, the destination is told (ERROR), the guest runs on the source', async () => {
    const o = await migrate({}, { framePayloadBytes: 64 * 1024 }, undefined, {
      during: (d, run) => {
        void d.script.reached('PAGES').then(() => run.abort.abort());
      },
    });
    keptOnSource(o, 'CANCELLED');
  });
});

describe('real source, scripted destination: switch-over (SWITCHOVER → READY)', () => {
  it('digest mismatch (ERROR DIGEST_MISMATCH): the paused guest resumes on the source, once', async () => {
    const o = await migrate({ script: [{ at: 'SWITCHOVER', do: 'error', code: 'DIGEST_MISMATCH' }] });
    keptOnSource(o, 'DIGEST_MISMATCH');
    expect(o.pauses).toBeGreaterThan(0);
  });

  it('link dropped instead of READY: CONNECTION_LOST, the paused guest resumes on the source', async () => {
    const o = await migrate({ script: [{ at: 'SWITCHOVER', do: 'drop' }] });
    keptOnSource(o, 'CONNECTION_LOST');
    expect(o.pauses).toBeGreaterThan(0);
  });

  it('RESUMED instead of READY: PROTOCOL', async () => {
    keptOnSource(
      await migrate({ script: [{ at: 'SWITCHOVER', do: 'wrong', command: Command.RESUMED }] }),
      'PROTOCOL',
    );
  });

  it('READY corrupt: CHECKSUM; READY unbound: FOREIGN_FRAME', async () => {
    keptOnSource(await migrate({ script: [{ at: 'SWITCHOVER', do: 'corrupt' }] }), 'CHECKSUM');
    keptOnSource(await migrate({ script: [{ at: 'SWITCHOVER', do: 'foreign' }] }), 'FOREIGN_FRAME');
  });

  it('READY late (after an explicit event): the migration waits and completes', async () => {
    let release: () => void = () => undefined;
    const until = new Promise<void>((r) => {
      release = r;
    });
    const o = await migrate({ script: [{ at: 'SWITCHOVER', do: 'delay', until }] }, {}, undefined, {
      during: (d) => {
        void d.script.reached('SWITCHOVER').then(() => setTimeout(release, 50));
      },
    });
    expect(o.report.status).toBe('completed');
    expect(o.report.downtimeMs).toBeGreaterThanOrEqual(40);
  });

  it('--timeout while the destination does not answer READY: TIMEOUT, the destination is told, the guest resumes here', async () => {
    useFakeClock();
    const o = await migrate(
      { script: [{ at: 'SWITCHOVER', do: 'silence' }] },
      { timeoutMs: 20_000 },
      undefined,
      {
        during: (d) => expireWhenWaiting(d.script.reached('SWITCHOVER'), 20_000),
      },
    );
    keptOnSource(o, 'TIMEOUT');
    expect(o.report.error?.message).toMatch(/--timeout/);
  });

  it('no READY: TIMEOUT after the switch-over timeout (60 s of fake time), the guest resumes on the source', async () => {
    useFakeClock();
    const o = await migrate({ script: [{ at: 'SWITCHOVER', do: 'silence' }] }, {}, undefined, {
      during: (d) => expireWhenWaiting(d.script.reached('SWITCHOVER'), 60_000),
    });
    keptOnSource(o, 'TIMEOUT');
  });
});

describe('real source, scripted destination: GO → RESUMED and ownership (RECONCILE → OWNER)', () => {
  it('link lost after GO, no way to reconcile: OWNER_UNKNOWN, the guest stays paused on the source', async () => {
    const o = await migrate({ script: [{ at: 'GO', do: 'drop' }] });
    expect(o.report.status).toBe('failed');
    expect(o.report.error?.code).toBe('OWNER_UNKNOWN');
    expect(o.guest.running).toBe(false);
    expect(o.resumes).toBe(0);
  });

  it('link lost after GO, the destination holds the guest: GO again on the RECONCILE link, completed', async () => {
    const o = await migrate({ script: [{ at: 'GO', do: 'drop' }] }, {}, (d) => ({
      redial: async () => d.connect(),
    }));
    expect(o.report.status).toBe('completed');
    expect(o.fake.script.trail).toEqual(expect.arrayContaining(['RECONCILE', 'GO#2']));
    expect(o.fake.resumed).toBe(true);
    expect(o.guest.running).toBe(false);
    expect(o.resumes).toBe(0);
  });

  it('GO on the RECONCILE link lost too: the source asks again, and completes on the second', async () => {
    const o = await migrate(
      {
        script: [
          { at: 'GO', do: 'drop' },
          { at: 'GO', nth: 2, do: 'drop' },
        ],
      },
      {},
      (d) => ({ redial: async () => d.connect() }),
    );
    expect(o.report.status).toBe('completed');
    expect(o.fake.script.count('RECONCILE')).toBe(2);
    expect(o.fake.script.count('GO')).toBe(3);
    expect(o.resumes).toBe(0);
  });

  it('link lost after GO, the destination dropped its copy (OWNER discarded): the guest resumes on the source, once', async () => {
    const o = await migrate({ owner: 'discarded', script: [{ at: 'GO', do: 'drop' }] }, {}, (d) => ({
      redial: async () => d.connect(),
    }));
    expect(o.report.status).toBe('failed');
    expect(o.report.error?.code).toBe('CONNECTION_LOST');
    expect(o.guest.running).toBe(true);
    expect(o.resumes).toBe(1);
  });

  it('RESUMED sent, then the link breaks: completed (the guest runs on the destination)', async () => {
    const o = await migrate({ script: [{ at: 'GO', do: 'normal', thenDrop: true }] });
    expect(o.report.status).toBe('completed');
    expect(o.guest.running).toBe(false);
    expect(o.resumes).toBe(0);
  });

  it('no RESUMED: after the handover timeout (fake time) RECONCILE finds the guest resumed there: completed', async () => {
    useFakeClock();
    // The fake stays silent at GO but counts as resumed once asked (it "ran" the guest and lost RESUMED).
    const o = await migrate(
      { owner: 'resumed', script: [{ at: 'GO', do: 'silence' }] },
      { handoverTimeoutMs: 5000 },
      (d) => ({ redial: async () => d.connect() }),
      {
        during: (d) => expireWhenWaiting(d.script.reached('GO'), 5000),
      },
    );
    expect(o.report.status).toBe('completed');
    expect(o.fake.script.count('RECONCILE')).toBeGreaterThanOrEqual(1);
    expect(o.resumes).toBe(0);
  });

  it('RESUMED corrupt: the source settles it by RECONCILE (the guest runs there): completed, never resumed here', async () => {
    const o = await migrate({ script: [{ at: 'GO', do: 'corrupt' }] }, {}, (d) => ({
      redial: async () => d.connect(),
    }));
    expect(o.report.status).toBe('completed');
    expect(o.fake.script.count('RECONCILE')).toBe(1);
    expect(o.guest.running).toBe(false);
    expect(o.resumes).toBe(0);
  });

  it('READY instead of RESUMED, no way to reconcile: OWNER_UNKNOWN, the guest stays paused here', async () => {
    const o = await migrate({ script: [{ at: 'GO', do: 'wrong', command: Command.READY }] });
    expect(o.report.error?.code).toBe('OWNER_UNKNOWN');
    expect(o.report.error?.message).toMatch(/PROTOCOL after GO/);
    expect(o.guest.running).toBe(false);
    expect(o.resumes).toBe(0);
  });

  it('cancel once GO is on its way is too late: completed, the guest runs on the destination', async () => {
    let release: () => void = () => undefined;
    const until = new Promise<void>((r) => {
      release = r;
    });
    const o = await migrate({ script: [{ at: 'GO', do: 'delay', until }] }, {}, undefined, {
      during: (d, run) => {
        void d.script.reached('GO').then(() => {
          run.abort.abort();
          release();
        });
      },
    });
    expect(o.report.status).toBe('completed');
    expect(o.resumes).toBe(0);
  });

  it('the destination unreachable after GO: OWNER_UNKNOWN once reconcileTimeoutMs passes (fake time)', async () => {
    useFakeClock({ performance: true });
    let dials = 0;
    const o = await migrate(
      { script: [{ at: 'GO', do: 'drop' }] },
      { reconcileTimeoutMs: 30_000 },
      (d) => ({
        redial: async () => {
          dials++;
          return d.connect();
        },
      }),
      {
        during: (d) => {
          void d.script.reached('GO').then(() => {
            d.reachable = false;
          });
          expireWhenWaiting(d.script.reached('GO'), 1000);
        },
      },
    );
    expect(o.report.error?.code).toBe('OWNER_UNKNOWN');
    expect(dials).toBeGreaterThan(1); // it kept trying, with backoff, until the deadline
    expect(o.fake.script.count('RECONCILE')).toBe(0);
    expect(o.guest.running).toBe(false);
    expect(o.resumes).toBe(0);
  });
});

describe('real source, scripted destination: post-copy', () => {
  it('page requests are served first, every page arrives, COMPLETE verified: byte for byte', async () => {
    const o = await migrate({ faults: [1000, 1001, 700] }, { strategy: 'postcopy' });
    expect(o.report.status).toBe('completed');
    expect(o.report.verified).toBe(true);
    expect(o.report.postcopy.requestedPages).toBe(3);
    expect(differingPages(ramImage(o.guest), o.fake.ram, o.fake.pageSize)).toEqual([]);
  });

  it('postcopy-preempt: requests (even one right behind RESUMED) are answered on the preempt link; byte for byte', async () => {
    const o = await migrate(
      { faults: [1000, 1001, 700] },
      { strategy: 'postcopy', postcopyPreempt: true },
      (d) => ({ preempt: async () => d.connect() }),
    );
    expect(o.report.error).toBeUndefined();
    expect(o.report.status).toBe('completed');
    expect(o.report.verified).toBe(true);
    expect(o.report.postcopy.requestedPages).toBe(3);
    expect(o.report.postcopy.preemptPages).toBe(3);
    expect(o.fake.script.trail).toContain('PREEMPT');
    expect(o.fake.connections).toBe(2);
    expect(differingPages(ramImage(o.guest), o.fake.ram, o.fake.pageSize)).toEqual([]);
  });

  it('postcopy-preempt refused by the destination: CAPABILITY before any page, the guest stays here', async () => {
    const o = await migrate(
      { withhold: Capability.POSTCOPY_PREEMPT },
      { strategy: 'postcopy', postcopyPreempt: true },
      (d) => ({ preempt: async () => d.connect() }),
    );
    keptOnSource(o, 'CAPABILITY');
    expect(o.report.error?.message).toMatch(/postcopy-preempt/);
    expect(o.fake.script.trail).not.toContain('PAGES');
  });

  it('hybrid: pre-copy rounds, then post-copy; byte for byte', async () => {
    // Round 1 cannot converge: every page is dirty again when it ends (marked while its first frame is read).
    const o = await migrate(
      {},
      { strategy: 'hybrid', postcopyAfterRounds: 1, downtimeLimitMs: 1e-9 },
      undefined,
      {
        during: (d, run) => {
          void d.script.reached('PAGES').then(() => run.guest.dirtyLog.markAll());
        },
      },
    );
    expect(o.report.status).toBe('completed');
    expect(o.report.verified).toBe(true);
    expect(o.fake.script.trail).toContain('POSTCOPY_START');
    expect(differingPages(ramImage(o.guest), o.fake.ram, o.fake.pageSize)).toEqual([]);
  });

  it('COMPLETE corrupt: handled as a broken link, recovered over a new one, completed', async () => {
    const o = await migrate(
      { script: [{ at: 'POSTCOPY_END', do: 'corrupt' }] },
      { strategy: 'postcopy' },
      (d) => ({ recover: async () => d.connect() }),
    );
    expect(o.report.status).toBe('completed');
    expect(o.report.postcopy.recoveries).toBe(1);
    expect(o.fake.script.trail.slice(-2)).toEqual(['RECOVER', 'POSTCOPY_END#2']);
    expect(o.resumes).toBe(0);
  });

  it('a malformed PAGE_REQUEST mid-push: the stream is refused (PROTOCOL), not the process crashed; no recovery: POSTCOPY_LINK_LOST', async () => {
    const o = await migrate(
      { script: [{ at: 'PAGES', nth: 2, do: 'wrong', command: Command.PAGE_REQUEST }] },
      { strategy: 'postcopy' },
    );
    expect(o.report.error?.code).toBe('POSTCOPY_LINK_LOST');
    expect(o.report.error?.message).toMatch(/PAGE_REQUEST/);
    expect(o.guest.running).toBe(false);
    expect(o.resumes).toBe(0);
  });

  it('a malformed PAGE_REQUEST mid-push, with recovery: a new link (RECOVER), completed byte for byte', async () => {
    const o = await migrate(
      { script: [{ at: 'PAGES', nth: 2, do: 'wrong', command: Command.PAGE_REQUEST }] },
      { strategy: 'postcopy' },
      (d) => ({ recover: async () => d.connect() }),
    );
    expect(o.report.status).toBe('completed');
    expect(o.report.postcopy.recoveries).toBe(1);
    expect(differingPages(ramImage(o.guest), o.fake.ram, o.fake.pageSize)).toEqual([]);
  });

  it('ERROR instead of READY at POSTCOPY_START: the guest resumes on the source', async () => {
    const o = await migrate(
      { script: [{ at: 'POSTCOPY_START', do: 'error', code: 'RESOURCE_LIMIT' }] },
      { strategy: 'postcopy' },
    );
    keptOnSource(o, 'RESOURCE_LIMIT');
  });

  it('the link breaks while pages are pushed: recovered over a new link (RECOVER), completed byte for byte', async () => {
    const o = await migrate(
      { script: [{ at: 'PAGES', nth: 3, do: 'drop' }], faults: [900] },
      { strategy: 'postcopy' },
      (d) => ({ recover: async () => d.connect() }),
    );
    expect(o.report.status).toBe('completed');
    expect(o.report.postcopy.recoveries).toBe(1);
    expect(o.fake.script.count('RECOVER')).toBe(1);
    expect(differingPages(ramImage(o.guest), o.fake.ram, o.fake.pageSize)).toEqual([]);
    expect(o.resumes).toBe(0);
  });

  it('the link breaks while pages are pushed, no recovery: POSTCOPY_LINK_LOST, the guest is not resumed on the source', async () => {
    const o = await migrate({ script: [{ at: 'PAGES', nth: 3, do: 'drop' }] }, { strategy: 'postcopy' });
    expect(o.report.error?.code).toBe('POSTCOPY_LINK_LOST');
    expect(o.guest.running).toBe(false);
    expect(o.resumes).toBe(0);
  });

  it('RECOVER refused: RECOVER_REFUSED, the guest is not resumed on the source', async () => {
    const o = await migrate(
      {
        script: [
          { at: 'PAGES', nth: 3, do: 'drop' },
          { at: 'RECOVER', do: 'error', code: 'RECOVER_REFUSED' },
        ],
      },
      { strategy: 'postcopy' },
      (d) => ({ recover: async () => d.connect() }),
    );
    expect(o.report.error?.code).toBe('RECOVER_REFUSED');
    expect(o.guest.running).toBe(false);
    expect(o.resumes).toBe(0);
  });

  it('ERROR instead of COMPLETE (DIGEST_MISMATCH): failed, unverified, the peer’s code said; not resumed here', async () => {
    const o = await migrate(
      { script: [{ at: 'POSTCOPY_END', do: 'error', code: 'DIGEST_MISMATCH' }] },
      {
        strategy: 'postcopy',
      },
    );
    expect(o.report.status).toBe('failed');
    expect(o.report.verified).toBe(false);
    expect(o.report.error?.code).toBe('POSTCOPY_LINK_LOST');
    expect(o.report.error?.message).toMatch(/DIGEST_MISMATCH/);
    expect(o.guest.running).toBe(false);
    expect(o.resumes).toBe(0);
  });
});
