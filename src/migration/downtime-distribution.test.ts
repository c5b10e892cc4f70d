import { describe, expect, it } from 'vitest';
import { describeDowntime, downtimeDistribution, PRODUCTION_ANCHOR } from './downtime-distribution.js';

describe('downtime distribution', () => {
  it('gives median, p99 and max, ignoring non-finite values', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    const d = downtimeDistribution([...xs, Number.NaN]);
    expect(d).toEqual({ count: 100, medianMs: 50, p90Ms: 90, p99Ms: 99, maxMs: 100 });
    expect(downtimeDistribution([])).toEqual({ count: 0, medianMs: 0, p90Ms: 0, p99Ms: 0, maxMs: 0 });
  });

  it('prints the production anchor beside it', () => {
    const line = describeDowntime(downtimeDistribution([1, 2, 3, 40]), 'soak migrations');
    expect(line).toContain('over 4 soak migrations');
    expect(line).toContain(`${PRODUCTION_ANCHOR.medianMs} ms median, ${PRODUCTION_ANCHOR.p99Ms} ms p99`);
    expect(line).toContain('VEE 2018');
    expect(describeDowntime(downtimeDistribution([400]))).toContain('above the anchor');
    expect(describeDowntime(downtimeDistribution([]))).toContain('no completed');
  });
});
