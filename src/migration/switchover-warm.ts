/**
 * Warms the code a switch-over runs while the guest is paused, just before it is needed. Between migrations V8
 * drops the compiled code of functions that have not run for a while (bytecode flushing), and recompiling it lazily
 * inside the downtime cost more than the work itself: measured on the 2-core test machine, decoding a cold
 * VCPU_STATE (JSON and its zod schema) took 0.25–0.85 ms of CPU against 24 µs warm, and a cold vCPU digest about
 * 90 µs against 21 µs. Running the same functions on a sample state of the guest's config beforehand — the source
 * right before it pauses, the destination as each round ends — moves that cost out of the paused window.
 */
import { type Guest, type ResolvedGuestConfig, resolveConfig, sameConfig } from '../guest/index.js';
import { vcpuDigest } from './ledger.js';
import { decodeDigest, decodeVcpuState, encodeDigest, encodeJson } from './protocol/index.js';

/**
 * How many times the warm-up runs the path. Once is not enough: V8 compiles a function to faster tiers only after
 * it has run a few times. Measured on the 2-core machine with an idle guest's VCPU_STATE (474 bytes), the decode
 * took 0.27 ms after one warm-up run, 0.13–0.16 ms after two to four, 0.055–0.07 ms from the fifth on (the digest
 * 0.064 → 0.024 ms); the destination's decode now follows SWITCHOVER, inside the downtime. Ten runs cost about
 * 1.5 ms of CPU while the guest still runs.
 */
export const WARM_RUNS = 10;

/**
 * Encodes, decodes and digests a sample vCPU state of `config`, `runs` times. Returns how many runs completed (0
 * without a config or for one the schema refuses); never throws: warming is best effort.
 */
const NO_TRACE = new Uint8Array(0);

export function warmSwitchoverCode(config: ResolvedGuestConfig | undefined, runs = WARM_RUNS): number {
  if (!config) return 0;
  let done = 0;
  try {
    const sample = {
      config,
      vcpus: [{ index: 0, step: 0, rng: [1, 2, 3, 4], registers: { r: 0 } }],
    };
    for (; done < runs; done++) {
      const decoded = decodeVcpuState(encodeJson(structuredClone(sample)));
      decodeDigest(encodeDigest({ method: 'ledger', ram: '0000000000000000', vcpu: vcpuDigest(decoded) }));
    }
  } catch {
    // A config this schema refuses would be refused at switch-over too, with the real error there.
  }
  // The destination's state load resolves the state's config and compares it with its guest's (guest.ts,
  // loadState): 0.1–0.25 ms and 0.04–0.23 ms cold against 0.02–0.03 ms and 0.01 ms warm, measured in isolation on
  // the 2-core machine, inside the downtime since VCPU_STATE arrives with the digest.
  try {
    for (let i = 0; i < runs; i++)
      sameConfig(resolveConfig(structuredClone(config), { trace: NO_TRACE }), config);
  } catch {
    // (a trace guest's config needs its recording: its load pays the cold path)
  }
  return done;
}

/**
 * The destination's guest checks its own current vCPU state as it will check the source's (Guest.checkState, what
 * loadState runs before it hands the state to the vCPU threads), `runs` times, so that this code is compiled before
 * the paused window. In a fresh agent's first migration it had never run, and its first run, inside the window, took
 * 0.35–0.5 ms (traced with µs stamps in both agents, `experiment engines`' post-copy config, 2-core machine). Nothing
 * is loaded: a load would queue messages that the vCPU threads apply when they wake, inside the downtime. Only for a
 * paused guest whose vCPU threads are up; never throws; returns how many checks ran.
 */
export function warmStateLoad(guest: Guest | undefined, runs = 3): number {
  if (!guest || guest.running) return 0;
  let done = 0;
  try {
    const own = guest.state();
    for (; done < runs; done++) guest.checkState(structuredClone(own));
  } catch {
    // warming is best effort: the real load reports its own error
  }
  return done;
}
