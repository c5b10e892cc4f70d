/**
 * xoshiro128** (Blackman & Vigna): a small, fast PRNG over uint32 whose whole state is four numbers, so it
 * serialises into `VcpuState.rng` and a vCPU restored from it continues the exact same sequence.
 */

const TWO32 = 4294967296;

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** splitmix32 step: spreads a seed into well-mixed, non-zero state words. */
function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(state: readonly number[]) {
    if (state.length !== 4 || state.some((v) => !Number.isInteger(v) || v < 0 || v >= TWO32)) {
      throw new RangeError(`RNG state must be four uint32 numbers, got ${JSON.stringify(state)}`);
    }
    if (state.every((v) => v === 0)) throw new RangeError('RNG state must not be all zero');
    this.a = state[0]! | 0;
    this.b = state[1]! | 0;
    this.c = state[2]! | 0;
    this.d = state[3]! | 0;
  }

  /** A generator for (seed, stream): vCPU i of a guest uses stream i. */
  static seeded(seed: number, stream = 0): Rng {
    let x = (seed ^ Math.imul(stream + 1, 0x632be5ab) ^ Math.floor(seed / TWO32)) | 0;
    const s: number[] = [];
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) | 0;
      s.push(splitmix32(x));
    }
    if (!s.some((v) => v !== 0)) s[0] = 1;
    return new Rng(s);
  }

  /** Next uint32. */
  next(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** Uniform integer in [0, n), n >= 1. Exact float arithmetic keeps it identical on every machine. */
  below(n: number): number {
    if (n <= 2097152) return Math.floor((this.next() * n) / TWO32);
    return Math.floor(this.float() * n);
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  float(): number {
    const hi = this.next() >>> 5;
    const lo = this.next() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** The state as four uint32 (JSON-serialisable). */
  state(): number[] {
    return [this.a >>> 0, this.b >>> 0, this.c >>> 0, this.d >>> 0];
  }
}
