import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DIGEST_WORDS, initDigestSums, recordCrc, sumsDigest } from './digest.js';
import { combineCrcs, PageLedger, zeroPageCrc } from './ledger.js';

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
