/**
 * Post-copy's switch-over, the destination's steps inside the pause that are not pre-copy's: taking POSTCOPY_START's
 * bitmap of pages already valid here, and warming that code (and the vCPU state's decode) before the pause.
 *
 * A pure post-copy sends no ROUND, so the destination's pre-copy warm-up (destination.ts, at each ROUND) never ran:
 * traced with µs stamps in both agents of `experiment engines`' post-copy config on the 2-core machine, the cold
 * decode of VCPU_STATE took 0.5–3 ms and taking the start 0.3–0.7 ms, all inside the downtime. Warmed before
 * SWITCHOVER_ACK (the source pauses only after it), the same steps take tens of µs.
 */
import type { ResolvedGuestConfig } from '../guest/index.js';
import { decodePostcopyStart, encodePostcopyStart } from './protocol/index.js';
import { WARM_RUNS, warmSwitchoverCode } from './switchover-warm.js';

/**
 * Calls `mark` for every page whose bit is set in `valid` (POSTCOPY_START's layout: bit i of byte i >> 3), below
 * `pageCount`. A byte at a time, skipping empty ones (pure post-copy: all of them). Returns how many were marked.
 */
export function markValidPages(valid: Uint8Array, pageCount: number, mark: (page: number) => void): number {
  let marked = 0;
  for (let i = 0; i < valid.length; i++) {
    const b = valid[i]!;
    if (b === 0) continue;
    for (let bit = 0; bit < 8; bit++) {
      const p = i * 8 + bit;
      if (b & (1 << bit) && p < pageCount) {
        mark(p);
        marked++;
      }
    }
  }
  return marked;
}

/**
 * Runs the destination's post-copy switch-over code on samples, `runs` times: the vCPU state's decode and digest
 * (warmSwitchoverCode) and POSTCOPY_START's decode and marking (into a throw-away count, not the guest). Best
 * effort, never throws; returns how many start decodes ran.
 */
export function warmPostcopyStart(
  config: ResolvedGuestConfig | undefined,
  pageCount: number,
  runs = WARM_RUNS,
): number {
  warmSwitchoverCode(config, runs);
  if (pageCount <= 0) return 0;
  let done = 0;
  try {
    // Half the bytes set, so that both the skip and the marking paths compile.
    const sample = new Uint8Array(Math.ceil(pageCount / 8));
    for (let i = 0; i < sample.length; i += 2) sample[i] = 0xa5;
    const body = encodePostcopyStart(sample);
    let sink = 0;
    for (; done < runs; done++) {
      markValidPages(decodePostcopyStart(body, pageCount), pageCount, (p) => {
        sink += p;
      });
    }
    if (sink < 0) return -1; // (keeps the marking from being optimised away)
  } catch {
    // warming is best effort: the real start reports its own error
  }
  return done;
}
