import { describe, expect, it } from 'vitest';
import { emptyReport } from '../../migration/stats.js';
import type { LiveSample } from '../live-events.js';
import { COMPARE_ROWS, compareTable, roundColumns, timeColumns } from './series.js';

const MiB = 1024 * 1024;

function sample(t: number, over: Partial<LiveSample> = {}): LiveSample {
  return {
    t,
    phase: 'precopy',
    round: 1,
    transferredBytes: 2 * MiB,
    remainingBytes: MiB,
    dirtyPages: 10,
    throughputMbps: 100,
    limitMbps: 0,
    expectedDowntimeMs: 50,
    downtimeLimitMs: 300,
    cacheHits: 0,
    cacheMisses: 0,
    xbzrleSavedBytes: 0,
    cap: 0,
    stepsPerSec: 1000,
    postcopyFaults: 0,
    powerW: null,
    powerLabel: null,
    ...over,
  };
}

function report(id: string, over: Record<string, unknown> = {}) {
  return {
    ...emptyReport({
      id,
      guestId: 'web',
      strategy: 'precopy',
      source: 'a:1',
      destination: 'b:2',
      verify: 'ledger',
      ramBytes: 64 * MiB,
      pageSize: 4096,
      downtimeLimitMs: 300,
      xbzrle: false,
      xbzrleCacheBytes: 0,
      cacheWays: 2,
      cacheSizing: 'static',
      pageOrder: 'address',
      compress: 'none',
      maxBandwidth: 0,
    }),
    ...over,
  };
}

describe('timeColumns', () => {
  it('turns samples into aligned columns with units: seconds, MiB, percent; gaps stay null', () => {
    const c = timeColumns([
      sample(0),
      sample(250, {
        cacheHits: 3,
        cacheMisses: 1,
        limitMbps: 1073.7,
        xbzrleSavedBytes: MiB,
        stepsPerSec: null,
      }),
    ]);
    expect(c.tS).toEqual([0, 0.25]);
    expect(c.transferredMiB).toEqual([2, 2]);
    expect(c.hitRatePct).toEqual([null, 75]);
    expect(c.limitMbps).toEqual([null, 1073.7]);
    expect(c.savedMiB).toEqual([0, 1]);
    expect(c.stepsPerSec).toEqual([1000, null]);
    for (const col of Object.values(c)) expect(col).toHaveLength(2);
  });

  it('keeps x strictly ascending (uPlot needs it): a repeated time keeps the later sample', () => {
    const c = timeColumns([
      sample(0),
      sample(100, { dirtyPages: 1, throughputMbps: 1 }),
      sample(100, { throughputMbps: 2 }),
    ]);
    expect(c.tS).toEqual([0, 0.1]);
    expect(c.throughputMbps).toEqual([100, 2]);
  });
});

describe('roundColumns', () => {
  it('one column per round figure', () => {
    const rows = [1, 2].map((round) => ({
      round,
      pagesSent: 100 / round,
      bytes: 0,
      dirtyPages: 10 / round,
      durationMs: 1,
      throughputMbps: 5,
      expectedDowntimeMs: 7,
      throttle: 0,
      heldPages: 0,
    }));
    expect(roundColumns(rows)).toEqual({
      round: [1, 2],
      pagesSent: [100, 50],
      dirtyPages: [10, 5],
      throughputMbps: [5, 5],
      expectedDowntimeMs: [7, 7],
    });
  });
});

describe('compareTable', () => {
  it('one row per figure, one value per migration, power labelled', () => {
    const a = report('a', { status: 'completed', verified: true, downtimeMs: 12.5, maxBandwidth: 32 * MiB });
    const b = report('b', {
      status: 'cancelled',
      error: { code: 'CANCELLED', message: 'migration cancelled by the operator' },
      energy: { source: { joules: 400, averageWatts: 125.04, label: 'modelled' }, sourceMeasured: null },
    });
    const rows = compareTable([a, b]);
    expect(rows).toHaveLength(COMPARE_ROWS.length);
    const row = (label: string) => rows.find((r) => r.label === label)!.values;
    expect(row('verified')).toEqual(['verified', 'not verified']);
    expect(row('downtime')).toEqual(['12.5 ms', '0.00 ms']);
    expect(row('bandwidth limit')).toEqual(['268 Mbit/s', 'unlimited']);
    expect(row('source power')).toEqual(['—', '125.0 W, 400 J (modelled)']);
    expect(row('error')[1]).toBe('CANCELLED: migration cancelled by the operator');
  });
});
