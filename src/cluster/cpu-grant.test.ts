import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { capAndFrequency, capStep, SUBSTEPS } from './cpu-grant.js';

describe('the CPU a VM is granted', () => {
  it("sets the CAP at each substep's middle, so that the substeps' mean is the trace's interval mean", () => {
    // A trace linear over the interval [k, k + 1] from a to b: the substeps' mean must be (a + b) / 2.
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 0, max: 100 }),
        (k, a, b) => {
          let sum = 0;
          for (let j = 0; j < SUBSTEPS; j++) {
            const pos = capStep(k, j);
            expect(pos).toBeGreaterThanOrEqual(k);
            expect(pos).toBeLessThan(k + 1);
            sum += a + (b - a) * (pos - k);
          }
          expect(sum / SUBSTEPS).toBeCloseTo((a + b) / 2, 9);
        },
      ),
    );
  });

  it('grants exactly c % of a core at any c, as a whole CAP times a frequency in (0, 1]', () => {
    fc.assert(
      fc.property(fc.double({ min: 1, max: 100, noNaN: true }), (c) => {
        const { cap, frequency } = capAndFrequency(c);
        expect(Number.isInteger(cap)).toBe(true);
        expect(frequency).toBeGreaterThan(0);
        expect(frequency).toBeLessThanOrEqual(1);
        expect(cap * frequency).toBeCloseTo(c, 9);
      }),
    );
    expect(capAndFrequency(0.3)).toEqual({ cap: 1, frequency: 0.3 });
    expect(capAndFrequency(0)).toEqual({ cap: 1, frequency: 0.001 });
    expect(capAndFrequency(2.5)).toEqual({ cap: 3, frequency: 2.5 / 3 });
  });
});
