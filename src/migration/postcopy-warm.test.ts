import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../guest/index.js';
import { markValidPages, warmPostcopyStart } from './postcopy-warm.js';
import { WARM_RUNS } from './switchover-warm.js';

describe('post-copy start: marking the valid pages', () => {
  it('marks exactly the pages whose bit is set, below the page count, in address order', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.uint8Array({ maxLength: 40 }), (pageCount, bytes) => {
        const valid = new Uint8Array(Math.ceil(pageCount / 8));
        valid.set(bytes.subarray(0, valid.length));
        const marked: number[] = [];
        const n = markValidPages(valid, pageCount, (p) => marked.push(p));
        const expected: number[] = [];
        for (let p = 0; p < pageCount; p++) if (valid[p >> 3]! & (1 << (p & 7))) expected.push(p);
        expect(marked).toEqual(expected);
        expect(n).toBe(expected.length);
      }),
    );
  });

  it('ignores bits past the last page (the bitmap is rounded up to whole bytes)', () => {
    const marked: number[] = [];
    expect(markValidPages(Uint8Array.of(0xff, 0xff), 10, (p) => marked.push(p))).toBe(10);
    expect(marked).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});

describe('post-copy start: warm-up', () => {
  const config = resolveConfig({ ramBytes: 1 << 20, seed: 1, workload: { name: 'idle' } });

  it('decodes and marks a sample start several times, none without pages; never throws', () => {
    expect(warmPostcopyStart(config, 256)).toBe(WARM_RUNS);
    expect(warmPostcopyStart(config, 256, 3)).toBe(3);
    expect(warmPostcopyStart(config, 0)).toBe(0);
    expect(() => warmPostcopyStart(undefined, 256)).not.toThrow();
    expect(() => warmPostcopyStart(1 as never, 256)).not.toThrow();
  });
});
