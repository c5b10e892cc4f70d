import fc from 'fast-check';
import { expect, it } from 'vitest';
import { isZeroPage } from './zero.js';

it('isZeroPage is true exactly when every byte is zero, for any size and position', () => {
  expect(isZeroPage(new Uint8Array(0))).toBe(true);
  expect(isZeroPage(new Uint8Array(4096))).toBe(true);
  expect(isZeroPage(new Uint8Array(65536))).toBe(true);
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 40000 }),
      fc.nat(),
      fc.integer({ min: 1, max: 255 }),
      (n, at, v) => {
        const page = new Uint8Array(n);
        page[at % n] = v;
        expect(isZeroPage(page)).toBe(false);
        expect(isZeroPage(page.subarray(0, at % n))).toBe(true);
      },
    ),
  );
});
