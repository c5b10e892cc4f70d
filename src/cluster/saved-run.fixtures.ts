/**
 * A saved `livemig cluster --out DIR` run for tests: 4 hosts, 8 VMs of 32 MiB, the first hour of a bundled day,
 * one completed migration. Only the fields the agreement reads; tests vary the values they assert on.
 */
export const SAVED_INTERVALS = 12;

export interface SavedRunShape {
  policy: string;
  /** Each VM's CPU utilisation at interval k. */
  utilisation: (vm: number, k: number) => number;
  demandMeasured: number;
  demandTrace: number;
  energyKWh: number;
  pdm: number;
  hostShutdowns: number;
  /** The VM that migrated, from host `from` to host `to`. */
  migration: { vm: number; from: number; to: number; slowdown: number };
}

export function savedClusterRun(shape: SavedRunShape) {
  const K = SAVED_INTERVALS;
  const { vm, from, to, slowdown } = shape.migration;
  return {
    policy: shape.policy,
    day: '20110306',
    window: { startSec: 0, durationSec: K * 300, intervals: K },
    speed: 120,
    hosts: [0, 1, 2, 3].map((index) => ({ index, type: 'x', mips: 1, address: '', pid: 0, alive: true })),
    vms: Array.from({ length: 8 }, (_, v) => ({
      index: v,
      ramMiB: 32,
      utilisation: Array.from({ length: K }, (_, k) => shape.utilisation(v, k)),
    })),
    intervals: Array.from({ length: K }, () => ({
      activeHosts: 2,
      started: 0,
      demandMeasured: shape.demandMeasured,
      demandTrace: shape.demandTrace,
      gain: 0.7,
    })),
    migrations: [
      {
        vm,
        guest: `vm${vm}`,
        from,
        to,
        interval: 2,
        status: 'completed',
        totalTimeMs: 700,
        downtimeMs: 40,
        transferredBytes: 40 * 2 ** 20,
        verified: true,
        traceTime: 84,
        traceDowntime: 4.8,
        modelTimeMs: 260,
        slowdown,
      },
    ],
    metrics: {
      energyKWh: shape.energyKWh,
      migrations: 1,
      slatah: 0,
      pdm: shape.pdm,
      slav: 0,
      esv: 0,
      hostShutdowns: shape.hostShutdowns,
      meanMigrationTime: 84,
      meanDowntime: 4.8,
      migrationBytes: 40 * 2 ** 20,
    },
    deferred: 0,
    wallMs: 40_000,
  };
}
