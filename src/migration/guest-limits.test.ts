/**
 * The guest's limits that the protocol must describe. Here, not in guest/: migration imports the guest, never the
 * reverse (test/architecture.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { MAX_RAM_BLOCKS } from '../guest/config.js';
import { MAX_BLOCKS } from './protocol/index.js';

describe('guest limits', () => {
  it('a HELLO describes as many RAM blocks as a guest may have', () => {
    expect(MAX_RAM_BLOCKS).toBe(MAX_BLOCKS);
  });
});
