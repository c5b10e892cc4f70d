import { describe, expect, it, vi } from 'vitest';
import { Guest, resolveConfig } from '../guest/index.js';
import { WARM_RUNS, warmStateLoad, warmSwitchoverCode } from './switchover-warm.js';

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

describe('state-load warm-up (the destination, before the pause)', () => {
  it("checks the paused guest's own state without loading it (no message to its vCPU threads); nothing for a running guest or none", async () => {
    const g = await Guest.createIncoming({ ramBytes: 1 << 20, vcpus: 2, seed: 3, workload: { name: 'kv' } });
    try {
      const before = g.state();
      const check = vi.spyOn(g, 'checkState');
      const load = vi.spyOn(g, 'loadState');
      expect(warmStateLoad(g)).toBe(3);
      expect(check).toHaveBeenCalledTimes(3);
      expect(load).not.toHaveBeenCalled();
      expect(g.state()).toEqual(before);
      expect(g.steps()).toEqual(before.vcpus.map((v) => v.step));
      expect(warmStateLoad(undefined)).toBe(0);
      g.resume();
      expect(warmStateLoad(g)).toBe(0);
    } finally {
      await g.destroy();
    }
  });
});
