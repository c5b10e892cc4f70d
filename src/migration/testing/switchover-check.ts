/** The check every switch-over test makes of `report.switchover`: its steps add up to the downtime. */
import { expect } from 'vitest';
import type { MigrationReport } from '../stats.js';

/** The source's steps are never negative and add up to the downtime; the destination's steps came back too. */
export function expectSwitchoverSteps(r: MigrationReport): NonNullable<MigrationReport['switchover']> {
  const s = r.switchover!;
  expect(s).toBeDefined();
  const steps = [s.pauseMs, s.lastPagesMs, s.stateMs, s.digestMs, s.sendMs, s.checkMs, s.ackMs];
  for (const x of steps) expect(x).toBeGreaterThanOrEqual(0);
  // No timing bounds: only consistency.
  const sum = steps.reduce((a, b) => a + b, 0);
  expect(Math.abs(sum - r.downtimeMs)).toBeLessThan(1e-6 * Math.max(1, r.downtimeMs));
  const d = s.destination!;
  expect(d).toBeDefined();
  for (const k of ['drainMs', 'verifyMs', 'loadStateMs', 'goMs', 'resumeMs', 'totalMs'] as const) {
    expect(d[k]).toBeGreaterThanOrEqual(0);
  }
  return s;
}
