import { describe, expect, it } from 'vitest';
import { capStretch, fitBatch, MAX_STRETCH, MIN_PERIOD_WORK_MS, nextStepMs } from './work-batch.js';

describe('work batches and CAP stretch', () => {
  it('a batch fits what is left of the phase, at least one step, at most the batch', () => {
    expect(fitBatch(1024, 0, 1)).toBe(1); // no estimate: one step measures it
    expect(fitBatch(1024, 0.001, 0.015)).toBe(15); // 15 µs left at 1 µs a step
    expect(fitBatch(16, 0.001, 1)).toBe(16);
    expect(fitBatch(1024, 0.001, -0.5)).toBe(1); // late already: still one step
  });

  it('the step estimate is a moving average of the batches', () => {
    expect(nextStepMs(0, 0.1, 100)).toBeCloseTo(0.001);
    expect(nextStepMs(0.001, 0.15, 100)).toBeCloseTo(0.75 * 0.001 + 0.25 * 0.0015);
    // A batch stretched by a deschedule counts as at most twice the estimate.
    expect(nextStepMs(0.001, 10, 100)).toBeCloseTo(0.75 * 0.001 + 0.25 * 0.002);
    expect(nextStepMs(0.002, 0.5, 0)).toBe(0.002);
  });

  it('a light allotment takes its periods several at a time; a heavy one or an uncapped vCPU does not', () => {
    expect(capStretch(0, 0.05, 30)).toBe(1);
    expect(capStretch(25, 1, 30)).toBe(1);
    expect(capStretch(2, 1, 30)).toBe(1); // 0.6 ms a period
    expect(capStretch(1, 1, 30)).toBe(2); // 0.3 ms
    expect(capStretch(1, 0.05, 30)).toBe(MAX_STRETCH);
    for (const [cap, f] of [
      [1, 0.5],
      [1, 0.25],
      [3, 0.2],
    ] as const) {
      const m = capStretch(cap, f, 30);
      expect((cap / 100) * 30 * m * f).toBeGreaterThanOrEqual(MIN_PERIOD_WORK_MS);
      expect((cap / 100) * 30 * (m - 1) * f).toBeLessThan(MIN_PERIOD_WORK_MS);
    }
  });
});
