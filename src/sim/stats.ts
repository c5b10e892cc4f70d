/**
 * Small numeric helpers with CloudSim's exact conventions (commons-math percentile for medians, its IQR indices,
 * ordinary least squares by the textbook formulas). All take plain arrays or typed-array views and allocate little.
 */

/** Median as commons-math `Percentile(50)`: the middle value, or the mean of the two middle values. */
// Scratch buffers: these helpers run millions of times per simulated day on ≤ 30 values.
let bufA = new Float64Array(64);
let bufB = new Float64Array(64);
function scratchA(n: number): Float64Array {
  if (bufA.length < n) bufA = new Float64Array(n * 2);
  return bufA.subarray(0, n);
}
function scratchB(n: number): Float64Array {
  if (bufB.length < n) bufB = new Float64Array(n * 2);
  return bufB.subarray(0, n);
}

export function median(values: ArrayLike<number>, n = values.length): number {
  if (n === 0) return Number.NaN;
  const s = values === bufA ? scratchB(n) : scratchA(n);
  for (let i = 0; i < n; i++) s[i] = values[i]!;
  return sortedMedian(sortSmall(s, n), n);
}

/** Insertion sort: faster than TypedArray#sort for the ≤ 30 values these statistics see. */
function sortSmall(s: Float64Array, n: number): Float64Array {
  for (let i = 1; i < n; i++) {
    const x = s[i]!;
    let j = i - 1;
    while (j >= 0 && s[j]! > x) {
      s[j + 1] = s[j]!;
      j--;
    }
    s[j + 1] = x;
  }
  return s;
}

function sortedMedian(s: Float64Array, n: number): number {
  // commons-math: pos = p(n+1)/100; d = pos − floor(pos); lower + d·(upper − lower)
  const pos = (n + 1) / 2;
  const fpos = Math.floor(pos);
  if (pos < 1) return s[0]!;
  if (pos >= n) return s[n - 1]!;
  const lower = s[fpos - 1]!;
  const upper = s[fpos]!;
  return lower + (pos - fpos) * (upper - lower);
}

/** Median absolute deviation: median(|x − median(x)|) (CloudSim `MathUtil.mad`, no scale factor). */
export function mad(values: ArrayLike<number>, n = values.length): number {
  if (n === 0) return 0;
  const m = median(values, n);
  const dev = scratchB(n);
  for (let i = 0; i < n; i++) dev[i] = Math.abs(m - values[i]!);
  const s = scratchA(n);
  for (let i = 0; i < n; i++) s[i] = dev[i]!;
  return sortedMedian(sortSmall(s, n), n);
}

/** Interquartile range with CloudSim's indices: sorted[round(0.75(n+1))−1] − sorted[round(0.25(n+1))−1]. */
export function iqr(values: ArrayLike<number>, n = values.length): number {
  const s = scratchA(n);
  for (let i = 0; i < n; i++) s[i] = values[i]!;
  sortSmall(s, n);
  const q1 = Math.round(0.25 * (n + 1)) - 1;
  const q3 = Math.round(0.75 * (n + 1)) - 1;
  return s[q3]! - s[q1]!;
}

/** Least-squares line y = a + b·x through (x_i, y_i), optionally weighted. Returns [a, b]. */
export function linearFit(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  w?: ArrayLike<number>,
): [number, number] {
  const n = x.length;
  let sw = 0;
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < n; i++) {
    const wi = w ? w[i]! : 1;
    sw += wi;
    sx += wi * x[i]!;
    sy += wi * y[i]!;
  }
  const mx = sx / sw;
  const my = sy / sw;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    const wi = w ? w[i]! : 1;
    const dx = x[i]! - mx;
    sxx += wi * dx * dx;
    sxy += wi * dx * (y[i]! - my);
  }
  const b = sxy / sxx;
  return [my - b * mx, b];
}

/**
 * R² of the ordinary least-squares regression of y on the columns of X (with intercept), via Householder QR.
 * Returns undefined when the regression is impossible (fewer rows than parameters, or a singular design), which
 * is when CloudSim's maximum-correlation policy falls back to MMT.
 */
export function rSquared(columns: readonly ArrayLike<number>[], y: ArrayLike<number>): number | undefined {
  const m = y.length;
  const p = columns.length + 1;
  if (columns.length === 0 || m < p) return undefined;
  // A is m × p, column-major; column 0 is the intercept.
  const a = new Float64Array(m * p);
  for (let i = 0; i < m; i++) a[i] = 1;
  for (let j = 1; j < p; j++) {
    const c = columns[j - 1]!;
    for (let i = 0; i < m; i++) a[j * m + i] = c[i]!;
  }
  const b = Float64Array.from(y as ArrayLike<number>);
  for (let k = 0; k < p; k++) {
    let norm = 0;
    for (let i = k; i < m; i++) norm += a[k * m + i]! ** 2;
    norm = Math.sqrt(norm);
    if (norm === 0) return undefined;
    const akk = a[k * m + k]!;
    const alpha = akk > 0 ? -norm : norm;
    // v = a_k − alpha·e_k, stored in place
    a[k * m + k] = akk - alpha;
    let vnorm2 = 0;
    for (let i = k; i < m; i++) vnorm2 += a[k * m + i]! ** 2;
    if (vnorm2 === 0) return undefined;
    for (let j = k + 1; j < p; j++) {
      let dot = 0;
      for (let i = k; i < m; i++) dot += a[k * m + i]! * a[j * m + i]!;
      const f = (2 * dot) / vnorm2;
      for (let i = k; i < m; i++) a[j * m + i] = a[j * m + i]! - f * a[k * m + i]!;
    }
    let dot = 0;
    for (let i = k; i < m; i++) dot += a[k * m + i]! * b[i]!;
    const f = (2 * dot) / vnorm2;
    for (let i = k; i < m; i++) b[i] = b[i]! - f * a[k * m + i]!;
    a[k * m + k] = alpha;
    if (Math.abs(alpha) < 1e-12 * Math.max(1, norm)) return undefined;
  }
  // Residual sum of squares = ‖Qᵀy‖² beyond the first p entries.
  let ssr = 0;
  for (let i = p; i < m; i++) ssr += b[i]! ** 2;
  let mean = 0;
  for (let i = 0; i < m; i++) mean += y[i]!;
  mean /= m;
  let sst = 0;
  for (let i = 0; i < m; i++) sst += (y[i]! - mean) ** 2;
  return 1 - ssr / sst;
}

/** A small, fast, seeded PRNG (mulberry32). `next()` is uniform in [0, 1). */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}
