import { describe, expect, it } from 'vitest';
import { UsageError } from '../errors.js';
import { predictPrecopy } from '../migration/model.js';
import { parsePolicy, planetlabDatacenter } from './config.js';
import { simulate } from './engine/index.js';
import {
  loadBundledProfiles,
  parseSimProfileSet,
  profileFor,
  type SimProfileSet,
  scaleProfile,
  TRACE_CLASSES,
  traceClassOf,
} from './profiles.js';
import { syntheticWorkload } from './workload.js';

describe('simulator profiles', () => {
  it('classes a trace by its mean utilisation', () => {
    expect([0, 14.9, 15, 39.9, 40, 100].map(traceClassOf)).toEqual([
      'light',
      'light',
      'moderate',
      'moderate',
      'heavy',
      'heavy',
    ]);
  });

  it('the bundled set has a profile for every CloudSim VM size and trace class, measured on the engine', () => {
    const set = loadBundledProfiles();
    for (const cls of TRACE_CLASSES) {
      for (const mb of [613, 870, 1740]) {
        const p = profileFor(set, mb, cls);
        expect(p.ramPages * p.pageSize).toBeCloseTo(mb * 1e6, -5);
        expect(p.dirtyPagesPerSec).toBeGreaterThan(0);
      }
    }
    expect(set.energy.sourceJPerGiB + set.energy.destinationJPerGiB).toBeGreaterThan(0);
  });

  it('scales page counts with RAM and leaves rates per page and ratios alone', () => {
    const base = loadBundledProfiles().classes[0]!.profile;
    const same = scaleProfile(base, base.ramPages * base.pageSize);
    expect(same).toBe(base);
    const half = scaleProfile(base, (base.ramPages * base.pageSize) / 2);
    expect(half.ramPages).toBe(Math.round(base.ramPages / 2));
    expect(half.workingSet.at(-1)!.pages).toBeCloseTo(base.workingSet.at(-1)!.pages / 2, 0);
    expect(half.xbzrle).toEqual(base.xbzrle);
    expect(half.zeroFraction).toBe(base.zeroFraction);
  });

  it('a heavier trace class and a busier VM take longer to migrate', () => {
    const set = loadBundledProfiles();
    const price = (cls: 'light' | 'heavy', u: number) => {
      const profile = profileFor(set, 1740, cls);
      return predictPrecopy({
        ramBytes: profile.ramPages * profile.pageSize,
        dirtyRate: 0,
        bandwidth: 62.5e6,
        profile,
        guestSpeed: u,
        engine: set.engine,
        migration: { xbzrle: true },
      });
    };
    expect(price('heavy', 1).bytes).toBeGreaterThan(price('light', 1).bytes);
    expect(price('heavy', 1).totalTime).toBeGreaterThan(price('heavy', 0.05).totalTime);
    // Round 1 alone moves the non-zero RAM: no profile makes a migration cheaper than that.
    const light = profileFor(set, 1740, 'light');
    const nonZero = light.ramPages * (1 - (light.zeroFraction ?? 0)) * light.pageSize;
    expect(price('light', 0.05).bytes).toBeGreaterThanOrEqual(nonZero);
  });

  it('refuses a file that is not a profile set, naming the file and the field', () => {
    expect.assertions(4);
    try {
      parseSimProfileSet('{', 'p.json');
    } catch (err) {
      expect(err).toBeInstanceOf(UsageError);
      expect((err as Error).message).toMatch(/^p\.json: not JSON/);
    }
    const set = structuredClone(loadBundledProfiles()) as { energy: { sourceJPerGiB: number } };
    set.energy.sourceJPerGiB = -1;
    try {
      parseSimProfileSet(JSON.stringify(set), 'q.json');
    } catch (err) {
      expect(err).toBeInstanceOf(UsageError);
      expect((err as Error).message).toMatch(/q\.json: .* at energy\.sourceJPerGiB/);
    }
  });
});

describe('simulator, livemig mode priced with profiles', () => {
  const workload = syntheticWorkload({ vms: 60, seed: 7 });
  const base = {
    mode: 'livemig' as const,
    policy: parsePolicy('lr-mmt'),
    datacenter: planetlabDatacenter(30),
    series: false,
  };

  it('gives the distribution of migration times and downtimes and charges the engine J/GiB into the energy', () => {
    const set = loadBundledProfiles();
    const free: SimProfileSet = {
      ...set,
      energy: { ...set.energy, sourceJPerGiB: 0, destinationJPerGiB: 0 },
    };
    const charged = simulate(workload, { ...base, profiles: set });
    const uncharged = simulate(workload, { ...base, profiles: free });
    expect(charged.migrations).toBeGreaterThan(0);
    // The charge does not change a decision: same migrations, energy higher by exactly the charge.
    expect(uncharged.migrations).toBe(charged.migrations);
    expect(uncharged.migrationEnergyKWh).toBe(0);
    expect(charged.migrationEnergyKWh).toBeCloseTo(
      ((charged.migrationBytes / 2 ** 30) * (set.energy.sourceJPerGiB + set.energy.destinationJPerGiB)) /
        3.6e6,
      9,
    );
    expect(charged.energyKWh - uncharged.energyKWh).toBeCloseTo(charged.migrationEnergyKWh, 9);
    const t = charged.migrationTime!;
    const d = charged.downtime!;
    expect(t.count).toBe(charged.migrations);
    expect(t.p50).toBeLessThanOrEqual(t.p99);
    expect(t.p99).toBeLessThanOrEqual(t.max);
    expect(d.p50).toBeGreaterThan(0);
    expect(t.mean).toBeCloseTo(charged.meanMigrationTime, 9);
  });

  it('the papers’ rate model stays available, and CloudSim mode keeps RAM ÷ bandwidth with no downtime', () => {
    const rate = simulate(workload, { ...base, pricing: { model: 'rate' } });
    expect(rate.migrationEnergyKWh).toBe(0);
    expect(rate.downtime!.p50).toBeGreaterThan(0);
    // The profiled guests' own zero pages (freshly started, mostly zero) make migrations several times cheaper.
    const full = simulate(workload, base);
    const fresh = simulate(workload, { ...base, pricing: { zeroFraction: null } });
    expect(fresh.migrationTime!.p50).toBeLessThan(full.migrationTime!.p50 / 2);
    const cloudsim = simulate(workload, { ...base, mode: 'cloudsim' });
    expect(cloudsim.migrationEnergyKWh).toBe(0);
    expect(cloudsim.downtime?.max ?? 0).toBe(0);
  });
});
