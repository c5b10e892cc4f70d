/** Fixtures shared by the power session tests (capping.test.ts, host.test.ts); not part of the build. */
import type { PowerSessionOptions, PowerSessionReport } from './session-view.js';

export const MiB = 1024 * 1024;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The option fields a session applies, at MigrationOptions' defaults (src/migration/options.ts). */
export const OPTIONS: PowerSessionOptions = {
  capping: 'none',
  capControl: 'fixed',
  powerCap: 0,
  powerWindowMs: 1000,
  migrationCap: 0,
  dvfsGhz: 0,
  completionTargetMs: 0,
  powerModel: 'i7-920',
};
/** The report fields a session reads and fills, as a new migration report has them. */
export const newReport = (destination: string): PowerSessionReport => ({
  status: 'setup',
  totalTimeMs: 0,
  transferredBytes: 0,
  destination,
  events: [],
  cap: [],
  guest: { stepsPerSecBefore: 0, stepsPerSecDuring: 0, slowdown: 0 },
});
