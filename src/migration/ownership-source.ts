/**
 * Who owns a guest after GO, source side (docs/protocol.md, "Who owns the guest after GO"): after a fault between
 * READY and RESUMED the source asks the destination over fresh connections (RECONCILE) until it learns the answer
 * or `reconcileTimeoutMs` passes:
 *
 * - `resumed` → the guest runs on the destination: the migration completed;
 * - `held` (query) → the source sends GO on the reconcile connection and waits for RESUMED: completed;
 * - `discarded` / `unknown` → the destination never resumed it and never will: the guest belongs to the source;
 * - no answer in time → unknown: the source keeps its copy paused and says so.
 *
 * `abort` asks a destination that holds a copy to drop it (the source keeps the guest): used in post-copy, where the
 * held copy lacks pages, and in the background after the source gave up before GO.
 */
import { MigrationError } from '../errors.js';
import type { FrameConnection } from './connection.js';
import { Command, decodeOwner, encodeReconcile, PREAMBLE } from './protocol/index.js';

export interface Handover {
  migrationId: string;
  token: string;
  /** Each reconcile attempt's wait for an answer (and for RESUMED after GO). */
  timeoutMs: number;
  /** Total time to keep trying to reach the destination. */
  reconcileTimeoutMs: number;
  /** One new connection to the destination; throws when it cannot be reached. Absent: no reconcile possible. */
  redial: (() => Promise<FrameConnection>) | undefined;
  shutdown?: AbortSignal;
  event: (text: string) => void;
}

export type Owner = 'destination' | 'source' | 'unknown';

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** Asks the destination who runs the guest (see the file comment); never throws. */
export async function reconcileOwnership(
  h: Handover,
  action: 'query' | 'abort',
  cause: MigrationError,
): Promise<Owner> {
  if (!h.redial) return 'unknown';
  const deadline = performance.now() + h.reconcileTimeoutMs;
  let delay = 100;
  for (let attempt = 1; ; attempt++) {
    if (h.shutdown?.aborted) return 'unknown';
    let conn: FrameConnection | undefined;
    // The agent stopping ends the attempt at once (the report then says the owner is unknown).
    const onShutdown = () => conn?.destroy(new MigrationError('CANCELLED', 'the agent is shutting down'));
    h.shutdown?.addEventListener('abort', onShutdown, { once: true });
    try {
      conn = await h.redial();
      if (h.shutdown?.aborted) return 'unknown';
      const owner = await ask(conn, h, action);
      if (owner) {
        if (action === 'query' || attempt > 1) h.event(`RECONCILE (${action}): ${owner} owns the guest`);
        return owner;
      }
    } catch (err) {
      const e = err instanceof MigrationError ? err : new MigrationError('INTERNAL', String(err));
      h.event(`RECONCILE attempt ${attempt} (${action}) after ${cause.code}: ${e.code} ${e.message}`);
    } finally {
      h.shutdown?.removeEventListener('abort', onShutdown);
      conn?.destroy();
    }
    if (performance.now() + delay > deadline) return 'unknown';
    await sleep(delay, h.shutdown);
    delay = Math.min(delay * 2, 2000);
  }
}

/** One attempt on a new connection; undefined = no verdict yet (try again). */
async function ask(
  conn: FrameConnection,
  h: Handover,
  action: 'query' | 'abort',
): Promise<Owner | undefined> {
  conn.writeRaw(PREAMBLE);
  await conn.sendFrame(
    Command.RECONCILE,
    encodeReconcile({ migrationId: h.migrationId, token: h.token, action }),
  );
  const state = decodeOwner((await conn.expect(Command.OWNER, h.timeoutMs)).payload);
  if (state === 'resumed') return 'destination';
  if (state === 'discarded' || state === 'unknown') return 'source';
  if (action === 'abort') return undefined; // held after an abort cannot be: ask again
  // Held: complete and verified there, paused. GO on this connection hands it over.
  await conn.sendFrame(Command.GO);
  await conn.expect(Command.RESUMED, h.timeoutMs);
  conn.socket.end();
  return 'destination';
}
