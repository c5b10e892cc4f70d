/**
 * dirty-limit: three ways to make a guest that outruns the link converge, on a read-mostly kv store and on gap.
 * auto-converge (QEMU's CPU throttle, here a CAP on every vCPU that rises 20 points a step), dirty-limit (QEMU
 * 8.1: each vCPU may newly dirty at most vcpu-dirty-limit MB/s; vCPUs that do not write run free) and the seed's
 * CAP (every vCPU held to 15% of a CPU for the whole transfer), against plain pre-copy. Shows convergence, total
 * time, downtime, the guest's slowdown and, on kv-read, how much the reads (GETs) were slowed.
 */
import type { MigrationOptions } from '../migration/index.js';
import { barChart } from '../report/index.js';
import { find, guest, MiB, mib, ms, pct, statusOf } from './common.js';
import type { Cell, CellResult, Experiment, ExperimentConfig, Summary } from './types.js';

const VARIANTS = ['precopy', 'auto-converge', 'dirty-limit', 'cap'] as const;
type Variant = (typeof VARIANTS)[number];
const WORKLOADS = ['kv-read', 'gap'] as const;

/** The link: 8 MiB/s (2048 pages/s), so a writer at 6000 pages/s dirties three times what it can carry, and still
 *  does on a loaded host (the writes are paced; a vCPU reaches 6000 pages/s with a few % of a CPU). */
const BANDWIDTH = 8 * MiB;
const WRITE_RATE = 6000;
const MAX_ROUNDS = 10;
/** dirty-limit: 2 MB/s per vCPU (512 pages/s), a quarter of the link, counted over 100 ms periods. */
const VCPU_DIRTY_LIMIT = 2;
const PERIOD_MS = 100;
/** The seed's CAP for the migrating VM. */
const SEED_CAP = 15;

function warmupMs(cfg: ExperimentConfig): number {
  // Reads/s before the migration are measured over the warm-up: long enough to average out a loaded host.
  return cfg.mode === 'tiny' ? 300 : 1000;
}

function options(v: Variant): Partial<MigrationOptions> {
  const base: Partial<MigrationOptions> = { maxBandwidth: BANDWIDTH, maxRounds: MAX_ROUNDS };
  switch (v) {
    case 'precopy':
      return base;
    case 'auto-converge':
      return { ...base, autoConverge: true, throttleInitial: 20, throttleIncrement: 20 };
    case 'dirty-limit':
      return { ...base, dirtyLimit: true, vcpuDirtyLimit: VCPU_DIRTY_LIMIT, dirtyLimitPeriodMs: PERIOD_MS };
    case 'cap':
      return { ...base, capping: 'cap', migrationCap: SEED_CAP };
  }
}

function plan(cfg: ExperimentConfig): Cell[] {
  const cells: Cell[] = [];
  for (const w of WORKLOADS) {
    // kv-read: 2 vCPUs, vCPU 0 takes the PUTs (a fifth of its steps, paced at WRITE_RATE pages/s, keys uniform)
    // and vCPU 1 serves GETs only. gap: one vCPU writing at WRITE_RATE. A quarter of RAM in use.
    const g =
      w === 'kv-read'
        ? {
            ...guest(cfg, 'kv-read', {
              writeRate: WRITE_RATE,
              workingSetFraction: 0.25,
              // Keys drawn uniformly: no hot set to absorb the PUTs, so plain pre-copy cannot converge.
              distribution: 'uniform',
            }),
            vcpus: 2,
          }
        : guest(cfg, 'gap', { writeRate: WRITE_RATE, workingSetFraction: 0.25 });
    for (const v of VARIANTS) {
      if (cfg.mode === 'tiny' && v === 'precopy') continue;
      cells.push({
        id: `${w}/${v}`,
        labels: { workload: w, variant: v },
        spec: { guest: g, warmupMs: warmupMs(cfg), options: options(v) },
      });
    }
  }
  return cells;
}

function summarise(results: readonly CellResult[], _cfg: ExperimentConfig): Summary {
  const rows: (string | number)[][] = [];
  const chart: Record<string, string | number>[] = [];
  const findings: string[] = [];
  for (const w of WORKLOADS) {
    for (const v of VARIANTS) {
      const r = find(results, { workload: w, variant: v });
      if (!r) continue;
      const m = r.measured;
      const reads = w === 'kv-read';
      rows.push([
        w,
        v,
        m.switchoverReason || statusOf(r),
        m.rounds,
        ms(m.migrationTimeMs),
        ms(m.downtimeMs),
        mib(m.bytes),
        pct(m.guestSlowdown),
        reads ? Math.round(m.readsPerSecBefore ?? 0) : '',
        reads ? Math.round(m.readsPerSecDuring ?? 0) : '',
        reads ? pct(m.readSlowdown ?? 0) : '',
        v === 'auto-converge' || v === 'cap' ? m.throttleMax : '',
        ms(m.heldMsVcpu0 ?? 0),
        reads ? ms(m.heldMsOtherVcpus ?? 0) : '',
        v === 'dirty-limit' ? Number((m.dirtyLimitRateMBps ?? 0).toFixed(2)) : '',
        statusOf(r),
      ]);
      if (m.status === 'completed') {
        chart.push({
          workload: w,
          variant: v,
          'slowdown %': Math.round(100 * (reads ? (m.readSlowdown ?? 0) : m.guestSlowdown)),
        });
      }
    }
    const get = (v: Variant) => find(results, { workload: w, variant: v });
    const pre = get('precopy');
    const parts: string[] = [];
    if (pre) {
      parts.push(
        `${w}: plain pre-copy ${pre.measured.switchoverReason === 'converged' ? 'converged' : `did not converge (${pre.measured.switchoverReason || statusOf(pre)})`} in ${pre.measured.rounds} rounds, ${ms(pre.measured.downtimeMs)} ms downtime`,
      );
    }
    for (const v of ['auto-converge', 'dirty-limit', 'cap'] as const) {
      const r = get(v);
      if (!r) continue;
      const m = r.measured;
      const slow =
        w === 'kv-read' ? `reads slowed ${pct(m.readSlowdown ?? 0)}` : `guest slowed ${pct(m.guestSlowdown)}`;
      parts.push(
        `${v}: ${m.switchoverReason || statusOf(r)} after ${m.rounds} rounds, ${ms(m.migrationTimeMs)} ms, ` +
          `${ms(m.downtimeMs)} ms downtime, ${slow}`,
      );
    }
    if (parts.length > 0) findings.push(`${parts.join('; ')}.`);
  }
  return {
    tables: [
      {
        title: 'auto-converge vs dirty-limit vs CAP on a guest that outruns the link',
        slug: 'dirty-limit',
        columns: [
          'workload',
          'variant',
          'switch-over',
          'rounds',
          'migration ms',
          'downtime ms',
          'MiB sent',
          'guest slowdown',
          'reads/s before',
          'reads/s during',
          'reads slowdown',
          'max throttle %',
          'vCPU 0 held ms',
          'vCPU 1 (reader) held ms',
          'dirty MB/s achieved',
          'status',
        ],
        rows,
      },
    ],
    charts: [
      barChart({
        title: 'Slowdown while migrating (kv-read: its reads; gap: its steps)',
        values: chart,
        category: 'workload',
        value: 'slowdown %',
        series: 'variant',
      }),
    ],
    findings,
  };
}

export const dirtyLimit: Experiment = {
  name: 'dirty-limit',
  title: 'Dirty-rate limit vs auto-converge vs CAP',
  description:
    `A read-mostly kv store (kv-read, 2 vCPUs: vCPU 0 takes the PUTs at ${WRITE_RATE} pages/s, vCPU 1 only ` +
    `serves GETs; keys uniform) and gap (one vCPU writing ${WRITE_RATE} pages/s) are migrated over a ${BANDWIDTH / MiB} MiB/s ` +
    `link, which carries half of that, with at most ${MAX_ROUNDS} rounds: plain pre-copy, auto-converge (QEMU's ` +
    `rule, 20% steps), dirty-limit (${VCPU_DIRTY_LIMIT} MB/s per vCPU over ${PERIOD_MS} ms periods) and the ` +
    `seed's CAP ${SEED_CAP}. Shows convergence, time, downtime, the guest's slowdown and the reads' slowdown.`,
  plan,
  summarise,
};
