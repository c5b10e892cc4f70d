/** --postcopy-preempt: the flag sets the option; the option needs a post-copy (QEMU: postcopy-ram). */
import { describe, expect, it } from 'vitest';
import { resolveOptions } from '../migration/index.js';
import { migrationOptionsFromFlags } from './flags.js';

describe('--postcopy-preempt', () => {
  it('sets postcopyPreempt; resolveOptions refuses it without post-copy', () => {
    const { options } = migrationOptionsFromFlags({ strategy: 'postcopy', postcopyPreempt: true });
    expect(options.postcopyPreempt).toBe(true);
    expect(resolveOptions(options, undefined, 1 << 26).postcopyPreempt).toBe(true);
    expect(migrationOptionsFromFlags({}).options.postcopyPreempt).toBeUndefined();
    expect(() =>
      resolveOptions(migrationOptionsFromFlags({ postcopyPreempt: true }).options, undefined, 1 << 26),
    ).toThrow(/postcopy/);
    expect(
      resolveOptions({ onNonConvergence: 'postcopy', postcopyPreempt: true }, undefined, 1 << 26)
        .postcopyPreempt,
    ).toBe(true);
  });
});
