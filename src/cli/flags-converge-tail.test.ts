/** --no-converge-tail: classic pre-copy's switch-over (the first round that fits), as QEMU. */
import { describe, expect, it } from 'vitest';
import { resolveOptions } from '../migration/index.js';
import { migrationOptionsFromFlags } from './flags.js';

describe('--no-converge-tail', () => {
  it('turns the converged tail off; without the flag the default (on) stays', () => {
    const off = migrationOptionsFromFlags({ convergeTail: false }).options;
    expect(off.convergeTail).toBe(false);
    expect(resolveOptions(off, undefined, 1 << 26).convergeTail).toBe(false);
    // commander gives true when the negated flag is absent: that must not override a preset's choice.
    expect(migrationOptionsFromFlags({ convergeTail: true }).options).not.toHaveProperty('convergeTail');
    expect(resolveOptions({}, undefined, 1 << 26).convergeTail).toBe(true);
  });
});
