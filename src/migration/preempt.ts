/**
 * postcopy-preempt, destination side: where a PREEMPT connection finds the incoming migration it belongs to. The
 * agent keeps one registry; a migration registers at HELLO (when it grants POSTCOPY_PREEMPT) and leaves when it
 * ends, so a preempt connection can only join a live migration and only with that migration's token.
 */
import { timingSafeEqual } from 'node:crypto';
import { MigrationError } from '../errors.js';
import type { FrameConnection } from './connection.js';
import { decodePreempt, type Frame } from './protocol/index.js';

export interface PreemptEndpoint {
  /** The secret from HELLO; a PREEMPT must present the same. */
  token: string;
  /** Takes the checked connection over (answers PREEMPT_ACK and reads its pages). */
  attach(conn: FrameConnection): void;
}

export class PreemptRegistry {
  private readonly byId = new Map<string, PreemptEndpoint>();
  /** Registered migrations whose first preempt channel has not come yet (the agent keeps a place for each). */
  private readonly waiting = new Set<PreemptEndpoint>();

  /** Preempt channels announced and not yet arrived: places beyond --max-incoming, as for multifd channels. */
  get pending(): number {
    return this.waiting.size;
  }

  register(migrationId: string, e: PreemptEndpoint): void {
    this.byId.set(migrationId, e);
    this.waiting.add(e);
  }

  unregister(migrationId: string, e: PreemptEndpoint): void {
    if (this.byId.get(migrationId) === e) this.byId.delete(migrationId);
    this.waiting.delete(e);
  }

  /**
   * A connection whose first frame is PREEMPT: handed to its migration when id and token match, otherwise refused
   * (RECOVER_REFUSED, the same answer as a RECOVER with a wrong token: an unknown id and a wrong token look alike).
   * True when it was handed over.
   */
  async accept(conn: FrameConnection, first: Frame): Promise<boolean> {
    let e: PreemptEndpoint | undefined;
    try {
      const req = decodePreempt(first.payload);
      e = this.byId.get(req.migrationId);
      const a = Buffer.from(req.token, 'hex');
      const b = Buffer.from(e?.token ?? '', 'hex');
      if (!e || a.length !== b.length || !timingSafeEqual(a, b)) e = undefined;
    } catch (err) {
      await conn.sendErrorAndClose(
        err instanceof MigrationError ? err : new MigrationError('PROTOCOL', String(err)),
      );
      return false;
    }
    if (!e) {
      await conn.sendErrorAndClose(
        new MigrationError(
          'RECOVER_REFUSED',
          'PREEMPT refused: no migration with that id and token is under way on this agent',
        ),
      );
      return false;
    }
    this.waiting.delete(e);
    e.attach(conn);
    return true;
  }
}
