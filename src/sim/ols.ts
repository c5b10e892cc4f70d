/**
 * R² of one ordinary least-squares fit (with intercept) carried out step by step as commons-math 3's
 * `OLSMultipleLinearRegression` does it — Householder QR of the design matrix, Qᵀy, back substitution, residuals,
 * `SecondMoment` for the total sum of squares — so that the result has the same bits as CloudSim 3.0.3's MC
 * selection (`PowerVmSelectionPolicyMaximumCorrelation`). MC regresses each VM's 30-value history on 10–20 others:
 * the design is nearly singular, and there the computed R² is far from the exact one (negative, even −∞), so only
 * the same arithmetic makes the same choice.
 */

/**
 * R² of `rows[target]` (first `m` values) regressed on every other row of `rows`, with intercept, as commons-math
 * computes it. Undefined where commons-math throws: fewer observations than parameters (m < rows.length) or a zero
 * on R's diagonal (singular design).
 */
export function commonsOlsRSquared(
  rows: readonly ArrayLike<number>[],
  target: number,
  m: number,
): number | undefined {
  const p = rows.length; // intercept + (rows.length − 1) predictors
  if (p < 2 || m < p) return undefined;
  // qrt = Xᵀ: row 0 the intercept column, then the predictors in their order.
  const qrt: Float64Array[] = [new Float64Array(m).fill(1)];
  for (let j = 0; j < rows.length; j++) {
    if (j === target) continue;
    const r = new Float64Array(m);
    for (let k = 0; k < m; k++) r[k] = rows[j]![k]!;
    qrt.push(r);
  }
  const design = qrt.map((r) => Float64Array.from(r));
  const rDiag = new Float64Array(p);
  for (let minor = 0; minor < p; minor++) {
    const qm = qrt[minor]!;
    let xNormSqr = 0;
    for (let row = minor; row < m; row++) xNormSqr += qm[row]! * qm[row]!;
    const a = qm[minor]! > 0 ? -Math.sqrt(xNormSqr) : Math.sqrt(xNormSqr);
    rDiag[minor] = a;
    if (a !== 0) {
      qm[minor] = qm[minor]! - a;
      for (let col = minor + 1; col < p; col++) {
        const qc = qrt[col]!;
        let alpha = 0;
        for (let row = minor; row < m; row++) alpha -= qc[row]! * qm[row]!;
        alpha /= a * qm[minor]!;
        for (let row = minor; row < m; row++) qc[row] = qc[row]! - alpha * qm[row]!;
      }
    }
  }
  for (let i = 0; i < p; i++) if (Math.abs(rDiag[i]!) <= 0) return undefined;
  const y = new Float64Array(m);
  const yTarget = rows[target]!;
  for (let k = 0; k < m; k++) y[k] = yTarget[k]!;
  const z = Float64Array.from(y);
  for (let minor = 0; minor < p; minor++) {
    const qm = qrt[minor]!;
    let dot = 0;
    for (let row = minor; row < m; row++) dot += z[row]! * qm[row]!;
    dot /= rDiag[minor]! * qm[minor]!;
    for (let row = minor; row < m; row++) z[row] = z[row]! + dot * qm[row]!;
  }
  const beta = new Float64Array(p);
  for (let row = p - 1; row >= 0; row--) {
    z[row] = z[row]! / rDiag[row]!;
    const zRow = z[row]!;
    const qr = qrt[row]!;
    beta[row] = zRow;
    for (let i = 0; i < row; i++) z[i] = z[i]! - zRow * qr[i]!;
  }
  let ssr = 0;
  for (let k = 0; k < m; k++) {
    let fitted = 0;
    for (let j = 0; j < p; j++) fitted += design[j]![k]! * beta[j]!;
    const r = y[k]! - fitted;
    ssr += r * r;
  }
  // commons-math SecondMoment: running mean and sum of squared deviations.
  let mean = 0;
  let m2 = 0;
  for (let k = 0; k < m; k++) {
    const n = k + 1;
    const dev = y[k]! - mean;
    const nDev = dev / n;
    mean += nDev;
    m2 += (n - 1) * dev * nDev;
  }
  return 1 - ssr / m2;
}
