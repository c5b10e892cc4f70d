/**
 * Keeps each guest's delivered CPU on its trace. The guest CAP (Xen credit semantics: cap % of each 30-ms period)
 * loses budget whenever a vCPU wakes late for its next period, and on a loaded 2-core machine wake-ups come
 * milliseconds late: guests got 0.63–0.81 × the CPU their trace asked for (docs/cluster.md), so the cluster's
 * planner saw less load than the simulator and decided differently. The manager therefore measures, every interval,
 * what each guest got (kernel CPU time of its vCPU threads) against what its trace asked, and scales the CPU it
 * grants by a per-guest gain: an integral controller in the log domain, a quarter step per interval, bounded.
 */

/** Below this traced utilisation (fraction of the VM's MIPS) a guest's measurement is too small to steer by. */
const MIN_ASKED = 0.02;
/** The gain's bounds: a guest is never granted less than half or more than four times its trace. */
const MIN_GAIN = 0.5;
const MAX_GAIN = 4;
/**
 * Share of the measured log-error corrected per interval. The warm-up settles the gain before t = 0, so this only
 * follows drift (other load coming and going); each interval's noise comes back in the next as STEP × it, so a
 * large step adds its own noise (0.5: the measured − traced sd × 1.15 on white noise, ¼ → × 1.07).
 */
const STEP = 0.25;

export class CpuFeedback {
  readonly #gain: Float64Array;
  readonly #on: boolean;

  constructor(vms: number, on = true) {
    this.#gain = new Float64Array(vms).fill(1);
    this.#on = on;
  }

  /** The factor by which VM v's traced CPU is scaled before it is granted. */
  gain(v: number): number {
    return this.#gain[v]!;
  }

  /**
   * One interval of VM v: its trace asked for `asked` (mean fraction of its MIPS over the interval) and it got
   * `delivered` (measured, same unit). Intervals with too little asked, or none delivered (the guest was migrating
   * or its host did not answer), leave the gain as it is. `step` 1 corrects the whole error at once (the warm-up).
   */
  update(v: number, asked: number, delivered: number, step = STEP): void {
    if (!this.#on || asked < MIN_ASKED || !(delivered > 0)) return;
    const g = this.#gain[v]! * (asked / delivered) ** step;
    this.#gain[v] = Math.min(MAX_GAIN, Math.max(MIN_GAIN, g));
  }

  /** Mean gain over the VMs (the report's figure of how far the machine fell short). */
  mean(): number {
    let s = 0;
    for (const g of this.#gain) s += g;
    return this.#gain.length ? s / this.#gain.length : 1;
  }
}
