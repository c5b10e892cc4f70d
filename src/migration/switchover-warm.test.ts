import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../guest/index.js';
import { WARM_RUNS, warmSwitchoverCode } from './switchover-warm.js';

describe('switch-over warm-up', () => {
  it('runs the paused window’s decode and digest on a sample state of the guest’s config', () => {
    const config = resolveConfig({ ramBytes: 1 << 20, seed: 1, workload: { name: 'idle' } });
    expect(() => warmSwitchoverCode(config)).not.toThrow();
    expect(() => warmSwitchoverCode(undefined)).not.toThrow();
  });

  it('runs the path several times (V8 tiers a function up only after a few runs), none without a config', () => {
    const config = resolveConfig({ ramBytes: 1 << 20, seed: 1, workload: { name: 'idle' } });
    expect(WARM_RUNS).toBeGreaterThanOrEqual(5);
    expect(warmSwitchoverCode(config)).toBe(WARM_RUNS);
    expect(warmSwitchoverCode(config, 3)).toBe(3);
    expect(warmSwitchoverCode(undefined)).toBe(0);
    expect(warmSwitchoverCode(1 as never)).toBe(0);
  });

  it('never throws, even for a config the schema would refuse (the switch-over reports that, not the warm-up)', () => {
    expect(() => warmSwitchoverCode(1 as never)).not.toThrow();
  });
});
