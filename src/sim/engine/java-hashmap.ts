/**
 * The iteration order of a `java.util.HashMap<String, …>` keyed by CloudSim VM uids, where CloudSim sums floating-point
 * values in that order. `VmSchedulerTimeSharedOverSubscription.redistributeMipsDueToOverSubscription` adds up the MIPS
 * an over-subscribed host's VMs need by iterating its `mipsMapRequested` (a HashMap), and each VM then gets
 * `floor(request × capacity ÷ sum)`: a sum one ulp off can move a floor by one MIPS. The map's order depends on the
 * keys' hashes and on its capacity, which grows (and never shrinks) with the most entries the host's map ever held.
 */
import type { SimState } from './state.js';

/** CloudSim's broker is the third entity created (after the shutdown entity and the information service). */
const BROKER_ID = 2;
const INITIAL_CAPACITY = 16;
const LOAD_FACTOR = 0.75;

/** `String.hashCode()`: s[0]·31^(n−1) + … + s[n−1], in 32-bit two's complement. */
export function javaStringHash(str: string): number {
  let h = 0;
  for (let i = 0; i < str.length; i++) h = (Math.imul(h, 31) + str.charCodeAt(i)) | 0;
  return h;
}

/** `HashMap.hash(key)`: the hash with its high half folded into the low half. */
export function javaSpread(h: number): number {
  return h ^ (h >>> 16);
}

/** The spread hash of VM v's uid (`Vm.getUid` = "userId-vmId"). */
export function vmUidSpread(v: number): number {
  return javaSpread(javaStringHash(`${BROKER_ID}-${v}`));
}

/** The table capacity of a HashMap that has held at most `entries` entries at once (default capacity and load). */
export function capacityFor(entries: number): number {
  let cap = INITIAL_CAPACITY;
  while (entries > cap * LOAD_FACTOR) cap *= 2;
  return cap;
}

/**
 * Records that host h's `mipsMapRequested` holds `entries` entries now (VMs on its list, tentative placements
 * included, and the probe of `isHostOverUtilizedAfterAllocation`). Only the capacity it implies is kept.
 */
export function noteMapEntries(s: SimState, h: number, entries: number): void {
  if (!s.compat) return;
  const cap = s.mapCapacity[h]!;
  if (entries > cap * LOAD_FACTOR) s.mapCapacity[h] = capacityFor(entries);
}

/**
 * The order in which a HashMap of capacity `cap` iterates the uids of `vms` (inserted in list order): by bucket,
 * then by insertion order within a bucket.
 */
export function hashMapOrder(vms: readonly number[], cap: number): number[] {
  const mask = cap - 1;
  return vms
    .map((v, i) => ({ v, i, b: vmUidSpread(v) & mask }))
    .sort((x, y) => x.b - y.b || x.i - y.i)
    .map((e) => e.v);
}

/** Sum of `value(v)` over a host's list `vms` in its HashMap's order (capacity `cap`). */
export function sumInHashMapOrder(vms: readonly number[], cap: number, value: (v: number) => number): number {
  let sum = 0;
  for (const v of hashMapOrder(vms, cap)) sum += value(v);
  return sum;
}
