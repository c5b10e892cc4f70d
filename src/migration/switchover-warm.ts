/**
 * Warms the code a switch-over runs while the guest is paused, just before it is needed. Between migrations V8
 * drops the compiled code of functions that have not run for a while (bytecode flushing), and recompiling it lazily
 * inside the downtime cost more than the work itself: measured on the 2-core test machine, decoding a cold
 * VCPU_STATE (JSON and its zod schema) took 0.25–0.85 ms of CPU against 24 µs warm, and a cold vCPU digest about
 * 90 µs against 21 µs. Running the same functions on a sample state of the guest's config beforehand — the source
 * right before it pauses, the destination as each round ends — moves that cost out of the paused window.
 */
import type { ResolvedGuestConfig } from '../guest/index.js';
import { vcpuDigest } from './ledger.js';
import { decodeDigest, decodeVcpuState, encodeDigest, encodeJson } from './protocol/index.js';

/** Encodes, decodes and digests a sample vCPU state of `config` (never throws: warming is best effort). */
export function warmSwitchoverCode(config: ResolvedGuestConfig | undefined): void {
  if (!config) return;
  try {
    const sample = {
      config,
      vcpus: [{ index: 0, step: 0, rng: [1, 2, 3, 4], registers: { r: 0 } }],
    };
    const decoded = decodeVcpuState(encodeJson(structuredClone(sample)));
    decodeDigest(encodeDigest({ method: 'ledger', ram: '0000000000000000', vcpu: vcpuDigest(decoded) }));
  } catch {
    // A config this schema refuses would be refused at switch-over too, with the real error there.
  }
}
