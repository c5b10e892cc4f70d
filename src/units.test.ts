import { describe, expect, it } from 'vitest';
import { UsageError } from './errors.js';
import { formatBytes, parseDuration, parseRate, parseSize } from './units.js';

describe('units', () => {
  it('parses sizes', () => {
    expect(parseSize('4096')).toBe(4096);
    expect(parseSize('64KiB')).toBe(65536);
    expect(parseSize('64k')).toBe(65536);
    expect(parseSize('1.5GiB')).toBe(1.5 * 2 ** 30);
    expect(parseSize('200MB')).toBe(200e6);
    expect(() => parseSize('12 parsecs', '--ram')).toThrow(UsageError);
    expect(() => parseSize('-1')).toThrow(/--|size/);
  });
  it('parses rates in bytes and bits', () => {
    expect(parseRate('128MiB')).toBe(128 * 2 ** 20);
    expect(parseRate('128MiB/s')).toBe(128 * 2 ** 20);
    expect(parseRate('100Mbit')).toBe(12_500_000);
    expect(parseRate('1Gbps')).toBe(125_000_000);
    expect(parseRate('0')).toBe(0);
  });
  it('parses durations', () => {
    expect(parseDuration('300')).toBe(300);
    expect(parseDuration('2s')).toBe(2000);
    expect(() => parseDuration('soon', '--warmup')).toThrow(/--warmup/);
  });
  it('formats bytes', () => {
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(12)).toBe('12 B');
  });
});
