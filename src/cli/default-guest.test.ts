/**
 * The CLI's guest when no --workload is given (livemig run, guest start, profile, predict): the demo's busy but
 * migratable gap guest, not gap at full speed; explicit flags win, a named workload keeps its own defaults. And
 * QEMU's --avail-switchover-bandwidth flag.
 */
import { describe, expect, it } from 'vitest';
import { UsageError } from '../errors.js';
import { DEFAULT_PARAMS, resolveConfig } from '../guest/index.js';
import { DEFAULT_GUEST_PARAMS } from './default-guest.js';
import { type GuestFlagValues, guestConfigFromFlags, migrationOptionsFromFlags } from './flags.js';

const MiB = 1024 * 1024;
const base: GuestFlagValues = { ram: '256MiB', vcpus: '1', pageSize: '4KiB', seed: '1', cap: '0' };

describe('the default guest', () => {
  it('without --workload: gap at 20 000 pages/s over a 64 MiB heap, as the demo migrates it', () => {
    const { config } = guestConfigFromFlags(base);
    expect(config.workload).toEqual({
      name: 'gap',
      params: { workingSetBytes: 64 * MiB, writeRate: 20_000, bytesPerWrite: 16, wholePageFraction: 0.02 },
    });
    expect(config.workload.params).toEqual(DEFAULT_GUEST_PARAMS);
    // Not gap's own defaults, which write as fast as a core can over 200 MiB (a guest that outruns any link).
    expect(DEFAULT_PARAMS.gap.writeRate).toBe(0);
    expect(resolveConfig(config).workload.params.writeRate).toBe(20_000);
  });

  it('explicit guest flags win; a named --workload keeps its own defaults', () => {
    expect(guestConfigFromFlags({ ...base, writeRate: '0' }).config.workload.params).toMatchObject({
      writeRate: 0,
      workingSetBytes: 64 * MiB,
    });
    expect(guestConfigFromFlags({ ...base, workload: 'gap' }).config.workload).toEqual({
      name: 'gap',
      params: {},
    });
    expect(guestConfigFromFlags({ ...base, workload: 'kv' }).config.workload).toEqual({
      name: 'kv',
      params: {},
    });
  });
});

describe('--avail-switchover-bandwidth', () => {
  it("sets QEMU's avail-switchover-bandwidth in bytes/s; unset it stays 0 (measured)", () => {
    expect(
      migrationOptionsFromFlags({ availSwitchoverBandwidth: '512MiB' }).options.availSwitchoverBandwidth,
    ).toBe(512 * MiB);
    expect(migrationOptionsFromFlags({}).options.availSwitchoverBandwidth).toBeUndefined();
    expect(() => migrationOptionsFromFlags({ availSwitchoverBandwidth: 'fast' })).toThrow(UsageError);
  });
});
