/**
 * Who owns a guest after READY (docs/protocol.md, "Who owns the guest after GO"), destination side: the registry of
 * this agent's incoming migrations that a RECONCILE may name, and the fate of those that ended. A RECONCILE is
 * answered from here: `resumed`, `held` (complete, verified, paused — the source then sends GO on the reconcile
 * connection), `discarded` or `unknown`. The destination never resumes a guest without GO (on the migration's
 * connection or a reconcile connection) or its operator's explicit adopt; it never discards a held guest without the
 * source's `abort` or its operator's discard.
 */
import type { MigrationError } from '../errors.js';
import type { FrameConnection } from './connection.js';
import type { OwnerState, Reconcile } from './protocol/index.js';

/** A live incoming migration that RECONCILE can reach (registered at HELLO, removed when it ends). */
export interface OwnershipHandle {
  migrationId: string;
  guestId: string;
  /** The token from HELLO; a RECONCILE must present the same. */
  token: string;
  /** 'held' once the guest is verified and paused here waiting for a verdict; for status and the API. */
  readonly state: () => 'in-flight' | 'held' | 'resumed';
  /** A RECONCILE (token checked) arrived for this migration: it takes the connection over. */
  reconcile(conn: FrameConnection, request: Reconcile): void;
  /** The operator of this agent resumes a held guest here (only when the source host is gone for good). */
  adopt(): void;
  /** The operator of this agent drops a held guest (only when the source runs it, or must keep it). */
  discard(why: MigrationError): void;
  /** The address the migration's stream comes from (its source host). */
  readonly peer: string;
  /**
   * A newer HELLO for the same guest came from the same host while this one is still before READY: its source has
   * given up on it (a source runs one migration of a guest at a time), so its stream is closed and its copy dropped.
   */
  supersede(): void;
}

export interface OwnershipRecord {
  migrationId: string;
  guestId: string;
  /** `in-flight`: before READY (a RECONCILE then discards it). */
  state: OwnerState | 'in-flight';
  /** ISO time of the last change. */
  since: string;
}

/** Fates remembered after a migration ended (a RECONCILE may come long after: the source retries with backoff). */
const MAX_FATES = 4096;

export class OwnershipRegistry {
  private readonly live = new Map<string, OwnershipHandle>();
  private readonly fates = new Map<string, OwnershipRecord>();

  register(h: OwnershipHandle): void {
    this.live.set(h.migrationId, h);
  }

  /** The migration ended: it resumed here (the destination owns the guest) or its copy was discarded. */
  settle(migrationId: string, guestId: string, state: 'resumed' | 'discarded'): void {
    this.live.delete(migrationId);
    this.superseded.delete(migrationId);
    this.fates.delete(migrationId);
    this.fates.set(migrationId, { migrationId, guestId, state, since: new Date().toISOString() });
    if (this.fates.size > MAX_FATES) this.fates.delete(this.fates.keys().next().value!);
  }

  handle(migrationId: string): OwnershipHandle | undefined {
    return this.live.get(migrationId);
  }

  /** What this agent knows of a migration's guest. */
  record(migrationId: string): OwnershipRecord {
    const h = this.live.get(migrationId);
    if (h) {
      return { migrationId, guestId: h.guestId, state: h.state(), since: new Date().toISOString() };
    }
    return (
      this.fates.get(migrationId) ?? {
        migrationId,
        guestId: '',
        state: 'unknown',
        since: new Date().toISOString(),
      }
    );
  }

  private readonly superseded = new Set<string>();

  /** A guest name reserved by a live incoming migration (held guests included): a second copy must not arrive. */
  holdsGuest(guestId: string): boolean {
    for (const h of this.live.values()) {
      if (h.guestId === guestId && !this.superseded.has(h.migrationId)) return true;
    }
    return false;
  }

  /**
   * A HELLO for `guestId` from `peer`: an incoming migration of that guest from the same host that has not reached
   * READY is stale (its source timed out or lost the link, and the stream has not ended here yet); it gives way, so
   * a retry need not wait for the idle timeout. A copy past READY never gives way: only GO or a verdict decides it.
   */
  supersedeStale(guestId: string, peer: string): void {
    for (const h of this.live.values()) {
      if (h.guestId !== guestId || h.peer !== peer || h.state() !== 'in-flight') continue;
      if (this.superseded.has(h.migrationId)) continue;
      this.superseded.add(h.migrationId);
      h.supersede();
    }
  }

  /** The agent is shutting down: no new hold; `close` discards the held guests (their sources keep theirs). */
  closed = false;

  close(why: MigrationError): OwnershipHandle[] {
    this.closed = true;
    const held = this.held();
    for (const h of held) h.discard(why);
    return held;
  }

  /** Live migrations whose guest is held here, waiting for a verdict. */
  held(): OwnershipHandle[] {
    return [...this.live.values()].filter((h) => h.state() === 'held');
  }
}
