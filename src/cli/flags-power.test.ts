/** The capping flags: --power-window is a duration of 100 ms … 1 h; a budget alone implies the CAP mode. */
import { describe, expect, it } from 'vitest';
import { migrationOptionsFromFlags } from './flags.js';

describe('power capping flags', () => {
  it('--power-window takes a duration, default left to the options (1 s)', () => {
    expect(migrationOptionsFromFlags({ powerCap: '132', powerWindow: '2s' }).options).toMatchObject({
      powerCap: 132,
      powerWindowMs: 2000,
      capping: 'cap',
    });
    expect(migrationOptionsFromFlags({ powerCap: '132' }).options.powerWindowMs).toBeUndefined();
  });

  it('refuses a window too short to hold a sample, or not a duration', () => {
    expect(() => migrationOptionsFromFlags({ powerWindow: '50ms' })).toThrow(/--power-window/);
    expect(() => migrationOptionsFromFlags({ powerWindow: 'soon' })).toThrow(/--power-window/);
  });
});
