/**
 * The ten PlanetLab days shipped with livemig (`data/planetlab/<day>.trace.br`; provenance and format in
 * data/planetlab/README.md). They are found next to the installed module, never relative to the current folder:
 * `data/` sits two levels above this file both in `src/sim/` (run from source) and in `dist/sim/` (built package).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../errors.js';
import { loadTracePack, TRACE_PACK_EXT } from './tracepack.js';
import type { Workload } from './workload.js';

/** The days CloudSim ships (March/April 2011), in date order. */
export const PLANETLAB_DAYS = [
  '20110303',
  '20110306',
  '20110309',
  '20110322',
  '20110325',
  '20110403',
  '20110409',
  '20110411',
  '20110412',
  '20110420',
] as const;

export type PlanetlabDay = (typeof PLANETLAB_DAYS)[number];

export function isPlanetlabDay(name: string): name is PlanetlabDay {
  return (PLANETLAB_DAYS as readonly string[]).includes(name);
}

/** The folder holding the bundled days. */
export function planetlabDataDir(): string {
  return fileURLToPath(new URL('../../data/planetlab/', import.meta.url));
}

/** The file of one bundled day. */
export function planetlabDayFile(day: PlanetlabDay): string {
  return join(planetlabDataDir(), `${day}${TRACE_PACK_EXT}`);
}

/** Loads a bundled PlanetLab day by name (`20110303`): 1052 VMs × 288 five-minute samples for that day. */
export async function loadPlanetlabDay(day: string): Promise<Workload> {
  if (!isPlanetlabDay(day)) {
    throw new UsageError(
      `no bundled PlanetLab day "${day}"; the bundled days are ${PLANETLAB_DAYS.join(', ')}`,
      '--day',
    );
  }
  const file = planetlabDayFile(day);
  if (!existsSync(file)) {
    throw new UsageError(
      `the bundled PlanetLab data is missing (${file}); reinstall livemig, or pass a trace folder with --day DIR`,
      '--day',
    );
  }
  return loadTracePack(file, day);
}
