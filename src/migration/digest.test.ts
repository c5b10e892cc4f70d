import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DIGEST_WORDS, initDigestSums, recordCrc, sumsDigest } from './digest.js';
import { canonicalJson, combineCrcs, PageLedger, vcpuDigest, zeroPageCrc } from './ledger.js';

describe('incremental ledger digest', () => {
  it('equals the full combination after any sequence of page updates', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 0xffffffff }), fc.boolean()), {
          maxLength: 400,
        }),
        fc.boolean(),
        (pages, updates, shared) => {
          const ledger = new PageLedger(pages, 4096, shared);
          for (const [page, crc, zero] of updates) {
            const p = page % pages;
            if (zero) ledger.setZero(p);
            else ledger.set(p, crc);
          }
          expect(ledger.digest()).toBe(combineCrcs(ledger.crcs));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('starts from the full combination of whatever the CRCs hold', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 200 }),
        (xs) => {
          const crcs = Uint32Array.from(xs);
          const sums = new Int32Array(DIGEST_WORDS);
          initDigestSums(crcs, sums);
          expect(sumsDigest(sums)).toBe(combineCrcs(crcs));
          // Rewriting every page with its own value changes nothing; rewriting one changes the digest.
          for (let i = 0; i < crcs.length; i++) recordCrc(crcs, sums, i, crcs[i]!);
          expect(sumsDigest(sums)).toBe(combineCrcs(crcs));
          recordCrc(crcs, sums, 0, (crcs[0]! ^ 1) >>> 0);
          expect(sumsDigest(sums)).toBe(combineCrcs(crcs));
        },
      ),
    );
  });

  it('tells two ledgers with swapped pages apart, as the full digest does', () => {
    const a = new PageLedger(8, 4096);
    const b = new PageLedger(8, 4096);
    a.set(1, 111);
    a.set(2, 222);
    b.set(1, 222);
    b.set(2, 111);
    expect(a.digest()).not.toBe(b.digest());
    expect(new PageLedger(8, 4096).digest()).toBe(combineCrcs(new Uint32Array(8).fill(zeroPageCrc(4096))));
  });
});

/** The vCPU digest's canonical JSON as first written (entries, filter, sort, map, join): the reference. */
function referenceCanonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(referenceCanonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${referenceCanonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

describe('vCPU digest', () => {
  it('canonical JSON is the same text as the reference rendering, for any JSON-like value', () => {
    const value = fc.letrec((tie) => ({
      leaf: fc.oneof(
        fc.integer(),
        fc.double(),
        fc.string(),
        fc.boolean(),
        fc.constant(null),
        fc.constant(undefined),
      ),
      node: fc.oneof(
        { depthSize: 'small' },
        tie('leaf'),
        fc.array(tie('node'), { maxLength: 5 }),
        fc.dictionary(fc.string(), tie('node'), { maxKeys: 6 }),
      ),
    })).node;
    fc.assert(
      fc.property(value, (v) => {
        expect(canonicalJson(v)).toBe(referenceCanonicalJson(v));
      }),
      { numRuns: 2000 },
    );
  });

  it('a guest state gives the same digest as the reference rendering', () => {
    const state = {
      config: {
        ramBytes: 1 << 26,
        pageSize: 4096,
        vcpus: 2,
        workload: { name: 'idle', params: { a: 1, b: 0.5 } },
      },
      vcpus: [
        { index: 0, step: 12, rng: [1, 2, 3, 4], registers: { z: 1, a: 2 } },
        { index: 1, step: 7, rng: [5, 6, 7, 8], registers: {} },
      ],
    };
    expect(vcpuDigest(state)).toBe(createHash('sha256').update(referenceCanonicalJson(state)).digest('hex'));
  });
});
