/**
 * Overload detection on a host's current VM list: the host's utilisation history (the MIPS-weighted sum of its VMs'
 * histories, cached per planning round) and the active policy's test (THR, IQR, MAD, LR, LRR). Both planning
 * (which hosts are overloaded) and placement (would this host be overloaded after taking the VM) ask it.
 */
import { isOverloaded } from '../policies.js';
import { HISTORY_LENGTH, type SimState } from './state.js';

/**
 * Host utilisation history into `histScratch`: MIPS-weighted sum of its VMs' histories (list order, then `extra`
 * as if appended), newest first, trailing zeros trimmed. Returns the length. The per-host sums are cached during a
 * planning round and invalidated whenever the host's list changes.
 */
function hostHistory(s: SimState, h: number, extra = -1): number {
  const L = HISTORY_LENGTH;
  const cache = s.histCache;
  const hostMips = s.hostMips[h]!;
  const cbase = h * L;
  if (s.histValid[h] === 0) {
    cache.fill(0, cbase, cbase + L);
    for (const v of s.hostVms[h]!) {
      const n = s.vmHistLen[v]!;
      const base = v * L;
      const mips = s.vmMips[v]!;
      for (let i = 0; i < n; i++)
        cache[cbase + i] = cache[cbase + i]! + (s.vmHist[base + i]! * mips) / hostMips;
    }
    s.histValid[h] = 1;
  }
  const acc = s.histScratch;
  for (let i = 0; i < L; i++) acc[i] = cache[cbase + i]!;
  if (extra >= 0) {
    const n = s.vmHistLen[extra]!;
    const base = extra * L;
    const mips = s.vmMips[extra]!;
    for (let i = 0; i < n; i++) acc[i] = acc[i]! + (s.vmHist[base + i]! * mips) / hostMips;
  }
  let len = L;
  while (len > 0 && acc[len - 1] === 0) len--;
  return len;
}

/** The active policy's overload test on the host's list, plus `extra` as if it had been placed there. */
export function hostOverloaded(s: SimState, h: number, extra = -1): boolean {
  const policy = s.overload!;
  const req = extra >= 0 ? s.reqSum[h]! + s.demand[extra]! : s.reqSum[h]!;
  const u = req / s.hostMips[h]!;
  if (policy.kind === 'thr') return u > policy.safety;
  const len = hostHistory(s, h, extra);
  let intervals = 0;
  if (policy.kind === 'lr' || policy.kind === 'lrr') {
    let maxRam = extra >= 0 ? s.vmRam[extra]! : 0;
    for (const v of s.hostVms[h]!) maxRam = Math.max(maxRam, s.vmRam[v]!);
    const time = maxRam / (s.hostBwKbps[h]! / (2 * 8000));
    intervals = Math.ceil(time / s.interval);
  }
  return isOverloaded(policy, u, s.histScratch, len, intervals);
}

/**
 * The overload test CloudSim's initial placement effectively runs: at t = 0 the VMs created before this one request
 * 0 MIPS (no cloudlet yet), so it sees only the new VM's demand `d`, and no history (adaptive policies fall back to
 * THR 0.7).
 */
export function overloadedAtCreation(s: SimState, h: number, d: number): boolean {
  return isOverloaded(s.overload!, d / s.hostMips[h]!, s.histScratch, 0, 1);
}
