/**
 * What a migration power session (src/power/host.ts) reads and writes of a migration: the option fields it
 * applies, the round figures the adaptive controller needs, the report fields it fills. Migration's
 * `MigrationOptions`, `RoundSample` and `MigrationReport` satisfy these structurally, so power never imports
 * migration (migration imports power for the model names and capping modes).
 */
import type { MigrationEnergy } from './energy.js';
import type { PowerModelName } from './models.js';

/** Power capping during a migration (docs/power.md): none, DVFS on every core, CAP on the migrating VM, or both. */
export const CAPPING_MODES = ['none', 'dvfs', 'cap', 'hybrid'] as const;
export type CappingMode = (typeof CAPPING_MODES)[number];
/** fixed: choose the CAP / DVFS state once when the transfer starts; adaptive: re-choose it after every round. */
export const CAP_CONTROLS = ['fixed', 'adaptive'] as const;
export type CapControl = (typeof CAP_CONTROLS)[number];

/** The migration options a power session applies (fields of `MigrationOptions`, same names and meaning). */
export interface PowerSessionOptions {
  capping: CappingMode;
  capControl: CapControl;
  /** Power budget, W (0 = none). */
  powerCap: number;
  powerWindowMs: number;
  /** CAP for the migrating VM; 0 = derive it from powerCap. */
  migrationCap: number;
  /** DVFS frequency, GHz; 0 = derive it from powerCap. */
  dvfsGhz: number;
  completionTargetMs: number;
  powerModel: PowerModelName;
}

/** One pre-copy round as the adaptive controller sees it (fields of `RoundSample`). */
export interface PowerRound {
  bytesSent: number;
  durationMs: number;
  /** Pages found dirty by the sync at the end of the round. */
  dirtyPages: number;
}

/** The migration report fields a power session reads and fills (fields of `MigrationReport`). */
export interface PowerSessionReport {
  status: string;
  totalTimeMs: number;
  transferredBytes: number;
  /** The destination agent's address (its meter is asked for the destination figure). */
  destination: string;
  events: string[];
  cap: { atMs: number; cap: number; throttle: number; reason: string }[];
  guest: { stepsPerSecBefore: number; stepsPerSecDuring: number; slowdown: number };
  energy?: MigrationEnergy;
}
