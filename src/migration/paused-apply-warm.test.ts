/** The destination's paused-apply warm-up (paused-apply-warm.ts): its sample is real XBZRLE, walked in full. */
import { describe, expect, it } from 'vitest';
import { pageCrc } from './ledger.js';
import { decodePageInto } from './page-decode.js';
import { WARM_PAYLOADS, warmPausedApply, warmTarget } from './paused-apply-warm.js';
import { PageEncoding } from './protocol/index.js';

describe('paused-apply warm-up', () => {
  it('walks its sample payloads with the given apply function: XBZRLE deltas of page 0 that decode', () => {
    const t = warmTarget(4096);
    const seen: { page: number; encoding: PageEncoding; crc: number }[] = [];
    const n = warmPausedApply(t, (page, encoding, data) => {
      t.page.fill(0);
      decodePageInto(page, encoding, data, t.page, new Map());
      seen.push({ page, encoding, crc: pageCrc(t.page) });
    });
    expect(n).toBe(seen.length);
    expect(n).toBe(WARM_PAYLOADS * 32);
    expect(seen.every((e) => e.page === 0 && e.encoding === PageEncoding.XBZRLE)).toBe(true);
    // Each entry is the same delta against a zero page: a changed byte every 16 bytes.
    const expected = new Uint8Array(4096);
    for (let i = 0; i < 4096; i += 16) expected[i] = 1 + ((i >> 4) & 0x7f);
    expect(Buffer.from(t.page).equals(Buffer.from(expected))).toBe(true);
    expect(new Set(seen.map((e) => e.crc))).toEqual(new Set([pageCrc(expected)]));
    expect(t.ledger.pageCount).toBe(1);
  });

  it('is built once per page size, in shared memory like guest RAM', () => {
    expect(warmTarget(4096)).toBe(warmTarget(4096));
    expect(warmTarget(8192).page.length).toBe(8192);
    expect(warmTarget(8192).page.buffer).toBeInstanceOf(SharedArrayBuffer);
  });

  it('never throws: a failing apply function ends the warm-up', () => {
    let calls = 0;
    const n = warmPausedApply(warmTarget(4096), () => {
      calls++;
      throw new Error('boom');
    });
    expect(calls).toBe(1);
    expect(n).toBe(0);
  });
});
