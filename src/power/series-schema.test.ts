import { describe, expect, it } from 'vitest';
import { MigrationError } from '../errors.js';
import type { PowerSeries } from './meter.js';
import { parsePowerSeries } from './series-schema.js';

const good: PowerSeries = {
  model: 'i7-920',
  capacityCores: 2,
  rapl: false,
  labels: { cpuMs: 'measured', utilisation: 'measured', watts: 'modelled', raplWatts: 'measured' },
  samples: [
    {
      at: 1,
      intervalMs: 100,
      vcpuCpuMs: 50,
      mainCpuMs: 5,
      otherCpuMs: 1,
      utilisation: 0.3,
      dvfsState: 0,
      ghz: null,
      watts: 120,
      raplWatts: null,
      guests: [{ id: 'g1', cpuMs: 50, steps: 9, cap: 100, frequency: 1 }],
    },
  ],
};

describe("another agent's GET /v1/power body", () => {
  it('is taken as it is when it is a power series', () => {
    expect(parsePowerSeries(JSON.parse(JSON.stringify(good)), 'a:1')).toEqual(good);
  });

  it('is a PROTOCOL error naming the field when it is not', () => {
    const bad: unknown[] = [
      null,
      { ...good, samples: 'none' },
      { ...good, samples: [{ ...good.samples[0], watts: '120' }] },
      { ...good, labels: { ...good.labels, watts: 'guessed' } },
    ];
    expect.assertions(bad.length * 2);
    for (const b of bad) {
      try {
        parsePowerSeries(b, 'a:1');
      } catch (err) {
        expect(err).toBeInstanceOf(MigrationError);
        expect((err as MigrationError).code).toBe('PROTOCOL');
      }
    }
  });
});
