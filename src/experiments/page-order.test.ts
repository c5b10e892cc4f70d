/** The page-order experiment's plan and its targets table (issue 17, point 5), on made-up measurements. */
import { describe, expect, it } from 'vitest';
import { keepSwitchover, switchoverOf, switchoverSplit } from './measure.js';
import { pageOrder, SVARD, svardDowntime } from './page-order.js';
import { medianPagesOwnMs, pagesOwnMs, STEP_COLUMNS, stepRows } from './page-order-steps.js';
import { experimentConfig, medianMeasured, planOf } from './runner.js';
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

  it('runs in parts: --cells keeps the cells whose id contains one of the given strings', () => {
    const ids = planOf('page-order', { quick: true, cells: ['trace:redis/', `${SVARD}/`] }).map((c) => c.id);
    expect(ids).toHaveLength(9);
    expect(ids.every((id) => id.startsWith('trace:redis/') || id.startsWith(`${SVARD}/`))).toBe(true);
    expect(() => planOf('page-order', { quick: true, cells: ['no-such-cell'] })).toThrow(/--dry-run/);
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
      cell(SVARD, 'plain', {
        downtimeMs: 200,
        bytes: 1000,
        migrationTimeMs: 4000,
        stopCopyBytes: 100_000,
        switchoverPageMs: 190,
        switchoverFixedMs: 10,
      }),
      cell(SVARD, 'xbzrle', { downtimeMs: 30, stopCopyBytes: 9000 }),
      // traffic −26% exactly (met), time −30% (not), downtime 10× (met), stop-copy bytes 10× (met)
      cell(SVARD, 'hot-last+xbzrle', {
        downtimeMs: 20,
        bytes: 740,
        migrationTimeMs: 2800,
        stopCopyBytes: 10_000,
        switchoverPageMs: 10,
        switchoverFixedMs: 10,
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
    // 190 → 10 ms of pages: 19×
    expect(verdict(SVARD, "downtime's page-dependent part")).toBe('met');
  });

  it("sets Svärd et al.'s bar against classic pre-copy (no converged tail) when it ran, plain shown beside it", () => {
    const classicCell = pageOrder.plan(quick).find((c) => c.id === `${SVARD}/classic`)!;
    expect(classicCell.spec.options?.convergeTail).toBe(false);
    // One commit point for every variant: KVM's (GO with the digest), so no variant pays a READY round trip.
    for (const c of pageOrder.plan(quick)) expect(c.spec.options?.goWithDigest).toBe(true);
    expect(pageOrder.plan(quick).find((c) => c.id === `${SVARD}/plain`)!.spec.options).not.toHaveProperty(
      'convergeTail',
    );
    const results = [
      cell(SVARD, 'classic', {
        downtimeMs: 40,
        bytes: 1000,
        migrationTimeMs: 4000,
        stopCopyBytes: 9_000_000,
      }),
      cell(SVARD, 'plain', { downtimeMs: 8, bytes: 1200, migrationTimeMs: 4600, stopCopyBytes: 1_300_000 }),
      cell(SVARD, 'xbzrle', { downtimeMs: 30, stopCopyBytes: 9000 }),
      cell(SVARD, 'hot-last+xbzrle', {
        downtimeMs: 3.5,
        bytes: 600,
        migrationTimeMs: 2500,
        stopCopyBytes: 7000,
      }),
    ];
    const s = pageOrder.summarise(results, quick);
    const t = s.tables.find((x) => x.slug === 'page-order-targets')!;
    const verdict = (target: string) => t.rows.find((r) => r[0] === SVARD && String(r[1]) === target)?.[4];
    // 40 / 3.5 = 11.4× against classic (met); against plain it would be 2.3×.
    expect(verdict('downtime, hot-last+xbzrle vs classic')).toBe('met');
    expect(verdict('traffic, hot-last+xbzrle vs classic')).toBe('met');
    expect(verdict('total time, hot-last+xbzrle vs classic')).toBe('met');
    expect(t.rows.some((r) => String(r[1]).endsWith('vs plain'))).toBe(false);
    const svard = s.tables.find((x) => x.slug === 'page-order-svard-downtime')!;
    expect(svard.rows.map((r) => r[0])).toEqual(['classic', 'plain', 'hot-last+xbzrle']);
    expect(svard.rows.map((r) => r[3])).toEqual(['n/a', 'n/a', 'n/a']); // no repetition kept its steps here
    expect(s.findings.some((f) => f.includes("Svärd et al.'s baseline) 40 ms"))).toBe(true);
  });

  it('prints hot-last + XBZRLE beside XBZRLE alone and plain pre-copy, with p99 and the load, per workload', () => {
    const results = [
      cell('gap', 'plain', { downtimeMs: 100, stopCopyBytes: 8192, loadAvg1: 1.5 }),
      cell('gap', 'xbzrle', { downtimeMs: 20, stopCopyBytes: 4096, loadAvg1: 2 }),
      cell('gap', 'hot-last+xbzrle', { downtimeMs: 10, stopCopyBytes: 1024, loadAvg1: 0.5 }),
    ];
    const t = pageOrder.summarise(results, quick).tables.find((x) => x.slug === 'page-order-side-by-side')!;
    expect(t.rows).toEqual([['gap', 100, 20, 10, 10, '8 / 4 / 1', '2.0× (met)', '10.0×', '0.5–2.0']]);
  });

  it('splits a downtime into the last pages (written, in transit, drained) and the fixed switch-over cost', () => {
    const switchover = {
      pauseMs: 1,
      lastPagesMs: 10,
      stateMs: 0.5,
      digestMs: 0.5,
      sendMs: 0.5,
      // 6 ms of transit and READY's way back, 2 drain, 1 verify, 0.5 state load
      checkMs: 9.5,
      ackMs: 1,
      goWithDigest: false,
      destination: { drainMs: 2, verifyMs: 1, loadStateMs: 0.5 },
    };
    const split = switchoverSplit({ downtimeMs: 23, switchover });
    expect(split.switchoverPageMs).toBeCloseTo(10 + 6 + 2);
    expect(split.switchoverFixedMs).toBeCloseTo(5);
    // Without the destination's times, only the source's writing of the last pages counts.
    expect(
      switchoverSplit({ downtimeMs: 23, switchover: { ...switchover, destination: undefined } }),
    ).toEqual({
      switchoverPageMs: 10,
      switchoverFixedMs: 13,
    });
  });

  it("splits Svärd et al.'s downtime bar into the page-dependent part and the fixed switch-over cost", () => {
    const m = (downtimeMs: number, switchoverPageMs: number) => ({
      ...medianMeasured([]),
      downtimeMs,
      switchoverPageMs,
      switchoverFixedMs: downtimeMs - switchoverPageMs,
    });
    // plain: 15 ms of pages + 5 fixed; hot-last + XBZRLE: 0.5 + 5
    const d = svardDowntime(m(20, 15), m(5.5, 0.5));
    expect(d.total).toBeCloseTo(20 / 5.5);
    expect(d.page).toBeCloseTo(30);
    expect(d.plainNeededMs).toBeCloseTo(55);
    // 5 + 15 ≥ 10 (F + 0.5) ⇔ F ≤ 10 / 9
    expect(d.fixedAllowedMs).toBeCloseTo(10 / 9);
    expect(svardDowntime(m(20, 4), m(5.5, 0.5)).fixedAllowedMs).toBeLessThan(0);
  });
});

describe('page-order: the switch-over steps per repetition', () => {
  const steps = (pauseMs: number, applyMs?: number) => ({
    pauseMs,
    stateMs: 0.1,
    lastPagesMs: 0.3,
    digestMs: 0.1,
    sendMs: 0.2,
    checkMs: 1,
    ackMs: 0.4,
    goWithDigest: false,
    destination: { stateMs: 0.6, ...(applyMs === undefined ? {} : { applyMs }), goMs: 0.3 },
  });

  it('keeps each repetition’s steps (results.json) out of the medians and CSV columns', () => {
    const m = { ...medianMeasured([]), status: 'completed', verified: true, downtimeMs: 2.6 } as Measured;
    keepSwitchover(m, { switchover: steps(0.07, 0.2) });
    expect(switchoverOf(m)?.destination?.applyMs).toBe(0.2);
    expect(JSON.parse(JSON.stringify(m)).switchover.pauseMs).toBe(0.07);
    expect(Object.keys(medianMeasured([m, m]))).not.toContain('switchover');
    keepSwitchover(m, {}); // a report without steps (post-copy) leaves what is there
    expect(switchoverOf(m)).toBeDefined();
  });

  it('tabulates each step’s median over the repetitions that have steps', () => {
    const reps = [0.05, 0.5, 0.07].map((pause, i) => {
      const m = { ...medianMeasured([]), status: 'completed', verified: true } as Measured;
      keepSwitchover(m, { switchover: steps(pause, i === 1 ? undefined : 0.2 + i) });
      return m;
    });
    reps.push({ ...medianMeasured([]), status: 'completed' } as Measured); // no steps: not counted
    const result: CellResult = { id: 'x', labels: {}, measured: reps[0]!, repetitions: reps };
    const rows = stepRows([{ label: 'hot-last+xbzrle', result }]);
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    expect(row.slice(0, 3)).toEqual(['hot-last+xbzrle', 3, 0.07]);
    const col = (name: string) => row[2 + STEP_COLUMNS.findIndex(([n]) => n === name)];
    expect(col('dst: of which last pages applied')).toBe(1.2); // median of 0.2 and 2.2 (one repetition lacks it)
    expect(col('written → READY')).toBe(1);
    expect(stepRows([{ label: 'none', result: { ...result, repetitions: [reps[3]!] } }])).toEqual([]);
  });

  it("counts as the pages' own work the source's last pages and the destination's apply and drain, not the wake-ups", () => {
    // 0.3 ms of last pages, 0.2 applied, 0.05 drained; the 1 ms "written → READY" (transit, the destination's
    // state decode, READY's way back) is not theirs.
    const t = { ...steps(0.07, 0.2), destination: { stateMs: 0.6, applyMs: 0.2, drainMs: 0.05 } };
    expect(pagesOwnMs(t)).toBeCloseTo(0.55);
    expect(pagesOwnMs({ ...t, destination: undefined })).toBeCloseTo(0.3);
    const rep = (lastPagesMs: number) => {
      const m = { ...medianMeasured([]), status: 'completed', verified: true } as Measured;
      keepSwitchover(m, { switchover: { ...t, lastPagesMs } });
      return m;
    };
    const reps = [rep(0.1), rep(5), rep(0.3)];
    expect(medianPagesOwnMs({ id: 'x', labels: {}, measured: reps[0]!, repetitions: reps })).toBeCloseTo(
      0.55,
    );
    expect(medianPagesOwnMs({ id: 'x', labels: {}, measured: reps[0]!, repetitions: [] })).toBeUndefined();
  });
});
