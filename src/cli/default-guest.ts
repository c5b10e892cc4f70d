/**
 * The guest of the CLI when no `--workload` is given (`livemig run`, `guest start`, `profile`, `predict`), and the one
 * `livemig demo` (`npm start`) migrates four ways: gap's small
 * writes (16 bytes, 2 % whole-page rewrites) at 20,000 pages/s over a 64 MiB heap, about 78 MiB/s of writes. A busy
 * guest that pre-copy brings to convergence at QEMU's default 128 MiB/s in a few rounds.
 *
 * Why not the gap workload's own defaults: they write as fast as a core can (about 1.4 million writes a second)
 * over a 200 MiB heap, so every round finds the whole heap dirty again. Pre-copy cannot shrink that set at any link
 * speed, and its stop-and-copy (200 MiB) is over the 300 ms limit even at the loopback's unlimited rate: the run
 * ended at max-rounds after 30 rounds and gigabytes sent, then paused the whole heap. That guest is still one flag
 * away (`--workload gap`, or `--write-rate 0` for this one at full speed) for what it shows: a guest that outruns
 * the link (`--auto-converge`, `--dirty-limit`, `--strategy postcopy`).
 */
import type { GuestFlagValues } from './flags.js';

const MiB = 1024 * 1024;

/** The workload parameters of the default guest (gap). */
export const DEFAULT_GUEST_PARAMS = {
  workingSetBytes: 64 * MiB,
  writeRate: 20_000,
  bytesPerWrite: 16,
  wholePageFraction: 0.02,
} as const;

/**
 * The guest flags with the default guest filled in where `--workload` was not given: gap, and its parameters
 * wherever the flag was not set either (explicit flags win). A named `--workload` keeps its own defaults.
 */
export function withDefaultGuest(flags: GuestFlagValues): GuestFlagValues & { workload: string } {
  if (flags.workload !== undefined) return { ...flags, workload: flags.workload };
  const p = DEFAULT_GUEST_PARAMS;
  return {
    ...flags,
    workload: 'gap',
    workingSet: flags.workingSet ?? `${p.workingSetBytes / MiB}MiB`,
    writeRate: flags.writeRate ?? String(p.writeRate),
    bytesPerWrite: flags.bytesPerWrite ?? String(p.bytesPerWrite),
    wholePageFraction: flags.wholePageFraction ?? String(p.wholePageFraction),
  };
}
