import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nextQemuCacheSize, qemuCacheBytes } from './xbzrle-sizing.js';

const MiB = 2 ** 20;
const sample = {
  hits: 0,
  misses: 0,
  xbzrlePageBytes: 0,
  xbzrleEncodedBytes: 0,
  overflows: 0,
  hotPages: 0,
  dirtyPages: 0,
};

describe('XBZRLE cache sizes for QEMU', () => {
  it('are always a power of two of pages within the budget (QEMU refuses anything else)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 ** 16 }),
        fc.record({
          hits: fc.nat(100_000),
          misses: fc.nat(100_000),
          xbzrlePageBytes: fc.nat(2 ** 30),
          xbzrleEncodedBytes: fc.nat(2 ** 30),
          overflows: fc.nat(1000),
          hotPages: fc.nat(100_000),
          dirtyPages: fc.nat(100_000),
        }),
        fc.integer({ min: 1, max: 1024 }),
        (currentPages, s, maxMiB) => {
          const next = nextQemuCacheSize(currentPages * 4096, s, { pageSize: 4096, maxBytes: maxMiB * MiB });
          const pages = next / 4096;
          expect(Number.isInteger(Math.log2(pages))).toBe(true);
          expect(next).toBeLessThanOrEqual(maxMiB * MiB);
        },
      ),
    );
  });

  it('grow towards the resend set while misses are common, shrink when XBZRLE does not pay', () => {
    // 8192 pages resent, all misses: grow (×4 at most per round) towards 8192 × 1.25 pages.
    expect(
      nextQemuCacheSize(
        8 * MiB,
        { ...sample, misses: 8192, dirtyPages: 8192 },
        { pageSize: 4096, maxBytes: 256 * MiB },
      ),
    ).toBe(32 * MiB);
    // Deltas as big as the pages: halve.
    expect(
      nextQemuCacheSize(
        32 * MiB,
        { ...sample, hits: 100, xbzrlePageBytes: 100 * 4096, xbzrleEncodedBytes: 90 * 4096 },
        { pageSize: 4096, maxBytes: 256 * MiB },
      ),
    ).toBe(16 * MiB);
    expect(qemuCacheBytes(100 * MiB, 4096)).toBe(64 * MiB);
  });
});
