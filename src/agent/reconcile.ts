/**
 * The agent's side of ownership after GO (docs/protocol.md, "Who owns the guest after GO"):
 *
 * - on the source, `POST /v1/migrations/ID/reconcile` (`livemig migrate --reconcile ID`) asks the destination
 *   again about a migration that ended OWNER_UNKNOWN, and puts the guest where the answer says;
 * - on the destination, `GET /v1/migrations/incoming/ID` says what this agent knows of a migration's guest, and
 *   `POST .../adopt` / `.../discard` let its operator settle a guest held here whose source is gone for good.
 */
import { MigrationError } from '../errors.js';
import type { Guest } from '../guest/index.js';
import type { FrameConnection } from '../migration/connection.js';
import type { OwnershipRecord, OwnershipRegistry } from '../migration/ownership.js';
import { reconcileOwnership } from '../migration/ownership-source.js';
import type { MigrationReport } from '../migration/stats.js';

/** What the source agent keeps of an outgoing migration to settle its ownership later. */
export interface OwnershipTicket {
  token: string;
  handoverTimeoutMs: number;
  reconcileTimeoutMs: number;
  redial: () => Promise<FrameConnection>;
}

export interface ReconcileTarget {
  report: MigrationReport;
  ticket: OwnershipTicket;
  guestId: string;
  /** The guest still on this agent (paused), if it is. */
  guest: Guest | undefined;
  /** The guest runs on the destination: drop the copy here. */
  dropHere: () => Promise<void>;
}

/**
 * Settles a migration that ended OWNER_UNKNOWN: asks the destination (for `timeoutMs`), then drops the paused copy
 * here (the destination runs it), resumes it here (the destination dropped or never had it), or leaves it as it is.
 */
export async function reconcileOutgoing(t: ReconcileTarget, timeoutMs: number): Promise<MigrationReport> {
  const r = t.report;
  if (r.error?.code !== 'OWNER_UNKNOWN') {
    throw new MigrationError(
      'TOO_LATE',
      `migration ${r.id} is ${r.status}${r.error ? ` (${r.error.code})` : ''}: its guest's owner is known, nothing to reconcile`,
    );
  }
  if (!t.guest) {
    throw new MigrationError('GUEST_NOT_FOUND', `guest ${t.guestId} is no longer on this agent`);
  }
  const events: string[] = [];
  const owner = await reconcileOwnership(
    {
      migrationId: r.id,
      token: t.ticket.token,
      timeoutMs: t.ticket.handoverTimeoutMs,
      reconcileTimeoutMs: timeoutMs,
      redial: t.ticket.redial,
      event: (e) => events.push(e),
    },
    'query',
    new MigrationError('OWNER_UNKNOWN', 'operator reconcile'),
  );
  const at = `${(r.totalTimeMs / 1000).toFixed(3)}s+`;
  for (const e of events) r.events.push(`${at} ${e}`);
  const partial = r.strategy === 'postcopy' || r.strategy === 'hybrid';
  if (owner === 'destination' && partial) {
    // It resumed there in post-copy and waits for pages only this copy holds: never drop it here.
    r.error = {
      code: 'POSTCOPY_LINK_LOST',
      message:
        'reconciled by the operator: the guest resumed on the destination in post-copy and waits there for pages ' +
        'only the paused copy on this source holds; this migration has ended, so they cannot be sent — keep this ' +
        'agent running and do not resume the copy here',
    };
    r.events.push(
      `${at} reconciled by the operator: the guest runs on the destination (post-copy, pages missing)`,
    );
  } else if (owner === 'destination') {
    await t.dropHere();
    r.status = 'completed';
    r.phase = 'done';
    r.error = undefined;
    // The destination checked the digest before READY; a pre-copy guest held there is complete and verified.
    r.verified = r.verify !== 'none' && r.strategy !== 'postcopy' && r.strategy !== 'hybrid';
    r.events.push(`${at} reconciled by the operator: the guest runs on the destination`);
  } else if (owner === 'source') {
    if (!t.guest.running) t.guest.resume();
    r.error = {
      code: 'CONNECTION_LOST',
      message:
        'the link failed after GO; reconciled by the operator: the destination never resumed the guest and ' +
        'dropped its copy, so the guest runs on the source again',
    };
    r.events.push(`${at} reconciled by the operator: the guest resumes on the source`);
  } else {
    r.events.push(`${at} reconcile: the destination still does not answer; the guest stays paused here`);
  }
  return r;
}

/** `GET /v1/migrations/incoming/ID`, `POST .../adopt`, `POST .../discard` on the destination. */
export function incomingOwnership(
  registry: OwnershipRegistry,
  method: string,
  migrationId: string | undefined,
  action: string | undefined,
): OwnershipRecord {
  if (!migrationId || !/^[0-9a-f]{32}$/.test(migrationId)) {
    throw new MigrationError(
      'BAD_ARGUMENT',
      'expected /v1/migrations/incoming/<migration id, 32 hex digits>',
    );
  }
  if (method === 'GET' && !action) return registry.record(migrationId);
  if (method === 'POST' && (action === 'adopt' || action === 'discard')) {
    const h = registry.handle(migrationId);
    if (h?.state() !== 'held') {
      throw new MigrationError(
        'TOO_LATE',
        `migration ${migrationId} holds no guest here (${registry.record(migrationId).state}): nothing to ${action}`,
      );
    }
    if (action === 'adopt') h.adopt();
    else
      h.discard(
        new MigrationError('CANCELLED', 'discarded by the operator of the destination while held', {
          remote: true,
        }),
      );
    return registry.record(migrationId);
  }
  throw new MigrationError(
    'BAD_ARGUMENT',
    `no such endpoint: ${method} /v1/migrations/incoming/${migrationId}${action ? `/${action}` : ''} ` +
      '(GET it, or POST .../adopt or .../discard)',
  );
}
