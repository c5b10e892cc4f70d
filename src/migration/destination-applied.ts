/**
 * The destination's side of capability APPLIED_ACK (source/applied-ack.ts): APPLIED k is answered with APPLIED k once
 * every page received before it is in RAM and the ledger — its page-sink thread has applied them (pages on parallel
 * channels were applied before, at the SYNC that precedes it on the main connection).
 *
 * The answer is awaited in the receive loop: the source sends nothing after APPLIED until it has the answer (or gives
 * up waiting), so nothing waits behind it but what the source sent after a timeout — and the answer then still
 * leaves before READY, which the source's reader expects in that order.
 */
import { MigrationError } from '../errors.js';
import type { FrameConnection } from './connection.js';
import { Command, decodeApplied, encodeApplied } from './protocol/index.js';

export async function answerApplied(
  conn: FrameConnection,
  payload: Buffer,
  /** The capability was asked for in HELLO (and so granted). */
  granted: boolean,
  /** Resolves once every page received so far is applied (rejects with the sink's failure). */
  applied: () => Promise<void>,
): Promise<void> {
  if (!granted) throw new MigrationError('PROTOCOL', 'APPLIED without capability APPLIED_ACK');
  const seq = decodeApplied(payload);
  await applied();
  await conn.sendFrame(Command.APPLIED, encodeApplied(seq));
}
