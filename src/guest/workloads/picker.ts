/**
 * Page choice within a vCPU's share: uniform, Zipf (a hot set) or sequential (a cursor that wraps).
 * Zipf uses a CDF table computed once, in a fixed order, so every machine draws the same pages; ranks are
 * scattered over the share by an affine permutation so the hot pages are not all neighbours.
 */
import type { Distribution } from '../config.js';
import type { Rng } from '../rng.js';

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

export class PagePicker {
  /** Next page of the sequential distribution (a register of the workload). */
  cursor = 0;
  private readonly cdf: Float64Array | null = null;
  private readonly mul: number = 1;
  private readonly add: number = 0;

  constructor(
    private readonly distribution: Distribution,
    private readonly n: number,
    zipfExponent: number,
  ) {
    if (distribution === 'zipf') {
      const cdf = new Float64Array(n);
      let sum = 0;
      for (let i = 0; i < n; i++) {
        sum += 1 / (i + 1) ** zipfExponent;
        cdf[i] = sum;
      }
      for (let i = 0; i < n; i++) cdf[i]! /= sum;
      this.cdf = cdf;
      let mul = Math.max(1, Math.floor(n * 0.6180339887)) | 1;
      while (gcd(mul, n) !== 1) mul += 2;
      this.mul = mul % n || 1;
      this.add = Math.floor(n / 3);
    }
  }

  /** A page index in 0..n-1. */
  next(rng: Rng): number {
    switch (this.distribution) {
      case 'uniform':
        return rng.below(this.n);
      case 'sequential': {
        const p = this.cursor;
        this.cursor = p + 1 === this.n ? 0 : p + 1;
        return p;
      }
      case 'zipf': {
        const cdf = this.cdf!;
        const u = rng.float();
        let lo = 0;
        let hi = this.n - 1;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (cdf[mid]! > u) hi = mid;
          else lo = mid + 1;
        }
        return (lo * this.mul + this.add) % this.n;
      }
    }
  }
}
