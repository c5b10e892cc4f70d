/**
 * Keeps each guest's delivered CPU on its trace. The guest CAP (Xen credit semantics: cap % of each 30-ms period)
 * loses budget whenever a vCPU wakes late for its next period, and on a loaded 2-core machine wake-ups come
 * milliseconds late: guests got 0.63–0.81 × the CPU their trace asked for (docs/cluster.md), so the cluster's
 * planner saw less load than the simulator and decided differently. The manager therefore measures, every interval,
 * what each guest got (kernel CPU time of its vCPU threads) against what its trace asked, and scales the CPU it
 * grants by a per-guest gain: an integral controller in the log domain, a quarter step per interval, bounded.
 *
 * What a guest burns is affine in its grant, not proportional: a guest granted nothing still burns a floor (its
 * vCPU threads' wake-ups and bookkeeping, 1–2 points of a VM at cpu-scale 0.05). A gain alone settles where the
 * guest has been and then over-delivers below that level and under-delivers above it: on 4 quiet LR-MMT-1.2 runs
 * measured − traced followed the level, −1.5 points at 40–70 % traced and +1.7 below 5 %. So the floor is measured
 * (the warm-up's first round, every guest granted nothing), taken off what is granted, and the gain scales the rest.
 */

/** Below this traced utilisation above the floor (fraction of the VM's MIPS) a guest is too small to steer by. */
const MIN_ASKED = 0.02;
/** The gain's bounds: a guest is never granted less than half or more than four times its trace. */
const MIN_GAIN = 0.5;
const MAX_GAIN = 4;
/** The largest floor believed (fraction of the VM's MIPS): more is a guest that did not idle, not a floor. */
const MAX_FLOOR = 0.1;
/**
 * Share of the measured log-error corrected per interval. The warm-up settles the gain before t = 0, so this only
 * follows drift (other load coming and going); each interval's noise comes back in the next as STEP × it, so a
 * large step adds its own noise (0.5: the measured − traced sd × 1.15 on white noise, ¼ → × 1.07).
 */
const STEP = 0.25;

export class CpuFeedback {
  readonly #gain: Float64Array;
  readonly #floor: Float64Array;
  /** Updates each guest's gain has had (0: never measured, its gain is a guess). */
  readonly #updates: Uint32Array;
  readonly #on: boolean;

  constructor(vms: number, on = true) {
    this.#gain = new Float64Array(vms).fill(1);
    this.#floor = new Float64Array(vms);
    this.#updates = new Uint32Array(vms);
    this.#on = on;
  }

  /** The factor by which VM v's traced CPU above its floor is scaled before it is granted. */
  gain(v: number): number {
    return this.#gain[v]!;
  }

  /** VM v's floor (fraction of its MIPS): what it burns when granted nothing. */
  floor(v: number): number {
    return this.#floor[v]!;
  }

  /** Records VM v's floor, measured while it was granted nothing (bounded to [0, MAX_FLOOR]). */
  setFloor(v: number, measured: number): void {
    if (!this.#on || !Number.isFinite(measured)) return;
    this.#floor[v] = Math.min(MAX_FLOOR, Math.max(0, measured));
  }

  /** What to grant VM v (fraction of its MIPS) for a traced `u`: the part above its floor, scaled by its gain. */
  grant(v: number, u: number): number {
    if (!this.#on) return u;
    return Math.max(0, u - this.#floor[v]!) * this.#gain[v]!;
  }

  /**
   * One interval of VM v: its trace asked for `asked` (mean fraction of its MIPS over the interval) and it got
   * `delivered` (measured, same unit). Intervals with too little asked above the floor, or none delivered (the
   * guest was migrating or its host did not answer), leave the gain as it is. `step` 1 corrects the whole error at
   * once (the warm-up).
   */
  update(v: number, asked: number, delivered: number, step = STEP): void {
    const f = this.#floor[v]!;
    const a = asked - f;
    if (!this.#on || a < MIN_ASKED || !(delivered > 0)) return;
    // Delivered at or below the floor: as short as the gain's bound allows.
    const d = Math.max(delivered - f, a / MAX_GAIN);
    this.#updates[v]! += 1;
    const g = this.#gain[v]! * (a / d) ** step;
    this.#gain[v] = Math.min(MAX_GAIN, Math.max(MIN_GAIN, g));
  }

  /**
   * After the warm-up: a guest that had too little traced to steer by starts at the geometric mean of the measured
   * guests' gains (the machine's bias is mostly shared), not at 1. Such a guest's first measurements, a few points
   * above its floor, are too noisy for a large step (a step of 1 on one put a gain at 1.43 and the guest 9 points
   * over its trace when it rose), so from here on it takes the quarter steps like the others.
   */
  seedUnmeasured(): void {
    if (!this.#on) return;
    let logs = 0;
    let n = 0;
    for (let v = 0; v < this.#gain.length; v++) {
      if (this.#updates[v]! === 0) continue;
      logs += Math.log(this.#gain[v]!);
      n++;
    }
    if (n === 0) return;
    const g = Math.exp(logs / n);
    for (let v = 0; v < this.#gain.length; v++) if (this.#updates[v]! === 0) this.#gain[v] = g;
  }

  /** Mean gain over the VMs (the report's figure of how far the machine fell short). */
  mean(): number {
    let s = 0;
    for (const g of this.#gain) s += g;
    return this.#gain.length ? s / this.#gain.length : 1;
  }
}
