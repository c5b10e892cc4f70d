/**
 * What the experiments share: guest sizes per mode, the workloads they sweep, the model inputs of a cell, and small
 * helpers to find cells and format figures for tables.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type GuestConfig, resolveConfig, type WorkloadName, type WorkloadParams } from '../guest/index.js';
import type { MigrationOptions } from '../migration/index.js';
import type { PrecopyInput } from '../migration/model.js';
import type { CellResult, ExperimentConfig, Labels } from './types.js';

export const MiB = 1024 * 1024;
export const PAGE = 4096;

/** Guest RAM, warm-up and the default link of each mode. */
export function sizes(cfg: ExperimentConfig): { ramBytes: number; warmupMs: number; bandwidth: number } {
  switch (cfg.mode) {
    case 'tiny':
      return { ramBytes: 16 * MiB, warmupMs: 150, bandwidth: 64 * MiB };
    case 'quick':
      return { ramBytes: 64 * MiB, warmupMs: 300, bandwidth: 64 * MiB };
    case 'full':
      return { ramBytes: 256 * MiB, warmupMs: 1000, bandwidth: 64 * MiB };
  }
}

/** The workloads swept "per workload": gap (write-heavy, uniform), zipf (a hot set), kv (real records). */
export function workloadsOf(cfg: ExperimentConfig): WorkloadName[] {
  if (cfg.mode === 'tiny') return ['gap'];
  if (cfg.mode === 'quick') return ['gap', 'zipf', 'kv'];
  return ['gap', 'zipf', 'kv', 'twolf'];
}

/** A synthetic workload, or `trace:NAME`: a shipped trace of a real program (traces/NAME.lmtrace). */
export type ExperimentWorkload = WorkloadName | `trace:${string}`;

/** The traces of real programs shipped in traces/ (docs/traces.md), in the experiments next to the synthetic ones. */
export const SHIPPED_TRACES = ['sqlite-tpcb', 'redis', 'gcc-cc1'] as const;

/** Where a shipped trace lives (the package's traces/ folder, from src/ or dist/ alike). */
export function shippedTracePath(name: string): string {
  return fileURLToPath(new URL(`../../traces/${name}.lmtrace`, import.meta.url));
}

/** The shipped traces an experiment adds in this mode (none in tiny mode; those present on disk). */
export function tracesOf(
  cfg: ExperimentConfig,
  modes: readonly ExperimentConfig['mode'][],
): ExperimentWorkload[] {
  if (!modes.includes(cfg.mode)) return [];
  return SHIPPED_TRACES.filter((t) => existsSync(shippedTracePath(t))).map((t) => `trace:${t}` as const);
}

/**
 * A guest whose workload touches `workingSetFraction` of RAM (the rest stays zero, as free memory in a real guest
 * does) and writes `writeRate` pages per second. A trace brings its own working set and plays at its recorded
 * dirty rate: the params do not apply to it.
 */
export function guest(
  cfg: ExperimentConfig,
  workload: ExperimentWorkload,
  params: Partial<WorkloadParams> & { workingSetFraction?: number } = {},
): GuestConfig {
  const { ramBytes } = sizes(cfg);
  if (workload.startsWith('trace:')) {
    const traceFile = shippedTracePath(workload.slice('trace:'.length));
    return { ramBytes, seed: cfg.seed, vcpus: 1, workload: { name: 'trace', params: { traceFile } } };
  }
  const { workingSetFraction, ...rest } = params;
  // twolf keeps its own small working set (~3 MB); the others are scaled to the guest.
  const ws =
    workload === 'twolf' && workingSetFraction === undefined
      ? {}
      : { workingSetBytes: Math.floor(ramBytes * (workingSetFraction ?? 0.5)) };
  return {
    ramBytes,
    seed: cfg.seed,
    vcpus: 1,
    workload: { name: workload as WorkloadName, params: { ...ws, ...rest } },
  };
}

/** The pre-copy model's inputs for a guest and options, as configured (a priori). */
export function modelInput(g: GuestConfig, o: Partial<MigrationOptions>, c = 1): PrecopyInput {
  // The resolved config: a workload's own working set (twolf: 3 MiB) when the cell does not set one.
  const r = resolveConfig(g);
  const pageSize = r.pageSize;
  const ws = r.workload.params.workingSetBytes;
  const writeRate = r.workload.params.writeRate;
  return {
    // Round 1 sends only the pages the workload filled: the rest are zero pages, which do not travel in it.
    ramBytes: ws,
    dirtyRate: writeRate * r.vcpus * pageSize,
    workingSetBytes: ws,
    bandwidth: o.maxBandwidth ?? 128 * MiB,
    compressionRatio: c,
    downtimeLimit: (o.downtimeLimitMs ?? 300) / 1000,
    maxRounds: o.maxRounds && o.maxRounds > 0 ? o.maxRounds : 30,
  };
}

/** The cell with exactly these labels (those given). */
export function find(results: readonly CellResult[], where: Labels): CellResult | undefined {
  return results.find((r) => Object.entries(where).every(([k, v]) => r.labels[k] === v));
}

export function mib(bytes: number): number {
  return Math.round((bytes / MiB) * 10) / 10;
}

export function ms(x: number): number {
  return x >= 100 ? Math.round(x) : Math.round(x * 10) / 10;
}

export function pct(x: number): string {
  return `${(x * 100).toFixed(0)}%`;
}

/** Median (mean of the two middle values for an even count); 0 for none. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return 0;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

export function ratio(a: number, b: number): number {
  return b > 0 ? a / b : Number.NaN;
}

/** Status of a cell for tables: "ok", or what went wrong. */
export function statusOf(r: CellResult): string {
  const m = r.measured;
  if (m.status === 'completed') return m.verified ? 'ok' : 'unverified';
  return m.errorCode ? `${m.status}: ${m.errorCode}` : m.status;
}

/** A completed cell, or undefined (its figures are not comparable). */
export function ok(r: CellResult | undefined): CellResult | undefined {
  return r && r.measured.status === 'completed' ? r : undefined;
}
