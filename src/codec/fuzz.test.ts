import { expect, it } from 'vitest';
import { fuzzCodecs } from './fuzz.js';

// Bounded here; `npm run fuzz:codec -- --iterations 5000000` runs the same loop for millions of inputs.
it('20k hostile inputs: only CodecError, XBZRLE agrees with the model, no write outside the page', () => {
  const counts = fuzzCodecs(20_000, 0x1f2e3d4c);
  expect(counts.failures).toEqual([]);
  expect(counts.inputs).toBe(20_000);
  // Both outcomes must occur, or the generator is not exercising the decoders.
  expect(counts.accepted).toBeGreaterThan(1000);
  expect(counts.rejected).toBeGreaterThan(1000);
});
