import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../guest/index.js';
import { warmSwitchoverCode } from './switchover-warm.js';

describe('switch-over warm-up', () => {
  it('runs the paused window’s decode and digest on a sample state of the guest’s config', () => {
    const config = resolveConfig({ ramBytes: 1 << 20, seed: 1, workload: { name: 'idle' } });
    expect(() => warmSwitchoverCode(config)).not.toThrow();
    expect(() => warmSwitchoverCode(undefined)).not.toThrow();
  });

  it('never throws, even for a config the schema would refuse (the switch-over reports that, not the warm-up)', () => {
    expect(() => warmSwitchoverCode(1 as never)).not.toThrow();
  });
});
