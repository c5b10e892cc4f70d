/**
 * The inventory check of `livemig cluster`: every guest on exactly one live host, the one the manager expects. The
 * listing of the hosts takes time (one request per agent, retried when a loaded agent does not answer), and a
 * migration can settle while it is taken: the source may have answered before the switch-over and the destination
 * after it. Such a guest is left to the next check instead of being taken for lost, duplicated or misplaced.
 */
import { MigrationError } from '../errors.js';

export interface Inventory {
  /** Guest id → the live hosts that run it. */
  seen: Map<string, number[]>;
  answered: boolean[];
  /** `guest@host` → the guest's scheduled vCPU time there so far, ms. */
  busy: Map<string, number>;
  /** When the first request of this listing was sent (Date.now()). */
  startedAt: number;
}

export interface InventoryState {
  vms: readonly { index: number; guest: string; state: string }[];
  /** VM → the host the manager expects it on. */
  location: ArrayLike<number>;
  alive: readonly boolean[];
  inFlight: { has(vm: number): boolean };
  /** VM → when its last migration settled (Date.now()). */
  settledAt: ReadonlyMap<number, number>;
}

/** The first guest lost, duplicated or misplaced according to `inv`, as the error that stops the run. */
export function inventoryProblem(s: InventoryState, inv: Inventory): MigrationError | undefined {
  for (const vm of s.vms) {
    if (vm.state !== 'running' || s.inFlight.has(vm.index)) continue;
    // Its migration settled while the listing was taken: the listing may show either side of it.
    if ((s.settledAt.get(vm.index) ?? -Infinity) >= inv.startedAt) continue;
    const where = (inv.seen.get(vm.guest) ?? []).filter((h) => s.alive[h]);
    const expected = s.location[vm.index]!;
    if (expected < 0 || !s.alive[expected]) continue; // its host died: the exit handler accounts for it
    if (!inv.answered[expected] && where.length === 0) continue; // its host did not answer this time
    if (where.length === 0) {
      return new MigrationError(
        'GUEST_NOT_FOUND',
        `guest ${vm.guest} is on no host (expected on host ${expected}): lost. The run stops here.`,
      );
    }
    if (where.length > 1) {
      return new MigrationError(
        'OWNER_UNKNOWN',
        `guest ${vm.guest} runs on hosts ${where.join(' and ')}: duplicated. The run stops here.`,
      );
    }
    if (where[0] !== expected) {
      return new MigrationError(
        'OWNER_UNKNOWN',
        `guest ${vm.guest} runs on host ${where[0]}, expected on host ${expected}. The run stops here.`,
      );
    }
  }
  return undefined;
}
