/**
 * Real energy counters: Intel/AMD RAPL through the Linux powercap sysfs (`/sys/class/powercap`). Each zone
 * (`intel-rapl:0` = package 0, `intel-rapl:0:0` = its cores, `intel-rapl:0:1` = DRAM, ...) has a `name`, a
 * cumulative `energy_uj` counter in microjoules, and `max_energy_range_uj`, the value at which the counter wraps
 * to 0. Power is the difference of two readings over the time between them (see energyDeltaUj()).
 *
 * Many machines (VMs, this project's CI) have no RAPL: readRapl() then returns undefined and power is modelled,
 * and reports say so. Since Linux 5.10 `energy_uj` is readable by root only; unreadable zones are left out.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface RaplZone {
  /** Directory name, e.g. "intel-rapl:0:1": where the zone sits in the package/sub-zone tree. */
  id: string;
  /** The zone's `name`, e.g. "package-0", "core", "uncore", "dram", "psys". */
  name: string;
  /** Cumulative energy since an arbitrary origin, µJ; wraps at maxEnergyRangeUj. */
  energyUj: number;
  maxEnergyRangeUj: number;
}

export interface RaplReading {
  zones: RaplZone[];
}

function readNumber(path: string): number | undefined {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One reading of every RAPL zone under `root`, or undefined when there is no powercap tree or no readable zone.
 * Zones come sorted by id, so package zones precede their sub-zones.
 */
export function readRapl(root = '/sys/class/powercap'): RaplReading | undefined {
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    return undefined;
  }
  const zones: RaplZone[] = [];
  // Zone directories are "<control type>:<index>[:<sub-index>]"; the bare control type ("intel-rapl") has no counter.
  for (const id of entries.filter((e) => /:\d+(:\d+)*$/.test(e)).sort()) {
    const dir = join(root, id);
    const energyUj = readNumber(join(dir, 'energy_uj'));
    if (energyUj === undefined) continue;
    let name = id;
    try {
      name = readFileSync(join(dir, 'name'), 'utf8').trim() || id;
    } catch {
      // A zone without a name file is still a counter; its id names it.
    }
    const maxEnergyRangeUj = readNumber(join(dir, 'max_energy_range_uj')) ?? Number.POSITIVE_INFINITY;
    zones.push({ id, name, energyUj, maxEnergyRangeUj });
  }
  return zones.length > 0 ? { zones } : undefined;
}

/** Energy used between two readings of one zone's counter, µJ, allowing for one wrap-around in between. */
export function energyDeltaUj(before: number, after: number, maxEnergyRangeUj: number): number {
  return after >= before ? after - before : maxEnergyRangeUj - before + after;
}
