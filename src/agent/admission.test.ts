import { describe, expect, it } from 'vitest';
import { MigrationError, UsageError } from '../errors.js';
import {
  checkAdmissionLimits,
  defaultAdmissionLimits,
  PeerRate,
  ResourceBudget,
  VCPU_OVERHEAD_BYTES,
} from './admission.js';

const MiB = 1 << 20;

describe('PeerRate', () => {
  it('allows a burst per address, then the rate, and keeps addresses apart', () => {
    let t = 0;
    const r = new PeerRate(2, 3, () => t);
    expect([r.take('a'), r.take('a'), r.take('a'), r.take('a')]).toEqual([true, true, true, false]);
    expect(r.take('b')).toBe(true);
    t += 500; // one token back at 2/s
    expect([r.take('a'), r.take('a')]).toEqual([true, false]);
  });

  it('the table of addresses stays bounded', () => {
    const r = new PeerRate(1, 1, () => 0);
    for (let i = 0; i < 10_000; i++) r.take(`10.0.${i >> 8}.${i & 255}`);
    expect(r.size).toBeLessThanOrEqual(4096);
  });
});

describe('ResourceBudget', () => {
  it('counts hosted guests and reservations; a refusal names the limit; release is once', () => {
    // What hosted guests are charged (RAM, and VCPU_OVERHEAD_BYTES per vCPU), as the agent counts it.
    const hosted = { ramBytes: 12 * MiB, vcpus: 1 };
    const b = new ResourceBudget(
      { maxRamBytes: 64 * MiB, maxRamTotalBytes: 60 * MiB, maxVcpus: 4 },
      () => hosted,
    );
    const r = b.reserve({ ramBytes: 4 * MiB, vcpus: 2 }, 'the source announced');
    expect(r.ramBytes).toBe(4 * MiB + 2 * VCPU_OVERHEAD_BYTES);
    expect(() => b.reserve({ ramBytes: 24 * MiB, vcpus: 1 }, 'x')).toThrow(/--max-ram-total/);
    expect(() => b.reserve({ ramBytes: 2 * MiB, vcpus: 2 }, 'x')).toThrow(/--max-vcpus/);
    expect(() => b.reserve({ ramBytes: 65 * MiB, vcpus: 1 }, 'x')).toThrow(/--max-ram\)/);
    expect(() => b.reserve({ ramBytes: 256 * 1024, vcpus: 2 }, 'x')).toThrow(MigrationError);
    r.release();
    r.release();
    expect(b.usage()).toEqual({ ramBytes: 12 * MiB, vcpus: 1, reservedRamBytes: 0, reservedVcpus: 0 });
    expect(b.reserve({ ramBytes: 2 * MiB, vcpus: 2, extraBytes: MiB }, 'x').ramBytes).toBe(
      3 * MiB + 2 * VCPU_OVERHEAD_BYTES,
    );
  });
});

describe('checkAdmissionLimits', () => {
  it('refuses zero, negative and non-integer limits, naming the flag', () => {
    const ok = defaultAdmissionLimits(16 * MiB);
    expect(() => checkAdmissionLimits(ok)).not.toThrow();
    for (const [k, v, flag] of [
      ['maxIncoming', 0, '--max-incoming'],
      ['maxIncoming', Number.NaN, '--max-incoming'],
      ['maxVcpus', 1.5, '--max-vcpus'],
      ['firstByteTimeoutMs', 0, '--first-byte-timeout'],
      ['maxBufferedBytes', 1024, '--max-buffered'],
      ['connectRate', 0, '--connect-rate'],
    ] as const) {
      expect(() => checkAdmissionLimits({ ...ok, [k]: v }), `${k}=${v}`).toThrow(UsageError);
      expect(() => checkAdmissionLimits({ ...ok, [k]: v })).toThrow(flag);
    }
  });
});
