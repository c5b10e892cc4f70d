import { describe, expect, it } from 'vitest';
import { predictPrecopy } from '../migration/model.js';
import { predictInput, predictionTable } from './predict.js';

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
