/**
 * The switch-over's accounting, real source → real destination over an in-memory link: the source pauses only
 * after SWITCHOVER_ACK, the report's `switchover` steps add up to the downtime, and the destination's own times come
 * back in RESUMED. No timing bounds: only that the figures exist and are consistent.
 */
import { describe, expect, it } from 'vitest';
import { runSource } from './source/index.js';
import {
  DestinationHarness,
  disposeAfterEach,
  expectSwitchoverSteps,
  sourceRun,
  testGuest,
} from './testing/index.js';

const track = disposeAfterEach();

/** Index of the first event whose text (after the timestamp) starts with `prefix`. */
function eventIndex(events: readonly string[], prefix: string): number {
  return events.findIndex((e) => e.replace(/^\d+\.\d{6}s /, '').startsWith(prefix));
}

describe('switch-over accounting', () => {
  it.each([
    ['pre-copy', {}],
    ['cold', { strategy: 'cold' as const }],
    ['pre-copy, goWithDigest without a way to reconcile (GO after READY)', { goWithDigest: true }],
  ])('%s: SWITCHOVER_ACK before the pause; steps add up to the downtime', async (_name, options) => {
    const guest = await testGuest();
    guest.resume();
    const h = track(new DestinationHarness());
    const { conn, done } = h.connect();
    const r = await runSource(sourceRun(guest, conn, options));
    await done;
    expect(r.status).toBe('completed');
    const ack = eventIndex(r.events, 'the destination is ready for switch-over (SWITCHOVER_ACK)');
    const paused = eventIndex(r.events, 'guest paused');
    expect(ack).toBeGreaterThanOrEqual(0);
    expect(paused).toBeGreaterThan(ack);
    const s = expectSwitchoverSteps(r);
    expect(s.goWithDigest).toBe(false);
  });

  it('goWithDigest, with a destination that can reconcile: GO rides with the digest, the guest resumes there once', async () => {
    const guest = await testGuest();
    guest.resume();
    const h = track(new DestinationHarness());
    const { conn, done } = h.connect();
    const redial = async () => h.connect().conn;
    const r = await runSource(sourceRun(guest, conn, { goWithDigest: true }, { redial }));
    await done;
    expect(r.status).toBe('completed');
    expect(r.verified).toBe(true);
    expect(r.switchover?.goWithDigest).toBe(true);
    expect(h.resumed).toHaveLength(1);
    expect(guest.running).toBe(false);
    expect(
      eventIndex(r.events, 'switch-over: last pages, vCPU state and digest sent (with GO)'),
    ).toBeGreaterThan(0);
  });

  it('by default (goWithDigest: false): GO only after READY, even when the destination can reconcile', async () => {
    const guest = await testGuest();
    guest.resume();
    const h = track(new DestinationHarness());
    const { conn, done } = h.connect();
    const redial = async () => h.connect().conn;
    // The default: a dead or hung destination before READY leaves the guest running on the source.
    const r = await runSource(sourceRun(guest, conn, {}, { redial }));
    await done;
    expect(r.status).toBe('completed');
    expect(r.switchover?.goWithDigest).toBe(false);
    expect(h.resumed).toHaveLength(1);
    expect(eventIndex(r.events, 'switch-over: last pages, vCPU state and digest sent')).toBeGreaterThan(0);
    expect(eventIndex(r.events, 'switch-over: last pages, vCPU state and digest sent (with GO)')).toBe(-1);
  });
});
