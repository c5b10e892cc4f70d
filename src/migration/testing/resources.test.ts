import { describe, expect, it } from 'vitest';
import { testGuest } from './fixtures.js';
import { disposeAll } from './resources.js';

describe('disposeAll', () => {
  it("closes every resource and the test guests even when one's close fails, then throws that failure", async () => {
    const closed: string[] = [];
    const guest = await testGuest();
    const failure = new Error('close failed');
    await expect(
      disposeAll([
        { close: () => void closed.push('sync close') },
        {
          close: async () => {
            throw failure;
          },
        },
        { destroy: () => void closed.push('destroy') },
        { close: async () => void closed.push('async close') },
      ]),
    ).rejects.toBe(failure);
    expect(closed.sort()).toEqual(['async close', 'destroy', 'sync close']);
    expect(() => guest.resume()).toThrow(/destroyed/);
  });
});
