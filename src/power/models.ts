/**
 * Host power models: watts as a function of CPU utilisation (and, for the DVFS model, of the DVFS state).
 *
 * - `linearPowerModel`: P(u) = idle + (max − idle) · u.
 * - `specPowerModel`: a SPECpower_ssj2008 table of 11 points (0 %, 10 %, …, 100 % load), linearly interpolated
 *   between neighbouring points exactly as CloudSim's `PowerModelSpecPower` does, including its rejection of
 *   u outside [0, 1] (CloudSim crashes there; we throw a `RangeError`).
 * - `dvfsCpuModel`: per-state frequency and voltage; dynamic power ∝ C·V²·f (scaled by utilisation) plus static power.
 *
 * The "switched off = 0 W" rule of CloudSim (a host at exactly 0 % is off) is a simulator decision, not a model
 * property: these models return the idle value at u = 0.
 */

/** Maps CPU utilisation in [0, 1] to watts. */
export interface PowerModel {
  readonly name: string;
  /** Power at 100 % utilisation, in watts. */
  readonly maxPower: number;
  /** Power at 0 % utilisation (host on, idle), in watts. */
  readonly idlePower: number;
  power(utilisation: number): number;
}

function checkUtilisation(u: number): void {
  // CloudSim: "Utilization value must be between 0 and 1". NaN fails too.
  if (!(u >= 0 && u <= 1)) throw new RangeError(`utilisation ${u} is outside [0, 1]`);
}

export function linearPowerModel(idleWatts: number, maxWatts: number, name = 'linear'): PowerModel {
  if (!(idleWatts >= 0 && maxWatts >= idleWatts)) {
    throw new RangeError(`linear power model needs 0 ≤ idle ≤ max (got ${idleWatts}, ${maxWatts})`);
  }
  return {
    name,
    maxPower: maxWatts,
    idlePower: idleWatts,
    power(u: number): number {
      checkUtilisation(u);
      return idleWatts + (maxWatts - idleWatts) * u;
    },
  };
}

/** A SPECpower table: 11 watt values at 0 %, 10 %, …, 100 % load. */
export type SpecPowerTable = readonly [
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
];

/**
 * Interpolates like CloudSim's `PowerModelSpecPower.getPower`:
 * `P[floor(10u)] + (P[ceil(10u)] − P[floor(10u)]) · (10u − floor(10u))`, written with the same operations so that
 * results are bit-identical with the Java code (`u % 0.1 == 0` short-cut included).
 */
export function specPowerModel(name: string, table: SpecPowerTable): PowerModel {
  if (table.length !== 11) throw new RangeError(`a SPECpower table has 11 points, got ${table.length}`);
  const p = Float64Array.from(table);
  return {
    name,
    maxPower: p[10]!,
    idlePower: p[0]!,
    power(u: number): number {
      checkUtilisation(u);
      if (u % 0.1 === 0) return p[Math.trunc(u * 10)]!;
      const floor = Math.floor(u * 10);
      const ceil = Math.ceil(u * 10);
      const delta = (p[ceil]! - p[floor]!) / 10;
      return p[floor]! + delta * (u - floor / 10) * 100;
    },
  };
}

/** SPECpower tables shipped with CloudSim (`org.cloudbus.cloudsim.power.models`), watts at 0 %, 10 %, …, 100 %. */
export const SPECPOWER_TABLES = {
  /** HP ProLiant ML110 G4, Xeon 3040, 2 × 1860 MHz. Used for the even hosts of the PlanetLab example. */
  hpProLiantMl110G4: [86, 89.4, 92.6, 96, 99.5, 102, 106, 108, 112, 114, 117],
  /** HP ProLiant ML110 G5, Xeon 3075, 2 × 2660 MHz. Used for the odd hosts of the PlanetLab example. */
  hpProLiantMl110G5: [93.7, 97, 101, 105, 110, 116, 121, 125, 129, 133, 135],
  hpProLiantMl110G3: [105, 112, 118, 125, 131, 137, 147, 153, 157, 164, 169],
  ibmX3250XeonX3470: [41.6, 46.7, 52.3, 57.9, 65.4, 73, 80.7, 89.5, 99.6, 105, 113],
  ibmX3250XeonX3480: [42.3, 46.7, 49.7, 55.4, 61.8, 69.3, 76.1, 87, 96.1, 106, 113],
  ibmX3550XeonX5670: [66, 107, 120, 131, 143, 156, 173, 191, 211, 229, 247],
  ibmX3550XeonX5675: [58.4, 98, 109, 118, 128, 140, 153, 170, 189, 205, 222],
} as const satisfies Record<string, SpecPowerTable>;

export type SpecPowerServer = keyof typeof SPECPOWER_TABLES;

export function specPowerServer(server: SpecPowerServer): PowerModel {
  return specPowerModel(server, SPECPOWER_TABLES[server]);
}

/** One DVFS state (P-state): clock frequency and core voltage. */
export interface DvfsState {
  readonly ghz: number;
  readonly volts: number;
}

/** A CPU whose power depends on utilisation and on the DVFS state all cores run at. */
export interface DvfsPowerModel extends PowerModel {
  readonly cores: number;
  /** States ordered from slowest to fastest. */
  readonly states: readonly DvfsState[];
  /** Static (leakage + rest of the platform) power, watts, paid whenever the host is on. */
  readonly staticPower: number;
  /** Effective switched capacitance × activity, in W / (V² · GHz) for the whole package at 100 % load. */
  readonly capacitance: number;
  /** Power at utilisation u with all cores in DVFS state `state` (index into `states`). */
  powerAt(utilisation: number, state: number): number;
  /** Index of the slowest state whose frequency is at least `ghz` (the top state if none is). */
  stateFor(ghz: number): number;
}

/**
 * P(u, s) = P_static + C · V_s² · f_s · u. The dynamic term is the CMOS switching power (∝ C·V²·f) of the busy
 * fraction of the cores; `power(u)` uses the fastest state.
 */
export function dvfsCpuModel(opts: {
  name: string;
  cores: number;
  states: readonly DvfsState[];
  staticPower: number;
  capacitance: number;
}): DvfsPowerModel {
  const { name, cores, states, staticPower, capacitance } = opts;
  if (states.length === 0) throw new RangeError('a DVFS model needs at least one state');
  for (let i = 1; i < states.length; i++) {
    if (!(states[i]!.ghz > states[i - 1]!.ghz))
      throw new RangeError('DVFS states must be ordered by frequency');
  }
  const top = states.length - 1;
  const powerAt = (u: number, state: number): number => {
    checkUtilisation(u);
    const s = states[state];
    if (s === undefined) throw new RangeError(`DVFS state ${state} does not exist (0–${top})`);
    return staticPower + capacitance * s.volts * s.volts * s.ghz * u;
  };
  return {
    name,
    cores,
    states,
    staticPower,
    capacitance,
    idlePower: staticPower,
    maxPower: powerAt(1, top),
    power: (u: number) => powerAt(u, top),
    powerAt,
    stateFor(ghz: number): number {
      const i = states.findIndex((s) => s.ghz >= ghz - 1e-9);
      return i < 0 ? top : i;
    },
  };
}

/**
 * Intel Core i7-920 (Nehalem, 4 cores, 2.67 GHz, TDP 130 W) as in the seed's power-capping experiment:
 * 9 DVFS states = bus 133.33 MHz × multipliers 12…20 (1.60–2.67 GHz). Voltages follow Nehalem's VID range,
 * linear from 0.95 V at 1.60 GHz to 1.20 V at 2.67 GHz (an assumption: the seed does not give them).
 * C and P_static are then solved from the seed's two measured points: a busy host draws ≈150 W at 2.67 GHz
 * and ≈135.6 W when DVFS drops it to 1.7 GHz (the 13 × 133 MHz = 1.73 GHz state).
 */
export function i7920DvfsModel(): DvfsPowerModel {
  const states: DvfsState[] = [];
  for (let m = 12; m <= 20; m++) {
    const ghz = (m * 133.333_333) / 1000;
    const volts = 0.95 + ((1.2 - 0.95) * (m - 12)) / 8;
    states.push({ ghz, volts });
  }
  const hi = states[8]!;
  const lo = states[1]!;
  const busyTop = 150;
  const busyLow = 135.6;
  const capacitance = (busyTop - busyLow) / (hi.volts ** 2 * hi.ghz - lo.volts ** 2 * lo.ghz);
  const staticPower = busyTop - capacitance * hi.volts ** 2 * hi.ghz;
  return dvfsCpuModel({ name: 'intel-core-i7-920', cores: 4, states, staticPower, capacitance });
}

/** Host models a migration or an agent can be metered with, by name (MigrationOptions.powerModel). */
export const POWER_MODEL_NAMES = [
  'i7-920',
  'hpProLiantMl110G4',
  'hpProLiantMl110G5',
  'hpProLiantMl110G3',
  'ibmX3250XeonX3470',
  'ibmX3250XeonX3480',
  'ibmX3550XeonX5670',
  'ibmX3550XeonX5675',
] as const;
export type PowerModelName = (typeof POWER_MODEL_NAMES)[number];

/** The host model named `name`; the i7-920 is the only one with DVFS states. */
export function hostPowerModel(name: PowerModelName): PowerModel | DvfsPowerModel {
  if (name === 'i7-920') return i7920DvfsModel();
  return specPowerServer(name);
}

export function isDvfsModel(m: PowerModel): m is DvfsPowerModel {
  return 'powerAt' in m && 'states' in m;
}

/** Watts at utilisation u (clamped to [0, 1]) in DVFS state `state`; models without DVFS ignore the state. */
export function wattsAt(m: PowerModel, u: number, state?: number): number {
  const v = Math.min(1, Math.max(0, u));
  if (isDvfsModel(m)) return m.powerAt(v, state ?? m.states.length - 1);
  return m.power(v);
}
