/**
 * Power on the QEMU bridge: meter the source QEMU's threads, model its energy, and choose the CAP a power budget
 * allows after each round (fixed: once; adaptive: every round). Moved out of migrate.ts unchanged.
 */
import type { MigrationOptions, RoundSample } from '../migration/index.js';
import {
  capForBudget,
  controllerStep,
  energyOver,
  hostPowerModel,
  PowerMeter,
  type PowerModel,
  processCpuTimeMs,
  windowOver,
} from '../power/index.js';
import type { CpuCap } from './cgroup.js';
import type { CpufreqControl } from './cpufreq.js';
import { type QemuMigrationReport, stamp } from './report.js';

export interface Power {
  meter: PowerMeter;
  model: PowerModel;
  from: number;
  pid: number;
  /** The QEMU process's CPU time (every thread, exited ones included) when metering started; undefined: unreadable. */
  processCpuFrom: number | undefined;
}

/** The process's CPU time, ms (every thread, exited ones included), or undefined when /proc cannot be read. */
export function processCpuOrUndefined(pid: number): number | undefined {
  try {
    return processCpuTimeMs(pid);
  } catch {
    return undefined;
  }
}

export function startPower(
  pid: number,
  vcpus: number[],
  o: MigrationOptions,
  raplRoot: string | null | undefined,
): Power | undefined {
  const model = hostPowerModel(o.powerModel);
  try {
    const meter = new PowerMeter({
      host: { pid, guests: () => [{ id: 'qemu', tids: vcpus, steps: 0, cap: 0, frequency: 1 }] },
      model,
      ...(raplRoot !== undefined ? { raplRoot } : {}),
    });
    return { meter, model, from: Date.now(), pid, processCpuFrom: processCpuOrUndefined(pid) };
  } catch {
    return undefined; // QEMU not readable in /proc (another user's process): no CPU time, no power
  }
}

export function finishPower(
  r: QemuMigrationReport,
  p: Power,
  o: MigrationOptions,
  cap: CpuCap | undefined,
  dvfs: CpufreqControl | undefined,
): void {
  sampleSafely(p.meter);
  const to = Date.now();
  const samples = p.meter.samples(p.from);
  let vcpuMs = 0;
  let mainMs = 0;
  let otherMs = 0;
  for (const s of samples) {
    vcpuMs += s.vcpuCpuMs;
    mainMs += s.mainCpuMs;
    otherMs += s.otherCpuMs;
  }
  // The meter sees a thread only from the first sample it is alive at and loses what it ran after the last one: QEMU's
  // migration thread and multifd send threads start after the baseline and exit when the migration ends (their
  // stop-and-copy work included). The process's own CPU time keeps exited threads', so "other" is the process's
  // total less the vCPU threads (alive throughout) and the main thread: counted as livemig's agent is (measure.ts).
  const processNow = p.processCpuFrom === undefined ? undefined : processCpuOrUndefined(p.pid);
  if (processNow !== undefined && p.processCpuFrom !== undefined) {
    otherMs = Math.max(0, processNow - p.processCpuFrom - vcpuMs - mainMs);
  }
  r.qemu.cpu.source = { vcpuMs, mainMs, otherMs, totalMs: vcpuMs + mainMs + otherMs };
  const modelled = energyOver(samples, p.from, to, 'modelled');
  if (!modelled) return;
  r.energy = {
    model: p.model.name,
    source: modelled,
    // The destination QEMU's CPU time is in qemu.cpu.destination; only the source is metered over time.
    destination: null,
    sourceMeasured: energyOver(samples, p.from, to, 'measured'),
    capping: {
      mode: o.capping,
      control: o.capControl,
      powerCapWatts: o.powerCap,
      dvfsGhz: dvfs ? dvfs.khz / 1e6 : null,
      caps: r.cap.map((c) => c.cap).concat(cap && r.cap.length === 0 ? [cap.percent] : []),
    },
    vms: [],
  };
}

/** A sample of the QEMU's threads; none when the process has gone meanwhile (killed, quit after the migration). */
export function sampleSafely(meter: PowerMeter): void {
  try {
    meter.sample();
  } catch {
    // keep the samples taken so far
  }
}

export function nearestState(model: { states: readonly { ghz: number }[] }, ghz: number): number {
  let best = 0;
  for (let i = 0; i < model.states.length; i++)
    if (Math.abs(model.states[i]!.ghz - ghz) < Math.abs(model.states[best]!.ghz - ghz)) best = i;
  return best;
}

export function capEvent(r: QemuMigrationReport, cap: number, reason: string): void {
  r.cap.push({ atMs: r.totalTimeMs, cap, throttle: cap === 0 ? 0 : 100 - cap, reason });
  r.events.push(`${stamp(r)} power: CAP ${cap} on the source's vCPU threads (${reason})`);
}

/** The CAP a power budget allows now (fixed: once, after round 1; adaptive: after every round). */
export function budgetCap(
  p: Power,
  o: MigrationOptions,
  r: QemuMigrationReport,
  s: RoundSample,
  from: number,
): { cap: number; reason: string } | undefined {
  if (o.capControl === 'fixed' && r.cap.some((c) => c.reason.startsWith('power budget'))) return undefined;
  const now = Date.now();
  const w = windowOver(p.meter.samples(from - 1000), Math.min(from, now - 500), now);
  const load = {
    cpus: w.cpus,
    vmCpus: w.guests.get('qemu')?.cpus ?? 0,
    vmVcpus: Math.max(1, r.qemu.vcpuThreads.length),
    capacity: p.meter.capacityCores,
  };
  const state = p.meter.dvfsState;
  const current = r.cap.at(-1)?.cap ?? 0;
  if (o.capControl === 'adaptive') {
    const d = controllerStep({
      model: p.model,
      state,
      load,
      watts: w.watts,
      budget: o.powerCap,
      currentCap: current,
      round: {
        dirtyPagesPerSec: s.durationMs > 0 ? (s.dirtyPages * 1000) / s.durationMs : 0,
        sendPagesPerSec: s.durationMs > 0 ? (s.bytesSent / r.pageSize / s.durationMs) * 1000 : 0,
        remainingPages: s.dirtyPages,
        elapsedMs: r.totalTimeMs,
        targetMs: o.completionTargetMs,
      },
    });
    return { cap: d.cap, reason: `power budget, adaptive: ${d.reason}` };
  }
  const c = capForBudget(p.model, state, load, current, o.powerCap);
  return {
    cap: c.cap >= 100 ? 0 : c.cap,
    reason: `power budget ${o.powerCap} W${c.met ? '' : ' (not met at CAP 1)'}`,
  };
}
