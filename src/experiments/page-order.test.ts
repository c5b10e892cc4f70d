/** The page-order experiment's plan and its targets table (issue 17, point 5), on made-up measurements. */
import { describe, expect, it } from 'vitest';
import { pageOrder, SVARD } from './page-order.js';
import { experimentConfig, medianMeasured } from './runner.js';
import type { CellResult, Measured } from './types.js';

const quick = experimentConfig({ quick: true });

function cell(workload: string, variant: string, m: Partial<Measured>): CellResult {
  const measured = { ...medianMeasured([]), status: 'completed', verified: true, ...m };
  return { id: `${workload}/${variant}`, labels: { workload, variant }, measured, repetitions: [measured] };
}

describe('page-order experiment', () => {
  it("plans the shipped traces and Svärd et al.'s yardstick (gap, 128 MiB, 64 MiB written at 6000 pages/s, 32 MiB/s)", () => {
    const cells = pageOrder.plan(quick);
    const ids = cells.map((c) => c.id);
    expect(ids).toContain('trace:redis/hot-last+xbzrle');
    const svard = cells.find((c) => c.id === `${SVARD}/plain`)!;
    expect(svard.spec.guest.ramBytes).toBe(128 * 2 ** 20);
    expect(svard.spec.guest.workload?.params).toMatchObject({
      workingSetBytes: 64 * 2 ** 20,
      writeRate: 6000,
    });
    expect(svard.spec.options?.maxBandwidth).toBe(32 * 2 ** 20);
  });

  it('judges each target against its bar', () => {
    const results = [
      cell('gap', 'plain', { downtimeMs: 100, bytes: 100, migrationTimeMs: 1000 }),
      cell('gap', 'xbzrle', { downtimeMs: 20, stopCopyBytes: 4000 }),
      cell('gap', 'hot-last+xbzrle', {
        downtimeMs: 25,
        stopCopyBytes: 3000,
        bytes: 50,
        migrationTimeMs: 600,
      }),
      cell(SVARD, 'plain', { downtimeMs: 200, bytes: 1000, migrationTimeMs: 4000, stopCopyBytes: 100_000 }),
      cell(SVARD, 'xbzrle', { downtimeMs: 30, stopCopyBytes: 9000 }),
      // traffic −26% exactly (met), time −30% (not), downtime 10× (met), stop-copy bytes 10× (met)
      cell(SVARD, 'hot-last+xbzrle', {
        downtimeMs: 20,
        bytes: 740,
        migrationTimeMs: 2800,
        stopCopyBytes: 10_000,
      }),
    ];
    const t = pageOrder.summarise(results, quick).tables.find((x) => x.slug === 'page-order-targets')!;
    const verdict = (w: string, target: string) =>
      t.rows.find((r) => r[0] === w && String(r[1]).startsWith(target))?.[4];
    expect(verdict('gap', 'downtime, hot-last+xbzrle vs xbzrle')).toBe('NOT met');
    expect(verdict('gap', 'stop-copy bytes, hot-last+xbzrle vs xbzrle')).toBe('met');
    expect(verdict(SVARD, 'downtime, hot-last+xbzrle vs xbzrle')).toBe('met');
    expect(verdict(SVARD, 'traffic')).toBe('met');
    expect(verdict(SVARD, 'total time')).toBe('NOT met');
    expect(verdict(SVARD, 'downtime, hot-last+xbzrle vs plain')).toBe('met');
    expect(verdict(SVARD, 'stop-copy bytes, hot-last+xbzrle vs plain')).toBe('met');
  });
});
