import { describe, expect, it } from 'vitest';
import { predictPrecopy } from '../migration/model.js';
import { loadPlanetlabDay } from './bundled.js';
import {
  type Datacenter,
  DEFAULT_PRICING,
  HP_ML110_G5,
  PLANETLAB_VM_TYPES,
  parsePolicy,
  planetlabDatacenter,
} from './config.js';
import { migrationLogLines, simulate } from './engine/index.js';
import { loadBundledProfiles, profileFor } from './profiles.js';
import type { Workload } from './workload.js';

const G5 = HP_ML110_G5.power;

function constantWorkload(levels: number[]): Workload {
  const spv = 288;
  const samples = new Uint8Array(levels.length * spv);
  levels.forEach((u, v) => {
    samples.fill(u, v * spv, (v + 1) * spv);
  });
  return {
    name: 'const',
    vmNames: levels.map((_, i) => `vm${i}`),
    vms: levels.length,
    samplesPerVm: spv,
    samples,
  };
}

const twoG5: Datacenter = {
  hostTypes: [HP_ML110_G5],
  hostTypeOf: new Uint8Array(2),
  vmTypes: PLANETLAB_VM_TYPES,
};
const kWh = (ws: number) => ws / 3.6e6;

describe('simulator, CloudSim mode, hand-computed cases', () => {
  it('one VM at a constant load: energy = P(u) over 286 intervals (first 300 s and last 300 s not billed)', () => {
    const dc: Datacenter = { ...twoG5, hostTypeOf: new Uint8Array(1) };
    const r = simulate(constantWorkload([50]), {
      mode: 'cloudsim',
      policy: parsePolicy('thr-mmt'),
      datacenter: dc,
    });
    const u = 1250 / 5320;
    expect(r.energyKWh).toBeCloseTo(kWh(G5.power(u) * 286 * 300), 9);
    expect(r.migrations).toBe(0);
    expect(r.slatah).toBe(0);
    expect(r.pdm).toBe(0);
  });

  it('Q1: a VM whose trace has two zeros in a row is deleted at that step and its host switches off', () => {
    const w = constantWorkload([50]);
    w.samples.fill(0, 5, 7); // samples 5 and 6 are 0 → demand exactly 0 at t = 5·300 + 0.1
    const dc: Datacenter = { ...twoG5, hostTypeOf: new Uint8Array(1) };
    const r = simulate(w, { mode: 'cloudsim', policy: parsePolicy('thr-mmt'), datacenter: dc });
    const p = G5.power(1250 / 5320);
    // Intervals t1→t4 at P(u) (the t4 sample interpolates 50 → 0 over 0.1 s), t4→t5 trapezoid down to P(0).
    const u4 = ((0.5 + (-0.5 / 300) * 0.1) * 2500) / 5320;
    const expected = p * 2 * 300 + ((p + G5.power(u4)) / 2) * 300 + ((G5.power(u4) + G5.power(0)) / 2) * 300;
    expect(r.vmsDeleted).toBe(1);
    expect(r.energyKWh).toBeCloseTo(kWh(expected), 9);
    expect(r.hostShutdowns).toBe(1);
  });

  it('underload: two half-loaded hosts consolidate with one 27.84-s migration (energy, PDM, SLATAH by hand)', () => {
    // VM0 = 2500 MIPS/870 MB, VM1 = 2000 MIPS/1740 MB, both at 50 %. PABFD at t = 0 spreads them (cost relative
    // to the unmeasured idle host); at t1 the less loaded host (VM1) is drained into host 0.
    const r = simulate(constantWorkload([50, 50]), {
      mode: 'cloudsim',
      policy: parsePolicy('thr-mmt'),
      datacenter: twoG5,
    });
    expect(r.migrations).toBe(1);
    const T = 1740 / (1_000_000 / 16_000);
    expect(T).toBeCloseTo(27.84, 9);
    expect(r.meanTimeBeforeVmMigration).toBeCloseTo(T, 6);
    const during = G5.power(1350 / 5320) + G5.power(1000 / 5320); // host 0 hosts the 10 % copy
    const after = G5.power(2250 / 5320);
    const energy = during * T + after * (300 - T) + after * 285 * 300;
    expect(r.energyKWh).toBeCloseTo(kWh(energy), 6);
    expect(r.pdm).toBeCloseTo((100 * T) / (2250 * 286 * 300), 12);
    // The source's allocation is 0.9·demand, divided back by 0.9: any rounding below the demand counts.
    const degraded = 1000 * 0.9;
    const sourceViolates = degraded / 0.9 < 1000 ? T : 0;
    expect(r.slatah).toBeCloseTo((T + sourceViolates) / (286 * 300 + T), 12);
    expect(r.hostShutdowns).toBe(1);
  });

  it('logs each migration started as CloudSim does (time, VM, source, target), on request only', () => {
    const options = { mode: 'cloudsim' as const, policy: parsePolicy('thr-mmt'), datacenter: twoG5 };
    const r = simulate(constantWorkload([50, 50]), { ...options, migrationLog: true });
    expect(r.migrationLog).toEqual([300.1, 1, 1, 0]);
    expect(migrationLogLines(r.migrationLog ?? [])).toBe('MIG 300.1 vm=1 from=1 to=0\n');
    expect(simulate(constantWorkload([50, 50]), options).migrationLog).toBeUndefined();
  });

  it('the THR threshold decides whether a host may be filled above it (placement overload check)', () => {
    const dc: Datacenter = {
      hostTypes: [HP_ML110_G5, { ...HP_ML110_G5, name: 'small', peMips: 2100 }],
      hostTypeOf: Uint8Array.from([0, 1, 0]),
      vmTypes: [
        { mips: 2500, ramMb: 870, bwKbps: 100_000 },
        { mips: 2000, ramMb: 613, bwKbps: 100_000 },
      ],
    };
    // VM0 (2500) → host 0; VM1 (2000) → host 1 (cheapest). At 100 % load neither host is overloaded (0.47, 0.48);
    // draining host 1 into host 0 would give 4500/5320 = 0.846 > 0.8, and the underload pass only uses active hosts.
    const r = simulate(constantWorkload([100, 100]), {
      mode: 'cloudsim',
      policy: parsePolicy('thr-mmt'),
      datacenter: dc,
    });
    expect(r.migrations).toBe(0);
    // With THR 0.9, host 0 can take VM1 (0.846 ≤ 0.9): one migration, from host 1.
    const r2 = simulate(constantWorkload([100, 100]), {
      mode: 'cloudsim',
      policy: parsePolicy('thr-mmt-0.9'),
      datacenter: dc,
    });
    expect(r2.migrations).toBe(1);
  });

  it('NPA bills every host at full power from t = 0 to the last update at 86 100.1 s', () => {
    // CloudSim 3.0.3's NonPowerAware example prints 2410.8028 kWh on every day: 100 800 W × 86 100.1 s.
    const r = simulate(constantWorkload([10, 20, 30]), {
      mode: 'cloudsim',
      policy: parsePolicy('npa'),
      datacenter: planetlabDatacenter(4),
    });
    expect(r.energyKWh).toBeCloseTo(kWh((2 * 117 + 2 * 135) * 86_100.1), 9);
  });

  it('NPA deletes a VM whose demand hits 0 (Q1) as DVFS does, so a host shuts down', () => {
    // CloudSim's non-power-aware data centre removes finished VMs too (20110303: 455 host shutdowns, as DVFS).
    const w = constantWorkload([50]);
    w.samples.fill(0, 5, 7);
    const dc: Datacenter = { ...twoG5, hostTypeOf: new Uint8Array(1) };
    const r = simulate(w, { mode: 'cloudsim', policy: parsePolicy('npa'), datacenter: dc });
    expect(r.vmsDeleted).toBe(1);
    expect(r.hostShutdowns).toBe(1);
  });
});

describe('simulator, livemig mode, hand-computed cases', () => {
  it('packs by real marginal cost at t = 0 and bills the whole day', () => {
    // Waking host 1 would cost its idle power, so both VMs share host 0 from t = 0 and host 1 stays off.
    const r = simulate(constantWorkload([50, 50]), {
      mode: 'livemig',
      policy: parsePolicy('thr-mmt'),
      datacenter: twoG5,
    });
    expect(r.migrations).toBe(0);
    expect(r.energyKWh).toBeCloseTo(kWh(G5.power(2250 / 5320) * 86_400), 9);
    expect(r.slatah).toBe(0);
  });

  it('prices an overload migration with the profile-fed model: the VM class’s profile at its utilisation', () => {
    const w = constantWorkload([100, 50]);
    w.samples.fill(100, 288 + 10, 2 * 288); // VM1 rises to 100 % at t = 3000 s: 4500/5320 = 0.846 > 0.8
    const r = simulate(w, { mode: 'livemig', policy: parsePolicy('thr-mmt'), datacenter: twoG5 });
    expect(r.migrations).toBe(1); // MMT picks VM0 (870 MB, 100 % all day: the heavy class)
    const set = loadBundledProfiles();
    // A long-running VM's RAM is full: the default prices it with no zero pages (DEFAULT_PRICING.zeroFraction).
    const profile = { ...profileFor(set, 870, 'heavy'), zeroFraction: DEFAULT_PRICING.zeroFraction };
    const expected = predictPrecopy({
      ramBytes: 870e6,
      dirtyRate: 0,
      bandwidth: (1_000_000 * 1000 * DEFAULT_PRICING.bandwidthShare) / 8,
      downtimeLimit: DEFAULT_PRICING.downtimeLimit,
      maxRounds: DEFAULT_PRICING.maxRounds,
      profile,
      guestSpeed: 1,
      engine: set.engine,
      migration: { xbzrle: true },
    });
    expect(r.meanMigrationTime).toBeCloseTo(expected.totalTime, 9);
    expect(r.meanDowntime).toBeCloseTo(expected.downtime, 9);
    expect(r.migrationBytes).toBeCloseTo(expected.bytes, 0);
    const joules = (expected.bytes / 2 ** 30) * (set.energy.sourceJPerGiB + set.energy.destinationJPerGiB);
    expect(r.migrationEnergyKWh).toBeCloseTo(kWh(joules), 12);
    const requested = 2500 * 86_400 + 1000 * 3000 + 2000 * (86_400 - 3000);
    const lost = 250 * expected.totalTime + 2500 * expected.downtime;
    expect(r.pdm).toBeCloseTo(lost / requested, 6);
  });

  it("prices an overload migration with the papers' rate model (time, downtime lost to PDM)", () => {
    const w = constantWorkload([100, 50]);
    w.samples.fill(100, 288 + 10, 2 * 288); // VM1 rises to 100 % at t = 3000 s: 4500/5320 = 0.846 > 0.8
    const r = simulate(w, {
      mode: 'livemig',
      policy: parsePolicy('thr-mmt'),
      datacenter: twoG5,
      pricing: { model: 'rate' },
    });
    expect(r.migrations).toBe(1); // MMT picks VM0 (870 MB), the only place is host 1
    const p = DEFAULT_PRICING;
    const expected = predictPrecopy({
      ramBytes: 870e6,
      dirtyRate: p.dirtyRateAtFullLoad * 1,
      workingSetBytes: 870e6 * p.workingSetFraction,
      bandwidth: (1_000_000 * 1000 * p.bandwidthShare) / 8,
      compressionRatio: p.compressionRatio,
      downtimeLimit: p.downtimeLimit,
      maxRounds: p.maxRounds,
    });
    expect(r.meanMigrationTime).toBeCloseTo(expected.totalTime, 9);
    expect(r.meanDowntime).toBeCloseTo(expected.downtime, 9);
    expect(expected.totalTime).toBeGreaterThan(870 / 62.5); // dirty pages make it longer than CloudSim's RAM/(BW/2)
    // PDM: 10 % of VM0's 2500 MIPS during the migration + all of it during the downtime, over all requested MIPS·s.
    const requested = 2500 * 86_400 + 1000 * 3000 + 2000 * (86_400 - 3000);
    const lost = 250 * expected.totalTime + 2500 * expected.downtime;
    expect(r.pdm).toBeCloseTo(lost / requested, 6);
  });
});

describe('simulator on a real PlanetLab day', () => {
  it("deletes 532 of 1052 VMs through Q1 (DVFS baseline), and the NPA figure is CloudSim 3.0.3's 2410.8028 kWh", async () => {
    const w = await loadPlanetlabDay('20110303');
    const dvfs = simulate(w, { mode: 'cloudsim', policy: parsePolicy('dvfs'), series: false });
    expect(dvfs.vmsDeleted).toBe(532);
    expect(dvfs.migrations).toBe(0);
    const npa = simulate(w, { mode: 'cloudsim', policy: parsePolicy('npa'), series: false });
    expect(npa.energyKWh).toBeCloseTo(2410.8028, 9);
    expect(npa.hostShutdowns).toBe(dvfs.hostShutdowns);
  });

  it('the pruned PABFD (representatives, cheapest-first) answers exactly like the plain scan', async () => {
    const full = await loadPlanetlabDay('20110306');
    const vms = 300;
    const w: Workload = {
      ...full,
      vms,
      vmNames: full.vmNames.slice(0, vms),
      samples: full.samples.subarray(0, vms * 288),
    };
    for (const [mode, policy] of [
      ['cloudsim', 'mad-mmt'],
      ['cloudsim', 'lr-mc'],
      ['livemig', 'iqr-rs'],
    ] as const) {
      const base = {
        mode,
        policy: parsePolicy(policy),
        datacenter: planetlabDatacenter(240),
        seed: 5,
        series: false,
      };
      const fast = simulate(w, base);
      const plain = simulate(w, { ...base, placementCandidates: -1 });
      expect([fast.energyKWh, fast.migrations, fast.slatah, fast.pdm]).toEqual([
        plain.energyKWh,
        plain.migrations,
        plain.slatah,
        plain.pdm,
      ]);
      expect(fast.migrations).toBeGreaterThan(100);
    }
  });

  it('is deterministic for a seed (RS), and livemig mode never migrates a VM twice in a round', async () => {
    const full = await loadPlanetlabDay('20110303');
    // A quarter of the day's VMs on 200 hosts keeps this fast.
    const vms = 263;
    const w: Workload = {
      ...full,
      vms,
      vmNames: full.vmNames.slice(0, vms),
      samples: full.samples.subarray(0, vms * 288),
    };
    const opts = {
      mode: 'cloudsim',
      policy: parsePolicy('mad-rs'),
      datacenter: planetlabDatacenter(200),
      seed: 3,
    } as const;
    const a = simulate(w, opts);
    const b = simulate(w, opts);
    expect(a.energyKWh).toBe(b.energyKWh);
    expect(a.migrations).toBe(b.migrations);
    expect(a.migrations).toBeGreaterThan(0);
    const fixed = simulate(w, { ...opts, mode: 'livemig' });
    expect(fixed.duplicateMigrations).toBe(0);
    expect(fixed.meanDowntime).toBeGreaterThan(0);
    expect(fixed.vmsDeleted).toBe(0);
    expect(fixed.series!.time.length).toBe(288);
  });
});
