import { describe, expect, it } from 'vitest';
import { UsageError } from '../errors.js';
import {
  DEFAULT_PARAMS,
  KV_MIN_RECORD,
  MAX_RAM_BLOCKS,
  resolveConfig,
  vcpuShare,
  WORKLOAD_NAMES,
} from './config.js';
import { Rng } from './rng.js';
import { KV_NOTE_MIN } from './workloads/kv.js';

const MiB = 1024 * 1024;

describe('guest config', () => {
  it('fills defaults and clamps the working set to RAM', () => {
    const c = resolveConfig({ ramBytes: 16 * MiB, workload: { name: 'gap' } });
    expect(c).toMatchObject({ pageSize: 4096, vcpus: 1, seed: 1, blockBytes: 1024 * MiB, dvfsStall: 'busy' });
    expect(c.workload.params.workingSetBytes).toBe(16 * MiB);
    expect(c.workload.params.bytesPerWrite).toBe(DEFAULT_PARAMS.gap.bytesPerWrite);
    expect(resolveConfig(c)).toEqual(c); // resolving twice changes nothing
  });

  it.each([
    [{ ramBytes: 4097, workload: { name: 'idle' } }, 'ramBytes'],
    [{ ramBytes: MiB, pageSize: 3000, workload: { name: 'idle' } }, 'pageSize'],
    [{ ramBytes: MiB, pageSize: 256, workload: { name: 'idle' } }, 'pageSize'],
    [{ ramBytes: MiB, vcpus: 0, workload: { name: 'idle' } }, 'vcpus'],
    [{ ramBytes: MiB, workload: { name: 'nope' } }, 'workload.name'],
    [
      { ramBytes: MiB, workload: { name: 'kv', params: { recordBytes: 100 } } },
      'workload.params.recordBytes',
    ],
    [
      { ramBytes: MiB, workload: { name: 'zipf', params: { wholePageFraction: 2 } } },
      'workload.params.wholePageFraction',
    ],
    [{ ramBytes: MiB, workload: { name: 'zipf', params: { colour: 1 } } }, 'workload.params.colour'],
    [
      { ramBytes: MiB, workload: { name: 'seq', params: { distribution: 'normal' } } },
      'workload.params.distribution',
    ],
    [{ ramBytes: 8192, vcpus: 4, workload: { name: 'seq' } }, 'workload.params.workingSetBytes'],
    [{ ramBytes: MiB, blockBytes: 1000, workload: { name: 'seq' } }, 'blockBytes'],
  ])('rejects %j naming %s', (config, field) => {
    let err: unknown;
    try {
      resolveConfig(config as never);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).flag).toBe(field);
    expect((err as UsageError).message).toContain(field);
  });

  it('splits the working set into disjoint, covering per-vCPU shares', () => {
    const c = resolveConfig({ ramBytes: 3 * MiB, vcpus: 5, workload: { name: 'gap' } });
    let next = 0;
    for (let i = 0; i < 5; i++) {
      const s = vcpuShare(c, i);
      expect(s.firstPage).toBe(next);
      expect(s.pageCount).toBeGreaterThan(0);
      next += s.pageCount;
    }
    expect(next).toBe((3 * MiB) / 4096);
  });

  it('has a default for every workload and a kv record layout that fits the minimum', () => {
    for (const name of WORKLOAD_NAMES) expect(DEFAULT_PARAMS[name]).toBeDefined();
    expect(KV_NOTE_MIN).toBeGreaterThanOrEqual(8);
    expect(KV_MIN_RECORD).toBeLessThanOrEqual(DEFAULT_PARAMS.kv.recordBytes);
  });
});

describe('Rng (xoshiro128**)', () => {
  it('continues the same sequence from a saved state', () => {
    const a = Rng.seeded(42, 3);
    for (let i = 0; i < 100; i++) a.next();
    const b = new Rng(JSON.parse(JSON.stringify(a.state())));
    for (let i = 0; i < 1000; i++) expect(b.next()).toBe(a.next());
  });

  it('gives different streams per vCPU and per seed, and sane ranges', () => {
    const x = Rng.seeded(1, 0).next();
    expect(Rng.seeded(1, 1).next()).not.toBe(x);
    expect(Rng.seeded(2, 0).next()).not.toBe(x);
    const r = Rng.seeded(7);
    for (let i = 0; i < 10000; i++) {
      const f = r.float();
      expect(f >= 0 && f < 1).toBe(true);
      const n = r.below(3_000_000);
      expect(n >= 0 && n < 3_000_000 && Number.isInteger(n)).toBe(true);
    }
  });

  it('rejects a broken state', () => {
    expect(() => new Rng([0, 0, 0, 0])).toThrow(RangeError);
    expect(() => new Rng([1, 2, 3])).toThrow(RangeError);
  });
});

describe('RAM blocks', () => {
  // That MAX_RAM_BLOCKS is the most a migration HELLO describes is checked in migration/ (guest-limits.test.ts).
  it('a guest has at most MAX_RAM_BLOCKS blocks', () => {
    const at = resolveConfig({ ramBytes: 16 * MiB, blockBytes: 4096, workload: { name: 'idle' } });
    expect(Math.ceil(at.ramBytes / at.blockBytes)).toBe(MAX_RAM_BLOCKS);
    expect(() =>
      resolveConfig({ ramBytes: 256 * MiB, blockBytes: 4096, workload: { name: 'idle' } }),
    ).toThrow(/65536 RAM blocks; a guest may have at most 4096.*blockBytes of at least 65536/);
  });
});
