/**
 * The power meter: samples the REAL CPU time of a host's threads from /proc — every guest's vCPU threads, the
 * agent's main thread (where the migration reads, encodes and sends pages) and its other threads — turns it into a
 * utilisation, and through a host power model into watts, as a time series. Where the machine has RAPL counters
 * they are read at every sample too.
 *
 * Labels: CPU time, utilisation and RAPL watts are `measured`; model watts and joules are `modelled`. Utilisation is
 * CPU time ÷ (interval × capacity cores), capacity being this machine's cores unless told otherwise, so a model of
 * another machine (the seed's 4-core i7-920) is driven by the same busy fraction this machine sees.
 */
import { availableParallelism } from 'node:os';
import { afterPausedWindow } from '../paused-window.js';
import { threadCpuMs, threadIds } from './cputime.js';
import type { EnergyFigure } from './energy.js';
import { isDvfsModel, type PowerModel, wattsAt } from './models.js';
import { energyDeltaUj, type RaplReading, readRapl } from './rapl.js';

export type FigureLabel = 'measured' | 'modelled';

/** A guest as the meter sees it: its vCPU thread ids and its cumulative progress. */
export interface MeteredGuest {
  id: string;
  tids: readonly number[];
  /** Steps of all vCPUs so far (progress counter). */
  steps: number;
  cap: number;
  frequency: number;
}

/** What is metered: the threads of process `pid` and the guests hosted in it. */
export interface HostView {
  pid: number;
  guests(): MeteredGuest[];
}

export interface GuestSample {
  id: string;
  /** CPU time of the guest's vCPU threads in the interval, ms (measured). */
  cpuMs: number;
  /** Cumulative steps at the sample (progress; rates are differences). */
  steps: number;
  cap: number;
  frequency: number;
}

export interface PowerSample {
  /** Epoch ms at the end of the interval. */
  at: number;
  intervalMs: number;
  /** CPU ms in the interval (measured): all vCPU threads, the agent's main thread, its other threads. */
  vcpuCpuMs: number;
  mainCpuMs: number;
  otherCpuMs: number;
  /** Busy fraction of the capacity (measured, clamped to 1). */
  utilisation: number;
  /** DVFS state index of the host model during the interval, and its frequency (null for models without DVFS). */
  dvfsState: number;
  ghz: number | null;
  /** Host model watts (modelled). */
  watts: number;
  /** RAPL package watts (measured), null without RAPL. */
  raplWatts: number | null;
  guests: GuestSample[];
}

export interface PowerSeries {
  model: string;
  capacityCores: number;
  rapl: boolean;
  labels: Record<'cpuMs' | 'utilisation' | 'watts' | 'raplWatts', FigureLabel>;
  samples: PowerSample[];
}

export const SERIES_LABELS: PowerSeries['labels'] = {
  cpuMs: 'measured',
  utilisation: 'measured',
  watts: 'modelled',
  raplWatts: 'measured',
};

export interface MeterOptions {
  host: HostView;
  model: PowerModel;
  /** Cores whose busy fraction is the utilisation; default: this machine's. */
  capacityCores?: number;
  /** Sampling period of start() while a listener takes every sample, ms (default 100: a power controller decides per sample). */
  intervalMs?: number;
  /**
   * Sampling period of start() while no listener is subscribed, ms (default 250). Each sample reads /proc once per
   * thread on the agent's main thread; without a controller nothing needs them 10 times a second (issue 17).
   */
  idleIntervalMs?: number;
  /** How much history to keep, ms (default 15 min). */
  historyMs?: number;
  /** powercap root (default /sys/class/powercap); null = do not read RAPL. */
  raplRoot?: string | null;
}

export class PowerMeter {
  readonly model: PowerModel;
  readonly capacityCores: number;
  readonly #host: HostView;
  readonly intervalMs: number;
  readonly idleIntervalMs: number;
  readonly #historyMs: number;
  readonly #raplRoot: string | null;
  readonly #lastTid = new Map<number, number>();
  #lastAt = Date.now();
  #lastRapl: RaplReading | undefined;
  #samples: PowerSample[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** The period the running timer was started with. */
  #timerMs = 0;
  #state: number;
  readonly #listeners = new Set<(s: PowerSample) => void>();

  constructor(o: MeterOptions) {
    this.#host = o.host;
    this.model = o.model;
    this.capacityCores = o.capacityCores ?? availableParallelism();
    this.intervalMs = o.intervalMs ?? 100;
    this.idleIntervalMs = Math.max(this.intervalMs, o.idleIntervalMs ?? 250);
    this.#historyMs = o.historyMs ?? 15 * 60_000;
    this.#raplRoot = o.raplRoot === undefined ? '/sys/class/powercap' : o.raplRoot;
    this.#state = isDvfsModel(o.model) ? o.model.states.length - 1 : 0;
    // Baselines, so that the first sample counts only what happened after the meter started.
    this.#read(new Set());
    this.#lastRapl = this.#raplRoot === null ? undefined : readRapl(this.#raplRoot);
  }

  /** True when the machine has RAPL counters the meter can read. */
  get rapl(): boolean {
    return this.#lastRapl !== undefined;
  }

  /** The DVFS state the model computes watts in (capping sets it together with the guests' frequency). */
  get dvfsState(): number {
    return this.#state;
  }
  setDvfsState(state: number): void {
    // The interval so far ran in the old state: close it before switching.
    this.sample();
    this.#state = state;
  }

  /** Calls `fn` with every sample as it is taken (the power controller decides on each); returns the unsubscriber. */
  onSample(fn: (s: PowerSample) => void): () => void {
    this.#listeners.add(fn);
    this.#retime();
    return () => {
      const had = this.#listeners.delete(fn);
      this.#retime();
      return had;
    };
  }

  /** The period start() samples at now: `intervalMs` while a listener takes every sample, else `idleIntervalMs`. */
  get periodMs(): number {
    return this.#listeners.size > 0 ? this.intervalMs : this.idleIntervalMs;
  }

  start(): void {
    if (this.#timer) return;
    this.#timerMs = this.periodMs;
    // Not inside a switch-over's paused window (a sync /proc read per thread): right after it.
    this.#timer = setInterval(() => afterPausedWindow(() => this.sample(), this), this.#timerMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** A running timer follows the period when a listener comes or goes. */
  #retime(): void {
    if (!this.#timer || this.#timerMs === this.periodMs) return;
    this.stop();
    this.start();
  }

  /** CPU ms per thread since the previous read; new threads start from their current value. */
  #read(vcpuTids: Set<number>): { vcpu: Map<number, number>; main: number; other: number } {
    const pid = this.#host.pid;
    const vcpu = new Map<number, number>();
    let main = 0;
    let other = 0;
    const seen = new Set<number>();
    for (const tid of threadIds(pid)) {
      const now = threadCpuMs(pid, tid);
      if (now === undefined) continue;
      seen.add(tid);
      const before = this.#lastTid.get(tid);
      this.#lastTid.set(tid, now);
      const d = before === undefined ? 0 : Math.max(0, now - before);
      if (vcpuTids.has(tid)) vcpu.set(tid, d);
      else if (tid === pid) main = d;
      else other += d;
    }
    for (const tid of this.#lastTid.keys()) if (!seen.has(tid)) this.#lastTid.delete(tid);
    return { vcpu, main, other };
  }

  /** Takes one sample now (the interval since the previous one) and returns it. */
  sample(): PowerSample {
    const guests = this.#host.guests();
    const tids = new Set<number>();
    for (const g of guests) for (const t of g.tids) if (t > 0) tids.add(t);
    const cpu = this.#read(tids);
    const at = Date.now();
    const intervalMs = Math.max(1, at - this.#lastAt);
    this.#lastAt = at;
    const gs: GuestSample[] = guests.map((g) => {
      let ms = 0;
      for (const t of g.tids) ms += cpu.vcpu.get(t) ?? 0;
      return { id: g.id, cpuMs: ms, steps: g.steps, cap: g.cap, frequency: g.frequency };
    });
    let vcpuCpuMs = 0;
    for (const v of cpu.vcpu.values()) vcpuCpuMs += v;
    const busy = vcpuCpuMs + cpu.main + cpu.other;
    const utilisation = Math.min(1, busy / (intervalMs * this.capacityCores));
    const m = this.model;
    const s: PowerSample = {
      at,
      intervalMs,
      vcpuCpuMs,
      mainCpuMs: cpu.main,
      otherCpuMs: cpu.other,
      utilisation,
      dvfsState: this.#state,
      ghz: isDvfsModel(m) ? m.states[this.#state]!.ghz : null,
      watts: wattsAt(m, utilisation, this.#state),
      raplWatts: this.#raplWatts(intervalMs),
      guests: gs,
    };
    this.#samples.push(s);
    const keepFrom = at - this.#historyMs;
    let drop = 0;
    while (drop < this.#samples.length && this.#samples[drop]!.at < keepFrom) drop++;
    if (drop > 0) this.#samples.splice(0, drop);
    for (const fn of this.#listeners) fn(s);
    return s;
  }

  #raplWatts(intervalMs: number): number | null {
    if (this.#raplRoot === null || this.#lastRapl === undefined) return null;
    const now = readRapl(this.#raplRoot);
    const before = this.#lastRapl;
    this.#lastRapl = now;
    if (!now) return null;
    // Package zones only ("intel-rapl:N"): their sub-zones (cores, dram) are already inside them.
    let uj = 0;
    let found = false;
    for (const z of now.zones) {
      if (!/^[^:]+:\d+$/.test(z.id)) continue;
      const b = before.zones.find((x) => x.id === z.id);
      if (!b) continue;
      uj += energyDeltaUj(b.energyUj, z.energyUj, z.maxEnergyRangeUj);
      found = true;
    }
    return found ? uj / 1000 / intervalMs : null;
  }

  /** Samples whose interval ends after `since` (epoch ms). */
  samples(since = 0): PowerSample[] {
    return this.#samples.filter((s) => s.at > since);
  }

  series(since = 0): PowerSeries {
    return {
      model: this.model.name,
      capacityCores: this.capacityCores,
      rapl: this.rapl,
      labels: SERIES_LABELS,
      samples: this.samples(since),
    };
  }
}

/** The part of a sample's interval inside [from, to], ms. */
function overlapMs(s: PowerSample, from: number, to: number): number {
  return Math.max(0, Math.min(s.at, to) - Math.max(s.at - s.intervalMs, from));
}

/**
 * Energy over [from, to] (epoch ms) from a series: modelled from `watts`, or measured from `raplWatts` (null when
 * the samples have none). Samples straddling a boundary count in proportion.
 */
export function energyOver(
  samples: readonly PowerSample[],
  from: number,
  to: number,
  label: FigureLabel = 'modelled',
): EnergyFigure | null {
  let joules = 0;
  let ms = 0;
  let peak = 0;
  for (const s of samples) {
    const w = label === 'modelled' ? s.watts : s.raplWatts;
    const o = overlapMs(s, from, to);
    if (o <= 0) continue;
    if (w === null) return null;
    joules += (w * o) / 1000;
    ms += o;
    peak = Math.max(peak, w);
  }
  if (ms === 0) return null;
  return { joules, averageWatts: (joules * 1000) / ms, peakWatts: peak, durationMs: ms, label };
}

/** Per-window figures of one guest: CPU share (CPUs), progress rate. */
export interface GuestWindow {
  id: string;
  cpus: number;
  stepsPerSec: number;
}

/** Host and guest figures over [from, to]: CPUs busy in total and per guest, utilisation, progress rates. */
export function windowOver(
  samples: readonly PowerSample[],
  from: number,
  to: number,
): { ms: number; cpus: number; utilisation: number; watts: number; guests: Map<string, GuestWindow> } {
  let ms = 0;
  let busy = 0;
  let uw = 0;
  let ww = 0;
  const cpu = new Map<string, number>();
  const first = new Map<string, { at: number; steps: number }>();
  const last = new Map<string, { at: number; steps: number }>();
  for (const s of samples) {
    const o = overlapMs(s, from, to);
    if (o <= 0) {
      // The sample just before the window gives the guests' starting step counts.
      if (s.at <= from) for (const g of s.guests) first.set(g.id, { at: s.at, steps: g.steps });
      continue;
    }
    const f = o / s.intervalMs;
    ms += o;
    busy += (s.vcpuCpuMs + s.mainCpuMs + s.otherCpuMs) * f;
    uw += s.utilisation * o;
    ww += s.watts * o;
    for (const g of s.guests) {
      cpu.set(g.id, (cpu.get(g.id) ?? 0) + g.cpuMs * f);
      if (!first.has(g.id)) first.set(g.id, { at: s.at, steps: g.steps });
      last.set(g.id, { at: s.at, steps: g.steps });
    }
  }
  const guests = new Map<string, GuestWindow>();
  for (const [id, l] of last) {
    const f = first.get(id)!;
    const dt = (l.at - f.at) / 1000;
    guests.set(id, {
      id,
      cpus: ms > 0 ? (cpu.get(id) ?? 0) / ms : 0,
      stepsPerSec: dt > 0 ? (l.steps - f.steps) / dt : 0,
    });
  }
  return {
    ms,
    cpus: ms > 0 ? busy / ms : 0,
    utilisation: ms > 0 ? uw / ms : 0,
    watts: ms > 0 ? ww / ms : 0,
    guests,
  };
}
