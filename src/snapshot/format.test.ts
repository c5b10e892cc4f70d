/**
 * Property tests of the snapshot file format: what is built parses back to the same guest; a file changed anywhere
 * either parses to exactly the same guest (the byte was padding or a hole) or is refused with SNAPSHOT_CORRUPT /
 * SNAPSHOT_FORMAT — never a different guest; arbitrary bytes are refused with those codes only.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../guest/config.js';
import type { GuestState } from '../guest/index.js';
import { buildSnapshot, parseSnapshot, SnapshotError } from './index.js';

const PAGES = 12;
const config = resolveConfig({ ramBytes: PAGES * 4096, vcpus: 2, seed: 9, workload: { name: 'gap' } });

const stateArb: fc.Arbitrary<GuestState> = fc
  .tuple(
    fc.nat({ max: 1e9 }),
    fc.nat({ max: 1e9 }),
    fc.array(fc.integer({ min: 1, max: 0xffffffff }), { minLength: 4, maxLength: 4 }),
  )
  .map(([s0, s1, rng]) => ({
    config,
    vcpus: [s0, s1].map((step, index) => ({
      index,
      step,
      rng,
      registers: { cursor: index, alloc: 0, writes: step, checksum: 7 },
    })),
  }));

// Pages: zero, one byte set, or random bytes.
const pageArb = fc.oneof(
  fc.constant(new Uint8Array(4096)),
  fc.tuple(fc.nat({ max: 4095 }), fc.integer({ min: 1, max: 255 })).map(([at, v]) => {
    const p = new Uint8Array(4096);
    p[at] = v;
    return p;
  }),
  fc.uint8Array({ minLength: 4096, maxLength: 4096 }),
);
const ramArb = fc.array(pageArb, { minLength: PAGES, maxLength: PAGES });

function snapshotError(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (err instanceof SnapshotError) return err.code;
    throw err;
  }
}

const nonZero = (p: Uint8Array) => p.some((b) => b !== 0);

describe('snapshot file format', () => {
  it('round trip: the parsed snapshot is the guest that was written (zero pages are holes)', () => {
    fc.assert(
      fc.property(stateArb, ramArb, (state, ram) => {
        const bytes = buildSnapshot(state, (p) => ram[p]!);
        const { header, pages } = parseSnapshot(bytes);
        expect(header.guest.vcpus).toEqual(state.vcpus);
        expect([...pages.keys()]).toEqual(ram.flatMap((p, i) => (nonZero(p) ? [i] : [])));
        for (const [p, data] of pages) expect(Buffer.from(data).equals(Buffer.from(ram[p]!))).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it('a changed byte anywhere: refused with a snapshot code, or the very same guest', () => {
    fc.assert(
      fc.property(stateArb, ramArb, fc.nat(), fc.integer({ min: 1, max: 255 }), (state, ram, where, xor) => {
        const bytes = buildSnapshot(state, (p) => ram[p]!);
        const at = where % bytes.length;
        const bad = Buffer.from(bytes);
        bad[at]! ^= xor;
        const original = parseSnapshot(bytes);
        let got: ReturnType<typeof parseSnapshot> | undefined;
        const code = snapshotError(() => {
          got = parseSnapshot(bad);
        });
        if (code) return;
        expect(got!.header).toEqual(original.header);
        expect([...got!.pages.keys()]).toEqual([...original.pages.keys()]);
        for (const [p, data] of got!.pages)
          expect(Buffer.from(data).equals(Buffer.from(original.pages.get(p)!))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('cut short anywhere: refused', () => {
    const bytes = buildSnapshot(
      { config, vcpus: [0, 1].map((index) => ({ index, step: 1, rng: [1, 2, 3, 4], registers: {} })) },
      (p) => new Uint8Array(4096).fill(p),
    );
    fc.assert(
      fc.property(fc.nat({ max: bytes.length - 1 }), (len) => {
        expect(snapshotError(() => parseSnapshot(bytes.subarray(0, len)))).toBeDefined();
      }),
      { numRuns: 200 },
    );
  });

  it('arbitrary bytes: only SNAPSHOT_CORRUPT or SNAPSHOT_FORMAT', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (b) => {
        expect(snapshotError(() => parseSnapshot(b))).toBeDefined();
      }),
      { numRuns: 500 },
    );
  });
});
