/**
 * When the destination takes the vCPU state's digest. Pre-copy compares it before the guest runs, so it is taken in
 * the paused window. Post-copy compares it only at POSTCOPY_END, so it is taken once the guest runs there, out of the
 * downtime; a mismatch must still fail the migration loudly (COMPLETE unverified, DIGEST_MISMATCH).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Guest } from '../guest/index.js';
import { runSource } from './source/index.js';
import { DestinationHarness, destroyTestGuests, FakeSource, sourceRun, testGuest } from './testing/index.js';

/** For each vCPU digest of a migrated state (not a warm-up's sample, whose registers are {r}): had the guest resumed? */
const digestCalls: { resumed: boolean }[] = [];
let resumedNow = (): boolean => false;

vi.mock('./ledger.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('./ledger.js')>();
  return {
    ...real,
    vcpuDigest: (state: { vcpus?: { registers?: Record<string, number> }[] }) => {
      const sample = state.vcpus?.[0]?.registers !== undefined && 'r' in state.vcpus[0].registers;
      if (!sample) digestCalls.push({ resumed: resumedNow() });
      return real.vcpuDigest(state);
    },
  };
});

const harnesses: DestinationHarness[] = [];
afterEach(async () => {
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
  await destroyTestGuests();
  digestCalls.length = 0;
  resumedNow = () => false;
  vi.restoreAllMocks();
});

async function migrate(strategy: 'precopy' | 'postcopy') {
  const guest = await testGuest();
  guest.resume();
  const h = new DestinationHarness();
  harnesses.push(h);
  // The destination's guest resumes here before onGuestResumed is called (after its sleep): watch resume itself.
  let resumes = 0;
  const resume = Guest.prototype.resume;
  vi.spyOn(Guest.prototype, 'resume').mockImplementation(function (this: Guest) {
    if (this !== guest) resumes++;
    resume.call(this);
  });
  resumedNow = () => resumes > 0;
  const { conn, done } = h.connect();
  const report = await runSource(
    sourceRun(guest, conn, { strategy }, { redial: async () => h.connect().conn }),
  );
  const m = await done;
  return { report, m, h };
}

describe("the destination's vCPU digest", () => {
  it('post-copy: taken after the guest resumed there (compared only at POSTCOPY_END), and the migration verified', async () => {
    const { report, m } = await migrate('postcopy');
    expect(report.status).toBe('completed');
    expect(report.verified).toBe(true);
    expect(m?.phase).toBe('done');
    // The destination's digest and the source's (at POSTCOPY_END): none inside the paused window.
    expect(digestCalls.length).toBeGreaterThanOrEqual(2);
    expect(digestCalls.filter((c) => !c.resumed)).toEqual([]);
  });

  it('pre-copy: taken before the guest resumes (the switch-over compares it first)', async () => {
    const { report } = await migrate('precopy');
    expect(report.status).toBe('completed');
    expect(report.verified).toBe(true);
    expect(digestCalls.some((c) => !c.resumed)).toBe(true);
  });

  it('post-copy with a vCPU digest that does not match at POSTCOPY_END: COMPLETE unverified, DIGEST_MISMATCH', async () => {
    const h = new DestinationHarness();
    harnesses.push(h);
    const g = await testGuest();
    await g.runToStep(300);
    const fake = new FakeSource(g, { strategy: 'postcopy', digest: { vcpu: '0'.repeat(64) } });
    const { conn, done } = h.connect();
    void fake.run(conn);
    const m = await done;
    expect(fake.result.verified).toBe(false);
    expect(m?.error?.code).toBe('DIGEST_MISMATCH');
    expect(h.resumed).toHaveLength(1);
  });
});
