/**
 * Consolidation policies as small pure functions (Beloglazov & Buyya, CCPE 2012), with CloudSim 3.0.3's exact
 * rules: thresholds, fallbacks, history conventions. The simulator gives them a host's utilisation history
 * (newest value first, trailing zeros trimmed — CloudSim's `getUtilizationHistory()`), its current utilisation,
 * and the VM data they need; they answer "overloaded?" or "which VM?".
 */
import { commonsOlsRSquared } from './ols.js';
import { iqr, linearFit, mad, median, type Rng, rSquared } from './stats.js';

export type OverloadKind = 'thr' | 'iqr' | 'mad' | 'lr' | 'lrr';
export type SelectionKind = 'mmt' | 'rs' | 'mc' | 'mu';
export type BaselineKind = 'npa' | 'dvfs';

/** Overload detection with its safety parameter (THR: the threshold itself). */
export interface OverloadPolicy {
  readonly kind: OverloadKind;
  readonly safety: number;
  /** LRR: true = robust bisquare re-weighting; false = plain least squares as CloudSim 3.0.3 actually does (Q2). */
  readonly robust: boolean;
}

/** Safety parameters of the paper's best combinations (Table V). */
export const DEFAULT_SAFETY: Readonly<Record<OverloadKind, number>> = {
  thr: 0.8,
  iqr: 1.5,
  mad: 2.5,
  lr: 1.2,
  lrr: 1.2,
};

/** Static threshold the adaptive policies fall back to while the history is too short. */
export const FALLBACK_THRESHOLD = 0.7;
/** History values IQR and MAD need ("12 has been suggested as a safe value"). */
export const MIN_HISTORY_STATISTICS = 12;
/** Points the local regression fits. */
export const REGRESSION_LENGTH = 10;

/**
 * Is the host overloaded? `history` is newest-first with `historyLength` valid values; `utilisation` is the
 * requested MIPS of its VMs over its MIPS; `migrationIntervals` = ceil(longest VM migration time / interval)
 * (LR, LRR only). Strict `>` for THR/IQR/MAD, `≥ 1` for LR/LRR (Q6).
 */
export function isOverloaded(
  policy: OverloadPolicy,
  utilisation: number,
  history: ArrayLike<number>,
  historyLength: number,
  migrationIntervals: number,
): boolean {
  switch (policy.kind) {
    case 'thr':
      return utilisation > policy.safety;
    case 'iqr':
    case 'mad': {
      if (historyLength < MIN_HISTORY_STATISTICS) return utilisation > FALLBACK_THRESHOLD;
      const spread = policy.kind === 'iqr' ? iqr(history, historyLength) : mad(history, historyLength);
      return utilisation > 1 - policy.safety * spread;
    }
    case 'lr':
    case 'lrr': {
      const predicted = predictUtilisation(history, historyLength, migrationIntervals, policy.robust);
      if (predicted === undefined) return utilisation > FALLBACK_THRESHOLD;
      return policy.safety * predicted >= 1;
    }
  }
}

const X = Float64Array.from({ length: REGRESSION_LENGTH }, (_, i) => i + 1);

/**
 * Local regression of CloudSim: fit a line to the last 10 values (oldest first at x = 1 … newest at x = 10) and
 * extrapolate to x = 10 + migrationIntervals. Undefined while fewer than 10 values exist.
 * `robust`: one bisquare re-weighting step on the residuals (s = 6 · median |residual|), as the LRR the paper
 * describes; CloudSim 3.0.3 computes such weights but never applies them (Q2).
 */
export function predictUtilisation(
  history: ArrayLike<number>,
  historyLength: number,
  migrationIntervals: number,
  robust = false,
): number | undefined {
  if (historyLength < REGRESSION_LENGTH) return undefined;
  if (!robust) {
    // commons-math SimpleRegression's updating formulas, so the `≥ 1` test sees the same bits as CloudSim.
    let n = 0;
    let xbar = 0;
    let ybar = 0;
    let sumXX = 0;
    let sumXY = 0;
    let sumX = 0;
    let sumY = 0;
    for (let i = 0; i < REGRESSION_LENGTH; i++) {
      const x = i + 1;
      const yv = history[REGRESSION_LENGTH - i - 1]!;
      if (n === 0) {
        xbar = x;
        ybar = yv;
      } else {
        const fact1 = 1 + n;
        const fact2 = n / (1 + n);
        const dx = x - xbar;
        const dy = yv - ybar;
        sumXX += dx * dx * fact2;
        sumXY += dx * dy * fact2;
        xbar += dx / fact1;
        ybar += dy / fact1;
      }
      sumX += x;
      sumY += yv;
      n++;
    }
    const slope = sumXY / sumXX;
    const intercept = (sumY - slope * sumX) / n;
    return intercept + slope * (REGRESSION_LENGTH + migrationIntervals);
  }
  const y = new Float64Array(REGRESSION_LENGTH);
  for (let i = 0; i < REGRESSION_LENGTH; i++) y[i] = history[REGRESSION_LENGTH - i - 1]!;
  let [a, b] = linearFit(X, y);
  {
    const res = new Float64Array(REGRESSION_LENGTH);
    for (let i = 0; i < REGRESSION_LENGTH; i++) res[i] = Math.abs(y[i]! - (a + b * X[i]!));
    const s6 = 6 * median(res);
    if (s6 > 0) {
      const w = new Float64Array(REGRESSION_LENGTH);
      for (let i = 0; i < REGRESSION_LENGTH; i++) {
        const r = res[i]! / s6;
        w[i] = r < 1 ? (1 - r * r) ** 2 : 0;
      }
      [a, b] = linearFit(X, y, w);
    }
  }
  return a + b * (REGRESSION_LENGTH + migrationIntervals);
}

/** MMT: the VM with the smallest RAM (all hosts have the same bandwidth); ties keep the first in the host's list. */
export function selectMinimumMigrationTime(candidates: readonly number[], ram: ArrayLike<number>): number {
  let best = -1;
  let min = Number.MAX_VALUE;
  for (const v of candidates) {
    if (ram[v]! < min) {
      min = ram[v]!;
      best = v;
    }
  }
  return best;
}

/**
 * MU: the VM with the lowest current utilisation — demand ÷ the VM's MIPS, CloudSim 3.0.3's metric (not the MIPS
 * used: a big VM lightly loaded goes before a small one busier); ties keep the first in the host's list.
 */
export function selectMinimumUtilisation(
  candidates: readonly number[],
  demand: ArrayLike<number>,
  mips: ArrayLike<number>,
): number {
  let best = -1;
  let min = Number.MAX_VALUE;
  for (const v of candidates) {
    const u = demand[v]! / mips[v]!;
    if (u < min) {
      min = u;
      best = v;
    }
  }
  return best;
}

/** RS: a uniformly random VM, from a seeded generator (CloudSim's is unseeded, so its RS runs are not repeatable). */
export function selectRandom(candidates: readonly number[], rng: Rng): number {
  return candidates.length === 0 ? -1 : candidates[rng.int(candidates.length)]!;
}

/**
 * MC: the VM whose utilisation history is best explained (highest R² of an OLS regression with intercept) by the
 * histories of the other VMs on the host, over the last m values (m = shortest history). Returns undefined when the
 * regression is impossible for any VM (fewer history rows than parameters, a singular design, a single VM), which is
 * when CloudSim falls back to MMT. Ties keep the first; R² ≤ 0 or NaN never wins (CloudSim starts from
 * `Double.MIN_VALUE`, so then the first VM is chosen).
 *
 * `arithmetic`: `commons-math` computes every R² as CloudSim 3.0.3 does (commons-math's Householder QR, one fit per
 * VM: `ols.ts`), whose values on these nearly singular designs can be far from the exact ones, even negative;
 * `exact` (livemig mode) gets the exact R² of all VMs from one inversion of the centred Gram matrix.
 */
export function selectMaximumCorrelation(
  candidates: readonly number[],
  historyOf: (vm: number) => ArrayLike<number>,
  historyLengthOf: (vm: number) => number,
  arithmetic: 'commons-math' | 'exact' = 'exact',
): number | undefined {
  const n = candidates.length;
  if (n < 2) return undefined;
  let m = Number.MAX_SAFE_INTEGER;
  for (const v of candidates) m = Math.min(m, historyLengthOf(v));
  if (m === 0) return undefined;
  const commons = arithmetic === 'commons-math';
  const r2 = !commons && m >= n + 2 ? rSquaredAll(candidates, historyOf, m) : undefined;
  let rows: number[][] | undefined;
  let best = 0;
  let max = Number.MIN_VALUE;
  for (let i = 0; i < n; i++) {
    let value: number | undefined;
    if (r2) value = r2[i]!;
    else {
      rows ??= candidates.map((v) => Array.prototype.slice.call(historyOf(v), 0, m) as number[]);
      value = commons
        ? commonsOlsRSquared(rows, i, m)
        : rSquared(
            rows.filter((_, j) => j !== i),
            rows[i]!,
          );
      if (value === undefined) return undefined;
    }
    if (value > max) {
      max = value;
      best = i;
    }
  }
  return candidates[best]!;
}

let gramBuf = new Float64Array(0);
let centredBuf = new Float64Array(0);

/**
 * R² of every column regressed (with intercept) on all the others, from the centred Gram matrix G = LLᵀ:
 * R²_i = 1 − 1 / (G_ii · (G⁻¹)_ii), with (G⁻¹)_ii = Σ_k (L⁻¹)_ki². Same values as n separate least-squares fits,
 * n times cheaper. Undefined when G is (numerically) singular; the caller then does the separate fits, which decide
 * like CloudSim whether to fall back.
 */
function rSquaredAll(
  candidates: readonly number[],
  historyOf: (vm: number) => ArrayLike<number>,
  m: number,
): Float64Array | undefined {
  const n = candidates.length;
  if (centredBuf.length < n * m) centredBuf = new Float64Array(n * m * 2);
  if (gramBuf.length < 2 * n * n) gramBuf = new Float64Array(4 * n * n);
  const c = centredBuf;
  for (let i = 0; i < n; i++) {
    const h = historyOf(candidates[i]!);
    let mean = 0;
    for (let k = 0; k < m; k++) mean += h[k]!;
    mean /= m;
    for (let k = 0; k < m; k++) c[i * m + k] = h[k]! - mean;
  }
  const g = gramBuf; // n × n lower triangle: G, then overwritten by L
  const inv = gramBuf.subarray(n * n); // n × n lower triangle: L⁻¹
  const diag = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = 0; k < m; k++) s += c[i * m + k]! * c[j * m + k]!;
      g[i * n + j] = s;
    }
    diag[i] = g[i * n + i]!;
    if (!(diag[i]! > 0)) return undefined;
  }
  // Cholesky, in place.
  for (let j = 0; j < n; j++) {
    let d = g[j * n + j]!;
    for (let k = 0; k < j; k++) d -= g[j * n + k]! * g[j * n + k]!;
    if (!(d > 1e-10 * diag[j]!)) return undefined;
    const ljj = Math.sqrt(d);
    g[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let s = g[i * n + j]!;
      for (let k = 0; k < j; k++) s -= g[i * n + k]! * g[j * n + k]!;
      g[i * n + j] = s / ljj;
    }
  }
  // L⁻¹ (lower triangular), column by column.
  for (let j = 0; j < n; j++) {
    inv[j * n + j] = 1 / g[j * n + j]!;
    for (let i = j + 1; i < n; i++) {
      let s = 0;
      for (let k = j; k < i; k++) s -= g[i * n + k]! * inv[k * n + j]!;
      inv[i * n + j] = s / g[i * n + i]!;
    }
  }
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let ginv = 0;
    for (let k = i; k < n; k++) ginv += inv[k * n + i]! ** 2;
    out[i] = 1 - 1 / (diag[i]! * ginv);
  }
  return out;
}
