/**
 * Guest profiles for pricing migrations in the simulator's livemig mode. The simulator cannot run a guest, so each VM
 * is given a profile measured on the real engine (`livemig profile`), chosen by its memory size and the class of its
 * CPU trace; the pre-copy model (src/migration/model.ts, `predictFromProfile`) prices its migrations from it.
 *
 * The bundled set (`data/profiles/sim-profiles.json`, how it was measured in data/profiles/README.md) holds one
 * profile per CloudSim VM memory size (613, 870, 1740 MB) and trace class, each measured with its workload running
 * at full speed; a VM at utilisation u runs it at u of that speed (its W(t) is read at u·t). It also carries the
 * engine's measured energy per GiB migrated, the charge the simulator adds for each migration.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { UsageError } from '../errors.js';
import type { EngineCosts } from '../migration/model.js';
import { type GuestProfile, profileSchema } from '../profile/schema.js';

/**
 * A VM's CPU trace, by its mean utilisation over the run: `light` (< 15 %), `moderate` (< 40 %), `heavy`. PlanetLab
 * VMs are mostly light (docs/simulator.md).
 */
export type TraceClass = 'light' | 'moderate' | 'heavy';
export const TRACE_CLASSES: readonly TraceClass[] = ['light', 'moderate', 'heavy'];

/** The class of a trace of percent samples (0–100). */
export function traceClassOf(meanPercent: number): TraceClass {
  return meanPercent < 15 ? 'light' : meanPercent < 40 ? 'moderate' : 'heavy';
}

const energySchema = z.strictObject({
  /** Energy the migration adds on the source and the destination host, J per GiB moved (modelled: `model`). */
  sourceJPerGiB: z.number().min(0),
  destinationJPerGiB: z.number().min(0),
  /** The power model the joules come from (the engine's meter: per-thread CPU time → watts). */
  model: z.string(),
  /** The command that measured it. */
  measuredWith: z.string(),
});

export const simProfileSetSchema = z.strictObject({
  kind: z.literal('livemig-sim-profiles'),
  version: z.literal(1),
  /** What the set was measured with (command, machine, load average). */
  measuredWith: z.string(),
  /** The engine's per-page costs on the machine the profiles were measured on (`EngineCosts`, partial). */
  engine: z
    .strictObject({
      startSec: z.number().min(0),
      switchoverSec: z.number().min(0),
      pageSec: z.number().min(0),
      zeroPageSec: z.number().min(0),
      pageHeaderBytes: z.number().min(0),
      linkBandwidth: z.number().positive(),
    })
    .partial(),
  energy: energySchema,
  classes: z
    .array(
      z.strictObject({
        traceClass: z.enum(['light', 'moderate', 'heavy']),
        /** The workload the profile ran (its `livemig profile` flags). */
        workload: z.string(),
        profile: profileSchema,
      }),
    )
    .min(1),
});

export type SimProfileSet = z.infer<typeof simProfileSetSchema>;
export type SimProfileClass = SimProfileSet['classes'][number];

/** The bundled set's file: `data/` sits two levels above this file in `src/sim/` and in `dist/sim/`. */
export function bundledProfilesFile(): string {
  return fileURLToPath(new URL('../../data/profiles/sim-profiles.json', import.meta.url));
}

/** Parses and checks a profile set (JSON text); `file` names it in errors. */
export function parseSimProfileSet(text: string, file: string): SimProfileSet {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UsageError(
      `${file}: not JSON (${(err as Error).message}); expected a livemig-sim-profiles file`,
    );
  }
  const r = simProfileSetSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new UsageError(
      `${file}: not a valid livemig-sim-profiles file at ${issue.path.join('.') || '(top)'}: ${issue.message}`,
    );
  }
  return r.data;
}

let bundled: SimProfileSet | undefined;

/** The profile set shipped with livemig (read once per process). */
export function loadBundledProfiles(): SimProfileSet {
  if (bundled) return bundled;
  const file = bundledProfilesFile();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new UsageError(
      `the bundled migration profiles are missing (${file}); reinstall livemig, or price migrations with --pricing rate`,
    );
  }
  bundled = parseSimProfileSet(text, file);
  return bundled;
}

/**
 * The profile for a VM of `ramMb` MB in a trace class: the class's profile measured at the nearest memory size,
 * scaled to the VM's RAM (page counts × RAM ratio; the measured sizes are the VM types' own, so the ratio is ≈ 1).
 */
export function profileFor(set: SimProfileSet, ramMb: number, traceClass: TraceClass): GuestProfile {
  const candidates = set.classes.filter((c) => c.traceClass === traceClass);
  const pool = candidates.length > 0 ? candidates : set.classes;
  const bytes = ramMb * 1e6;
  let best = pool[0]!;
  for (const c of pool) {
    const d = Math.abs(Math.log(c.profile.ramPages * c.profile.pageSize) - Math.log(bytes));
    const b = Math.abs(Math.log(best.profile.ramPages * best.profile.pageSize) - Math.log(bytes));
    if (d < b) best = c;
  }
  return scaleProfile(best.profile, bytes);
}

/** A profile scaled to `ramBytes` of RAM: every page count times the RAM ratio, rates and ratios unchanged. */
export function scaleProfile(p: GuestProfile, ramBytes: number): GuestProfile {
  const ramPages = Math.max(1, Math.round(ramBytes / p.pageSize));
  const k = ramPages / p.ramPages;
  if (k === 1) return p;
  return {
    ...p,
    ramPages,
    pagesWritten: Math.round(p.pagesWritten * k),
    dirtyPagesPerSec: p.dirtyPagesPerSec * k,
    workingSet: p.workingSet.map((w) => ({ ms: w.ms, pages: Math.min(ramPages, w.pages * k) })),
    hotSet: p.hotSet.map((h) => ({ share: h.share, pages: Math.round(h.pages * k) })),
  };
}

/** The engine costs a set carries, for `predictPrecopy`'s `engine`. */
export function engineCostsOf(set: SimProfileSet): Partial<EngineCosts> {
  return { ...set.engine };
}
