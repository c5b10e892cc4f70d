import { describe, expect, it } from 'vitest';
import type { Workload } from '../sim/index.js';
import {
  agreementRows,
  calibratedModelMs,
  measuredPrices,
  measuredWorkload,
  migrationModelCheck,
  type SimVariant,
  SLAV_ABSOLUTE,
} from './agreement.js';
import { agreementMarkdown, formatDelta } from './agreement-table.js';
import type { ClusterMetrics, ClusterMigration } from './metrics.js';

const trace: Workload = {
  name: 't',
  vmNames: ['a', 'b'],
  vms: 2,
  samplesPerVm: 4,
  samples: Uint8Array.from([10, 20, 30, 40, 50, 60, 70, 80]),
};

const migration = (vm: number, wallMs: number, speed = 100): ClusterMigration => ({
  vm,
  guest: `vm${vm}`,
  from: 0,
  to: 1,
  interval: 1,
  status: 'completed',
  totalTimeMs: wallMs,
  downtimeMs: 50,
  transferredBytes: 32 * 2 ** 20,
  verified: true,
  traceTime: (wallMs / 1000) * speed,
  traceDowntime: 0.05 * speed,
  modelTimeMs: 250,
  slowdown: 0.3,
  calibration: {
    round1Bytes: 32 * 2 ** 20,
    round1BytesPerSec: 32 * 2 ** 20, // round 1 took 1 s
    dirtyRate: 0,
    resendRatio: 1,
    setupMs: 100,
    roundsMs: 1000,
    downtimeLimitMs: 300,
    maxRounds: 30,
  },
});

describe('the simulator ladder’s inputs', () => {
  it('turns the measured utilisation into a workload: sample 0 from the trace, then the interval means', () => {
    const { workload: w, exact } = measuredWorkload(trace, [
      [0.25, 0.333, 1.4],
      [0.5, 0.6],
    ]);
    expect([...w.samples]).toEqual([10, 25, 33, 100, 50, 50, 60, 80]);
    expect(w.vms).toBe(2);
    expect([...exact]).toEqual([0.1, 0.25, 0.333, 1, 0.5, 0.5, 0.6, 0.8]);
  });

  it('prices each VM’s migration as measured (its own, or the mean), bytes scaled to the simulator’s VM', () => {
    const p = measuredPrices(3, [migration(0, 10_000), migration(0, 20_000), migration(2, 6_000)], () => 10)!;
    expect(p.time[0]).toBe(1500); // (10 s + 20 s) / 2 × 100
    expect(p.time[1]).toBeCloseTo((1000 + 2000 + 600) / 3);
    expect(p.time[2]).toBe(600);
    expect(p.downtime[1]).toBeCloseTo(5);
    expect(p.bytes[2]).toBe(320 * 2 ** 20);
    expect(measuredPrices(3, [{ ...migration(0, 1000), status: 'failed' }], () => 1)).toBeNull();
  });

  it('calibrates the model on the other migrations (leave-one-out), never on the migration itself', () => {
    const done = [
      migration(0, 1150),
      migration(1, 1150),
      migration(1, 1150),
      { ...migration(2, 9000), downtimeMs: 7000 },
    ];
    // Round 1: 1 s; setup 100 ms; switch-over: the others' median downtime (50 ms for the first two).
    expect(calibratedModelMs(done, 0)).toBeGreaterThan(1100);
    expect(calibratedModelMs(done, 0)).toBeLessThan(1250);
    const check = migrationModelCheck(done)!;
    expect(check.n).toBe(4);
    expect(check.apriori.meanS).toBeCloseTo(0.25);
    // The 9-s migration is not predicted by the others' 50-ms switch-overs: one miss of four, median within.
    expect(check.calibrated.medianAbsError).toBeLessThan(0.1);
    expect(check.agrees).toBe(true);
  });
});

describe('agreement rows', () => {
  const metrics: ClusterMetrics = {
    energyKWh: 1,
    migrations: 10,
    slatah: 0.01,
    pdm: 0.01,
    slav: 1e-4,
    esv: 1e-4,
    hostShutdowns: 2,
    meanMigrationTime: 900,
    meanDowntime: 10,
    migrationBytes: 0,
  };
  const variant = (energyKWh: number, migrations: number): SimVariant => ({
    key: 'model',
    label: 'x',
    sim: { ...metrics, energyKWh, migrations } as unknown as SimVariant['sim'],
    series: { time: [], activeHosts: [], migrations: [] },
  });
  const context = {
    deliveredRatio: 0.7,
    measuredMigrationS: 900,
    modelMigrationS: 20,
    measuredDowntimeS: 10,
    modelDowntimeS: 0.1,
    deferred: 3,
    spanIntervals: 3,
    meanSlowdown: 0.3,
  };

  it('marks each variant against the target and names the assumption the ladder moves', () => {
    // Energy: off by 30 % on the trace's samples, 25 % on its means, 24 % with measured prices, 2 % on the measured
    // demand.
    const rows = agreementRows(
      metrics,
      [variant(1 / 1.3, 10), variant(1 / 1.25, 10), variant(1 / 1.24, 10), variant(1 / 1.02, 10)],
      context,
    );
    const energy = rows.find((r) => r.metric === 'energy (kWh)')!;
    expect(energy.agrees).toEqual([false, false, false, true]);
    expect(energy.cause).toMatch(/^delivered CPU: .*0\.70 ×/);
    expect(energy.cause).not.toMatch(/switch-off|sampling|migration model/);
    const migrations = rows.find((r) => r.metric === 'migrations')!;
    expect(migrations.agrees).toEqual([true, true, true, true]);
    expect(migrations.cause).toBe('');
  });

  it('falls back on the residual assumption when the ladder does not close the gap', () => {
    const rows = agreementRows(
      metrics,
      [variant(1, 5), variant(1, 5), variant(1, 5), variant(1, 5)],
      context,
    );
    const m = rows.find((r) => r.metric === 'migrations')!;
    expect(m.relative).toEqual([1, 1, 1, 1]);
    expect(m.cause).toMatch(/placement during a migration.*3 held back/);
    expect(rows.find((r) => r.metric === 'SLAV')!.agrees).toEqual([true, true, true, true]);
  });

  it('SLAV with one side 0 is judged on the absolute difference, and the cell says so', () => {
    const slav = (x: number): SimVariant => ({
      ...variant(1, 10),
      sim: { ...metrics, slav: x } as unknown as SimVariant['sim'],
    });
    const rows = agreementRows(
      { ...metrics, slav: 0 },
      [slav(4.56e-7), slav(0), slav(3.8e-5), slav(1.2e-6)],
      context,
    );
    const row = rows.find((r) => r.metric === 'SLAV')!;
    expect(row.absolute).toBe(SLAV_ABSOLUTE);
    expect(row.byAbsolute).toEqual([true, true, true, true]);
    expect(row.agrees).toEqual([true, true, false, false]);
    expect([0, 1, 2, 3].map((i) => formatDelta(row, i))).toEqual([
      '|Δ| 4.6e-7 ≤ 1.0e-6 ✓',
      '|Δ| 0 ≤ 1.0e-6 ✓',
      '|Δ| 3.8e-5 > 1.0e-6 ✗',
      '|Δ| 1.2e-6 > 1.0e-6 ✗',
    ]);
    // Both nonzero: the relative rule, as before.
    const both = agreementRows(metrics, [slav(1.1e-4), slav(1.5e-4), slav(1e-4), slav(1e-4)], context);
    const b = both.find((r) => r.metric === 'SLAV')!;
    expect(b.byAbsolute).toEqual([false, false, false, false]);
    expect(b.agrees).toEqual([true, false, true, true]);
    expect(formatDelta(b, 1)).toBe('-33 % ✗');
    // The table's target column states both rules.
    const md = agreementMarkdown({
      agreement: {
        variants: [slav(4.56e-7)],
        rows: [row],
        migrationModel: null,
        deliveredRatio: 1,
      } as never,
    });
    expect(md).toContain('±20 %; |Δ| ≤ 1e-6 if one is 0');
  });

  it('names CloudSim’s instantaneous sample when the trace means close the gap', () => {
    const rows = agreementRows(
      metrics,
      [variant(1, 20), variant(1, 10), variant(1, 10), variant(1, 10)],
      context,
    );
    const m = rows.find((r) => r.metric === 'migrations')!;
    expect(m.agrees).toEqual([false, true, true, true]);
    expect(m.cause).toMatch(/^sampling: CloudSim .*instantaneous/);
    expect(m.cause).not.toMatch(/migration model|delivered CPU/);
  });
});
