import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { watchBlackout } from './blackout.js';
import type { QmpClient, QmpEvent } from './qmp.js';

/** Stands in for a QMP connection: only its `event` emissions are used. */
function fakeQmp(): QmpClient & { send(event: string, seconds: number, microseconds: number): void } {
  const e = new EventEmitter() as EventEmitter & { send(event: string, s: number, us: number): void };
  e.send = (event, seconds, microseconds) =>
    e.emit('event', { event, data: {}, timestamp: { seconds, microseconds } } satisfies QmpEvent);
  return e as unknown as QmpClient & { send(event: string, s: number, us: number): void };
}

describe('QEMU blackout from QMP event stamps (STOP on the source → RESUME on the destination)', () => {
  it('is the difference of the two stamps, to the microsecond; events before the stop are not this switch-over', async () => {
    const source = fakeQmp();
    const dest = fakeQmp();
    const w = watchBlackout(source, dest);
    dest.send('RESUME', 99, 0); // before the source stopped: not the migrated guest's start
    source.send('STOP', 100, 999_500);
    source.send('STOP', 100, 999_900); // only the first stop counts
    dest.send('RESUME', 101, 2_250);
    expect(await w.finish(1000)).toBeCloseTo(2.75, 6);
    expect(source.listenerCount('event')).toBe(0);
    expect(dest.listenerCount('event')).toBe(0);
  });

  it('waits for a RESUME that comes after the migration ended, up to the timeout', async () => {
    const source = fakeQmp();
    const dest = fakeQmp();
    const w = watchBlackout(source, dest);
    source.send('STOP', 5, 0);
    const answer = w.finish(5000);
    setTimeout(() => dest.send('RESUME', 5, 1_500), 20);
    expect(await answer).toBeCloseTo(1.5, 6);
    expect(await w.finish(0)).toBeCloseTo(1.5, 6); // idempotent
  });

  it('is undefined when the destination never resumed, or the source never stopped', async () => {
    const a = watchBlackout(fakeQmp(), fakeQmp());
    expect(await a.finish(0)).toBeUndefined();
    const source = fakeQmp();
    const b = watchBlackout(source, fakeQmp());
    source.send('STOP', 1, 0);
    expect(await b.finish(10)).toBeUndefined();
  });
});
