/**
 * The real destination (destination.ts) against a scripted source (testing/fake-source.ts), in one process over an
 * in-memory link: for each protocol state, what happens when the source sends normally, drops, stalls, corrupts or
 * reports an error there. The safety property throughout: the guest resumes here only after GO, at most once; before
 * GO any fault discards the partial copy; after READY a lost link holds the verified copy until a verdict.
 */
import { describe, expect, it, vi } from 'vitest';
import { MigrationError } from '../errors.js';
import { Guest } from '../guest/index.js';
import { ramEquals } from '../guest/oracle.js';
import type { IncomingMigration } from './destination.js';
import { Capability, Command, type Hello } from './protocol/index.js';
import {
  DestinationHarness,
  disposeAfterEach,
  expireWhenWaiting,
  FakeSource,
  type FakeSourceOptions,
  testGuest,
  useFakeClock,
} from './testing/index.js';

const track = disposeAfterEach(() => vi.restoreAllMocks());

interface Outcome {
  m: IncomingMigration | undefined;
  fake: FakeSource;
  h: DestinationHarness;
  /** Guest.resume calls on this side (the fake's own guest never resumes). */
  resumes: number;
}

/** A guest paused after 300 steps of its workload: RAM worth migrating, and a state to carry. */
async function pausedGuest(): Promise<Guest> {
  const g = await testGuest();
  await g.runToStep(300);
  return g;
}

/** The fake source migrates a guest to the real destination, as `options` scripts it. */
async function migrate(
  options: FakeSourceOptions = {},
  h = new DestinationHarness(),
  during: (fake: FakeSource, h: DestinationHarness) => void = () => undefined,
): Promise<Outcome> {
  track(h);
  const fake = new FakeSource(await pausedGuest(), options);
  const resume = vi.spyOn(Guest.prototype, 'resume');
  const { conn, done } = h.connect();
  during(fake, h);
  void fake.run(conn);
  const m = await done;
  return { m, fake, h, resumes: resume.mock.calls.length };
}

/** Before GO: the copy here is discarded with `code`, and no guest ever ran here. */
function discarded(o: Outcome, code: string): void {
  expect(o.m?.phase).toBe('discarded');
  expect(o.m?.error?.code).toBe(code);
  expect(o.h.resumed).toEqual([]);
  expect(o.resumes).toBe(0);
}

/** Pauses the migrated guest and checks it against the source guest run to the same steps: byte for byte. */
async function sameAsSource(o: Outcome): Promise<void> {
  const [moved] = o.h.resumed;
  await moved!.pause();
  const steps = moved!.steps();
  await o.fake.guest.runToStep(steps);
  expect(ramEquals(moved!.ram, o.fake.guest.ram)).toEqual({ equal: true, firstDifferentPage: -1 });
  expect(moved!.state()).toEqual(o.fake.guest.state());
}

describe('real destination, scripted source: the happy paths verify byte for byte', () => {
  it('pre-copy: resumed once, after GO; equal to the source guest run to the same steps', async () => {
    const o = await migrate();
    expect(o.m?.phase).toBe('done');
    expect(o.fake.result.answers).toEqual(['HELLO_ACK', 'READY', 'RESUMED']);
    expect(o.h.resumed).toHaveLength(1);
    expect(o.resumes).toBe(1);
    await sameAsSource(o);
  });

  it('post-copy: the guest runs here at once, faults its pages in, COMPLETE verified; byte for byte', async () => {
    const o = await migrate({ strategy: 'postcopy' });
    expect(o.m?.phase).toBe('done');
    expect(o.fake.result.verified).toBe(true);
    expect(o.h.resumed).toHaveLength(1);
    expect(o.resumes).toBe(1);
    await sameAsSource(o);
  });
});

describe('real destination, scripted source: last pages after VCPU_STATE (a small stop-and-copy in one write)', () => {
  it('applied here once the sink is drained, and byte for byte', async () => {
    const o = await migrate({ framesAfterState: 2 });
    expect(o.m?.phase).toBe('done');
    expect(o.fake.result.answers).toEqual(['HELLO_ACK', 'READY', 'RESUMED']);
    expect(o.resumes).toBe(1);
    await sameAsSource(o);
  });

  it('every page after the state: byte for byte', async () => {
    const o = await migrate({ framesAfterState: 1_000 });
    expect(o.m?.phase).toBe('done');
    await sameAsSource(o);
  });

  it('a corrupt PAGES frame after the state: CHECKSUM, nothing runs here', async () => {
    const o = await migrate({ framesAfterState: 1_000, script: [{ at: 'PAGES', nth: 2, do: 'corrupt' }] });
    discarded(o, 'CHECKSUM');
  });

  it('a digest that does not match: DIGEST_MISMATCH, nothing runs here', async () => {
    discarded(await migrate({ framesAfterState: 2, digest: { ram: '0123456789abcdef' } }), 'DIGEST_MISMATCH');
  });
});

describe('real destination, scripted source: HELLO', () => {
  it.each<[string, Partial<Hello>]>([
    ['VERSION', { versionMin: 5, versionMax: 6 }],
    ['CAPABILITY', { capabilities: Capability.FRAME_BINDING | (1 << 20) }],
    ['PROTOCOL', { blocks: [10] }],
  ])('%s: refused, nothing allocated runs, the source is told', async (code, hello) => {
    const o = await migrate({ hello });
    discarded(o, code);
    expect(o.fake.result.error?.code).toBe(code);
  });

  it('a guest larger than --max-ram: RESOURCE_LIMIT', async () => {
    const h = new DestinationHarness({ maxRamBytes: 1 << 20, idleTimeoutMs: 60_000 });
    discarded(await migrate({}, h), 'RESOURCE_LIMIT');
  });

  it('link dropped instead of HELLO: CONNECTION_LOST', async () => {
    discarded(await migrate({ script: [{ at: 'HELLO', do: 'drop' }] }), 'CONNECTION_LOST');
  });

  it('HELLO corrupt: CHECKSUM', async () => {
    discarded(await migrate({ script: [{ at: 'HELLO', do: 'corrupt' }] }), 'CHECKSUM');
  });

  it('GO instead of HELLO: PROTOCOL', async () => {
    discarded(await migrate({ script: [{ at: 'HELLO', do: 'wrong', command: Command.GO }] }), 'PROTOCOL');
  });

  it('no HELLO: TIMEOUT after the hello timeout (fake time)', async () => {
    useFakeClock();
    const o = await migrate({ script: [{ at: 'HELLO', do: 'silence' }] }, undefined, (fake) =>
      expireWhenWaiting(fake.script.reached('HELLO'), 30_000),
    );
    discarded(o, 'TIMEOUT');
  });
});

describe('real destination, scripted source: pages and rounds', () => {
  it('link dropped at the second PAGES frame: CONNECTION_LOST, the partial copy discarded', async () => {
    discarded(await migrate({ script: [{ at: 'PAGES', nth: 2, do: 'drop' }] }), 'CONNECTION_LOST');
  });

  it('a corrupt PAGES frame: CHECKSUM, nothing of it applied', async () => {
    discarded(await migrate({ script: [{ at: 'PAGES', nth: 2, do: 'corrupt' }] }), 'CHECKSUM');
  });

  it('a PAGES frame from another stream: FOREIGN_FRAME', async () => {
    discarded(await migrate({ script: [{ at: 'PAGES', nth: 2, do: 'foreign' }] }), 'FOREIGN_FRAME');
  });

  it('GO while pages flow: PROTOCOL', async () => {
    discarded(await migrate({ script: [{ at: 'ROUND', do: 'wrong', command: Command.GO }] }), 'PROTOCOL');
  });

  it('the source cancels (CANCEL): CANCELLED', async () => {
    discarded(
      await migrate({ script: [{ at: 'ROUND', do: 'wrong', command: Command.CANCEL }] }),
      'CANCELLED',
    );
  });

  it('the source reports an error (ERROR): its code', async () => {
    const o = await migrate({ script: [{ at: 'ROUND', do: 'error', code: 'NOT_CONVERGED' }] });
    discarded(o, 'NOT_CONVERGED');
  });

  it('the source goes silent mid-round: TIMEOUT after the idle timeout (fake time)', async () => {
    useFakeClock();
    const o = await migrate({ script: [{ at: 'PAGES', nth: 2, do: 'silence' }] }, undefined, (fake) =>
      expireWhenWaiting(fake.script.reached('PAGES', 2), 60_000),
    );
    discarded(o, 'TIMEOUT');
  });
});

describe('real destination, scripted source: switch-over', () => {
  it('a digest that does not match: DIGEST_MISMATCH, the source is told, nothing runs here', async () => {
    const o = await migrate({ digest: { ram: '0123456789abcdef' } });
    discarded(o, 'DIGEST_MISMATCH');
    expect(o.fake.result.error?.code).toBe('DIGEST_MISMATCH');
  });

  it('SWITCHOVER late (after an explicit event): the destination waits, verifies and resumes once', async () => {
    let release: () => void = () => undefined;
    const until = new Promise<void>((r) => {
      release = r;
    });
    let waiting: string | undefined;
    const o = await migrate({ script: [{ at: 'SWITCHOVER', do: 'delay', until }] }, undefined, (fake, h) => {
      void fake.script.reached('SWITCHOVER').then(() => {
        waiting = h.migration?.phase;
        release();
      });
    });
    expect(waiting).toBe('receiving'); // nothing verified or resumed while the source was late
    expect(o.m?.phase).toBe('done');
    expect(o.h.resumed).toHaveLength(1);
    expect(o.resumes).toBe(1);
  });

  it('the vCPU state is loaded as it arrives, before SWITCHOVER (out of the downtime), and resumed once after it', async () => {
    const load = vi.spyOn(Guest.prototype, 'loadState');
    let release: () => void = () => undefined;
    const until = new Promise<void>((r) => {
      release = r;
    });
    let loadsBeforeSwitchover = -1;
    const o = await migrate({ script: [{ at: 'SWITCHOVER', do: 'delay', until }] }, undefined, (fake) => {
      void fake.script.reached('SWITCHOVER').then(async () => {
        const end = Date.now() + 10_000;
        while (load.mock.calls.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
        loadsBeforeSwitchover = load.mock.calls.length;
        release();
      });
    });
    expect(loadsBeforeSwitchover).toBe(1);
    expect(load).toHaveBeenCalledTimes(1);
    expect(o.m?.phase).toBe('done');
    expect(o.h.resumed).toHaveLength(1);
    expect(o.resumes).toBe(1);
    await sameAsSource(o);
  });

  it('a corrupt VCPU_STATE: CHECKSUM', async () => {
    discarded(await migrate({ script: [{ at: 'VCPU_STATE', do: 'corrupt' }] }), 'CHECKSUM');
  });

  it('the source keeps the guest after READY (ERROR instead of GO): discarded, not held', async () => {
    const o = await migrate({ script: [{ at: 'GO', do: 'error', code: 'CANCELLED' }] });
    discarded(o, 'CANCELLED');
    expect(o.h.held).toEqual([]);
  });

  it('link lost after READY: the verified copy is held; RECONCILE query → OWNER held → GO resumes it, once', async () => {
    const h = track(new DestinationHarness());
    const fake = new FakeSource(await pausedGuest(), { script: [{ at: 'GO', do: 'drop' }] });
    const resume = vi.spyOn(Guest.prototype, 'resume');
    const first = h.connect();
    void fake.run(first.conn);
    await vi.waitFor(() => expect(h.held).toHaveLength(1), { timeout: 30_000 });
    expect(h.migration?.phase).toBe('held');
    expect(resume).not.toHaveBeenCalled();
    const owner = await fake.reconcile(h.connect().conn, 'query');
    expect(owner).toBe('held');
    const m = await first.done;
    expect(m?.phase).toBe('done');
    expect(h.resumed).toHaveLength(1);
    expect(resume).toHaveBeenCalledTimes(1);
    // Asked again, the destination says where the guest runs.
    expect(await fake.reconcile(h.connect().conn, 'query')).toBe('resumed');
  });

  it('link lost after READY, then RECONCILE abort: the held copy is discarded, never resumed', async () => {
    const h = track(new DestinationHarness());
    const fake = new FakeSource(await pausedGuest(), { script: [{ at: 'GO', do: 'drop' }] });
    const resume = vi.spyOn(Guest.prototype, 'resume');
    const first = h.connect();
    void fake.run(first.conn);
    await vi.waitFor(() => expect(h.held).toHaveLength(1), { timeout: 30_000 });
    expect(await fake.reconcile(h.connect().conn, 'abort')).toBe('discarded');
    const m = await first.done;
    expect(m?.phase).toBe('discarded');
    expect(h.resumed).toEqual([]);
    expect(resume).not.toHaveBeenCalled();
    expect(await fake.reconcile(h.connect().conn, 'query')).toBe('discarded');
  });

  it('held, then its operator adopts it (the source host is gone): resumed here once; RECONCILE then says resumed', async () => {
    const h = track(new DestinationHarness());
    const fake = new FakeSource(await pausedGuest(), { script: [{ at: 'GO', do: 'drop' }] });
    const resume = vi.spyOn(Guest.prototype, 'resume');
    const first = h.connect();
    void fake.run(first.conn);
    await vi.waitFor(() => expect(h.held).toHaveLength(1), { timeout: 30_000 });
    h.ownership.handle(fake.migrationId)!.adopt();
    const m = await first.done;
    expect(m?.phase).toBe('done');
    expect(h.resumed).toHaveLength(1);
    expect(resume).toHaveBeenCalledTimes(1);
    expect(await fake.reconcile(h.connect().conn, 'query')).toBe('resumed');
  });

  it('held, then its operator discards it: never resumed; RECONCILE then says discarded', async () => {
    const h = track(new DestinationHarness());
    const fake = new FakeSource(await pausedGuest(), { script: [{ at: 'GO', do: 'drop' }] });
    const resume = vi.spyOn(Guest.prototype, 'resume');
    const first = h.connect();
    void fake.run(first.conn);
    await vi.waitFor(() => expect(h.held).toHaveLength(1), { timeout: 30_000 });
    h.ownership
      .handle(fake.migrationId)!
      .discard(new MigrationError('CANCELLED', 'the operator discarded it'));
    const m = await first.done;
    expect(m?.phase).toBe('discarded');
    expect(h.resumed).toEqual([]);
    expect(resume).not.toHaveBeenCalled();
    expect(await fake.reconcile(h.connect().conn, 'query')).toBe('discarded');
  });

  it('no GO after READY: held once the handover timeout passes (fake time), never resumed on its own', async () => {
    useFakeClock();
    const h = track(new DestinationHarness());
    const fake = new FakeSource(await pausedGuest(), { script: [{ at: 'GO', do: 'silence' }] });
    const resume = vi.spyOn(Guest.prototype, 'resume');
    expireWhenWaiting(fake.script.reached('GO'), 15_000);
    void fake.run(h.connect().conn);
    await vi.waitFor(() => expect(h.held).toHaveLength(1), { timeout: 30_000 });
    expect(h.held[0]!.error?.code).toBe('TIMEOUT');
    expect(resume).not.toHaveBeenCalled();
  });

  it('RECONCILE for a migration this agent never saw: unknown', async () => {
    const h = track(new DestinationHarness());
    const fake = new FakeSource(await pausedGuest());
    expect(await fake.reconcile(h.connect().conn, 'query')).toBe('unknown');
  });
});

describe('real destination, scripted source: post-copy', () => {
  it('ERROR instead of GO after POSTCOPY_START: discarded, never resumed', async () => {
    discarded(
      await migrate({ strategy: 'postcopy', script: [{ at: 'GO', do: 'error', code: 'CANCELLED' }] }),
      'CANCELLED',
    );
  });

  it('the link breaks while pages are pushed: the guest waits here (postcopy-paused), RECOVER resumes the push; byte for byte', async () => {
    const h = track(new DestinationHarness());
    const fake = new FakeSource(await pausedGuest(), {
      strategy: 'postcopy',
      script: [{ at: 'PAGES', nth: 3, do: 'drop' }],
    });
    const resume = vi.spyOn(Guest.prototype, 'resume');
    const first = h.connect();
    void fake.run(first.conn);
    await vi.waitFor(() => expect(h.paused.size).toBe(1), { timeout: 30_000 });
    expect(h.migration?.phase).toBe('postcopy-paused');
    const r = await fake.recover(h.connect().conn);
    expect(r.verified).toBe(true);
    const m = await first.done;
    expect(m?.phase).toBe('done');
    expect(m?.recoveries).toBe(1);
    expect(resume).toHaveBeenCalledTimes(1);
    await sameAsSource({ m, fake, h, resumes: 1 });
  });

  it('the source goes silent mid-push: after the idle timeout (fake time) the guest waits here, postcopy-paused', async () => {
    useFakeClock();
    const h = track(new DestinationHarness());
    const fake = new FakeSource(await pausedGuest(), {
      strategy: 'postcopy',
      script: [{ at: 'PAGES', nth: 3, do: 'silence' }],
    });
    const resume = vi.spyOn(Guest.prototype, 'resume');
    expireWhenWaiting(fake.script.reached('PAGES', 3), 60_000);
    void fake.run(h.connect().conn);
    await vi.waitFor(() => expect(h.paused.size).toBe(1), { timeout: 30_000 });
    expect(h.migration?.phase).toBe('postcopy-paused');
    expect(h.migration?.error?.code).toBe('TIMEOUT');
    expect(h.resumed).toHaveLength(1); // it ran before the push stopped, and it stays
    expect(resume).toHaveBeenCalledTimes(1);
  });

  it('RECOVER with the wrong token: RECOVER_REFUSED; the paused migration keeps waiting', async () => {
    const h = track(new DestinationHarness());
    const fake = new FakeSource(await pausedGuest(), {
      strategy: 'postcopy',
      script: [{ at: 'PAGES', nth: 3, do: 'drop' }],
    });
    void fake.run(h.connect().conn);
    await vi.waitFor(() => expect(h.paused.size).toBe(1), { timeout: 30_000 });
    const impostor = new FakeSource(fake.guest, { strategy: 'postcopy' });
    Object.assign(impostor, { migrationId: fake.migrationId });
    const r = await impostor.recover(h.connect().conn);
    expect(r.error?.code).toBe('RECOVER_REFUSED');
    expect(h.migration?.phase).toBe('postcopy-paused');
  });

  it('POSTCOPY_END with a digest that does not match: COMPLETE unverified, DIGEST_MISMATCH; the guest stays here', async () => {
    const o = await migrate({ strategy: 'postcopy', digest: { ram: '0123456789abcdef' } });
    expect(o.fake.result.verified).toBe(false);
    expect(o.m?.error?.code).toBe('DIGEST_MISMATCH');
    expect(o.h.resumed).toHaveLength(1);
    expect(o.resumes).toBe(1);
  });
});
