/**
 * The determinism oracle: a guest that never moved, run straight to the same steps, is the reference a
 * migrated guest must equal byte for byte.
 */
import type { GuestConfig } from './config.js';
import { Guest, type GuestState } from './guest.js';
import type { GuestRam } from './ram.js';

/** A fresh guest with `config` run straight to `steps` (one per vCPU, or one for all): its RAM and state. */
export async function referenceRun(
  config: GuestConfig,
  steps: number | readonly number[],
): Promise<{ ram: GuestRam; state: GuestState }> {
  const guest = await Guest.create(config);
  try {
    await guest.runToStep(steps);
    return { ram: guest.ram, state: guest.state() };
  } finally {
    await guest.destroy();
  }
}

/** The RAM of a fresh guest with `config` run straight to `steps`. */
export async function referenceRam(
  config: GuestConfig,
  steps: number | readonly number[],
): Promise<GuestRam> {
  return (await referenceRun(config, steps)).ram;
}

/** Byte comparison of two guests' RAM; firstDifferentPage is -1 when equal (or 0 if the layouts differ). */
export function ramEquals(a: GuestRam, b: GuestRam): { equal: boolean; firstDifferentPage: number } {
  if (a.pageSize !== b.pageSize || a.pageCount !== b.pageCount)
    return { equal: false, firstDifferentPage: 0 };
  for (let p = 0; p < a.pageCount; p++) {
    if (!a.pageEquals(p, b)) return { equal: false, firstDifferentPage: p };
  }
  return { equal: true, firstDifferentPage: -1 };
}

/** Copies every page of `from` into `to` (a stand-in for a migration in tests). */
export function copyRam(from: GuestRam, to: GuestRam): void {
  for (let p = 0; p < from.pageCount; p++) to.writePage(p, from.page(p));
}
