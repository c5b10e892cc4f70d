import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { predictPrecopy } from '../migration/model.js';
import { type GuestProfile, PROFILE_VERSION, readProfile } from '../profile/index.js';
import { parsePredictFlags, predictInput, predictionTable, profiledInput } from './predict.js';

const defaults = {
  vcpus: '1',
  workload: 'gap',
  seed: '1',
  cap: '0',
  ram: '1GiB',
  pageSize: '4KiB',
  bandwidth: '128MiB',
  compression: '1',
  downtimeLimit: '300ms',
  maxRounds: '30',
  resumeOverhead: '0ms',
  dirtySet: 'linear',
};

describe('livemig predict', () => {
  it('turns flags into the model input in bytes, bytes/s and seconds', () => {
    const i = predictInput({ ...defaults, dirtyPages: '2000', workingSet: '256MiB' });
    expect(i).toMatchObject({
      ramBytes: 2 ** 30,
      dirtyRate: 2000 * 4096,
      workingSetBytes: 256 * 2 ** 20,
      bandwidth: 128 * 2 ** 20,
      downtimeLimit: 0.3,
      maxRounds: 30,
    });
    expect(predictInput({ ...defaults, dirtyRate: '32MiB' }).dirtyRate).toBe(32 * 2 ** 20);
  });

  it('refuses contradictory or impossible flags, naming them', () => {
    expect(() => predictInput({ ...defaults, dirtyRate: '1MiB', dirtyPages: '10' })).toThrow(/once/);
    expect(() => predictInput({ ...defaults, compression: '1.5' })).toThrow(/--compression/);
    expect(() => predictInput({ ...defaults, bandwidth: '0' })).toThrow(/--bandwidth/);
    expect(() => predictInput({ ...defaults, maxRounds: '0' })).toThrow(/--max-rounds/);
  });

  it('parses the engine, bandwidth and compression flags once, into the settings the input is made from', () => {
    const s = parsePredictFlags({ ...defaults, pageCost: '2', startCost: '10ms', compression: '0.5' });
    expect(s).toEqual({
      bandwidth: 128 * 2 ** 20,
      engine: { pageSec: 2e-6, startSec: 0.01 },
      compression: 0.5,
    });
    expect(parsePredictFlags({ ...defaults, bandwidth: undefined, maxBandwidth: '0' }).bandwidth).toBe(0);
    expect(() => parsePredictFlags({ ...defaults, switchoverCost: 'soon' })).toThrow(/--switchover-cost/);
    const i = predictInput({ ...defaults, dirtyRate: '1MiB' }, { ...s, bandwidth: 1 << 20 });
    expect(i).toMatchObject({ bandwidth: 1 << 20, compressionRatio: 0.5 });
  });

  it('--dirty-set uniform: a writer that re-dirties pages converges where the linear model does not', () => {
    const flags = { ...defaults, ram: '32MiB', workingSet: '32MiB', dirtyPages: '4000', bandwidth: '16MiB' };
    expect(predictPrecopy(predictInput(flags)).converged).toBe(false);
    expect(predictPrecopy(predictInput({ ...flags, dirtySet: 'uniform' })).converged).toBe(true);
    expect(() => predictInput({ ...flags, dirtySet: 'zipf' })).toThrow(/--dirty-set/);
  });

  it('prints the prediction with λ and the verdict', () => {
    const i = predictInput({ ...defaults, dirtyRate: '256MiB' });
    const text = predictionTable(i, predictPrecopy(i));
    expect(text).toContain('2.000'); // λ = 256/128
    expect(text).toContain('no: the round bound');
  });
});

describe('livemig predict with a profile', () => {
  const profile: GuestProfile = {
    kind: 'livemig-profile',
    version: PROFILE_VERSION,
    source: { workload: 'synthetic' },
    measuredAt: '2026-01-01T00:00:00.000Z',
    pageSize: 4096,
    ramPages: 16384,
    durationMs: 10_000,
    tickMs: 5,
    // 10 000 new pages/s up to all of RAM: outruns a 16 MiB/s link (4096 pages/s).
    workingSet: [
      { ms: 5, pages: 50 },
      { ms: 1000, pages: 10_000 },
      { ms: 1638.4, pages: 16384 },
    ],
    pagesWritten: 16384,
    dirtyPagesPerSec: 10_000,
    hotSet: [],
    zeroFraction: 0,
    xbzrle: [],
  };

  it("applies the migration flags and a preset's stop rules", () => {
    const flags = { ...defaults, bandwidth: undefined, maxRounds: undefined, maxBandwidth: '16MiB' };
    const qemu = predictPrecopy(profiledInput(flags, profile));
    expect(qemu.rounds).toBe(30);
    const xen = predictPrecopy(profiledInput({ ...flags, preset: 'xen' }, profile));
    expect(xen.rounds).toBe(5);
    const throttled = predictPrecopy(
      profiledInput({ ...flags, maxRounds: '0', autoConverge: true }, profile),
    );
    expect(throttled.converged).toBe(true);
    expect(() => profiledInput({ ...flags, strategy: 'postcopy' }, profile)).toThrow(/pre-copy only/);
    expect(() => profiledInput({ ...flags, bandwidth: '1MiB' }, profile)).toThrow(/once/);
  });

  it('refuses a file that is not a profile, saying what to do', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'livemig-predict-'));
    const file = join(dir, 'p.json');
    writeFileSync(file, JSON.stringify({ ...profile, version: 2 }));
    await expect(readProfile(file)).rejects.toThrow(/not a livemig profile \(version 1\): version/);
    writeFileSync(file, 'nope');
    await expect(readProfile(file)).rejects.toThrow(/livemig profile --out FILE/);
    await expect(readProfile(join(dir, 'missing.json'))).rejects.toThrow(/cannot read/);
  });
});
