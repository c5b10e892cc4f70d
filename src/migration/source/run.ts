/** What the agent hands the source for one outgoing migration. */
import type { MigrationError } from '../../errors.js';
import type { Guest } from '../../guest/index.js';
import type { FrameConnection } from '../connection.js';
import type { MigrationOptions } from '../options.js';
import type { RoundSample } from '../policy.js';
import type { MigrationReport } from '../stats.js';

export interface SourceRun {
  guest: Guest;
  guestId: string;
  conn: FrameConnection;
  options: MigrationOptions;
  report: MigrationReport;
  signal: AbortSignal;
  onProgress?: (report: MigrationReport) => void;
  /**
   * Called after every pre-copy round with the source's view of it; controllers (e.g. power capping) act on the
   * guest from here. The engine's own auto-converge runs before it.
   */
  onRound?: (round: { report: MigrationReport; guest: Guest; sample: RoundSample }) => void;
  /**
   * Post-copy recovery: when the link breaks after switch-over, called (repeatedly, while it throws
   * CONNECTION_REFUSED / CONNECTION_LOST) for a new connection to the destination. Throwing anything else gives up.
   * Absent: a broken post-copy link fails the migration with POSTCOPY_LINK_LOST.
   */
  recover?: (cause: MigrationError, report: MigrationReport) => Promise<FrameConnection>;
  /**
   * Ownership after GO: one new connection to the destination (throws when it cannot be reached), for RECONCILE
   * after a fault between READY and RESUMED. Absent: such a fault is reported as OWNER_UNKNOWN at once.
   */
  redial?: () => Promise<FrameConnection>;
  /**
   * postcopy-preempt: one new, unpaced connection to the destination for the preempt channel (source/preempt.ts).
   * Absent: --postcopy-preempt fails with CAPABILITY.
   */
  preempt?: () => Promise<FrameConnection>;
  /** The secret of RECOVER and RECONCILE (32 hex digits); drawn here when absent. */
  recoveryToken?: string;
  /** Called once, just before GO is sent: from here on cancel and --timeout no longer apply. */
  onHandOff?: () => void;
  /** The agent is stopping: even after GO, stop waiting (the report then says where the guest was left). */
  shutdown?: AbortSignal;
  /**
   * Parallel channels (--multifd-channels N ≥ 2): opens channel `index`'s connection to the destination, sharing
   * the migration's pacer (one bandwidth budget). Absent: multifd is refused (CAPABILITY).
   */
  openChannel?: (index: number) => Promise<FrameConnection>;
}

export const HANDSHAKE_TIMEOUT_MS = 15_000;
export const SWITCHOVER_TIMEOUT_MS = 60_000;
