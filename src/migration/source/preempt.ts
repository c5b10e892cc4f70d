/**
 * QEMU's postcopy-preempt, source side: a second connection of the migration that carries only the pages the
 * destination's vCPUs fault on. It has no pacer and no background push queued on it, so a fault's answer never
 * waits behind megabytes of pushed pages or the rate limit (the main connection keeps both).
 */
import { MigrationError } from '../../errors.js';
import type { FrameConnection } from '../connection.js';
import { Command, decodePreemptAck, encodePreempt, PREAMBLE } from '../protocol/index.js';
import { FrameOutput } from './frame-output.js';
import { HANDSHAKE_TIMEOUT_MS } from './run.js';
import type { SourceState } from './state.js';

/** One fault's answer is one small frame: it leaves at once instead of waiting for a frame to fill. */
const PREEMPT_FRAME_BYTES = 64 * 1024;

export class PreemptChannel {
  readonly frames: FrameOutput;
  /** Closed on purpose (migration ended, or replaced after a recovery): its close is not a lost link. */
  private closing = false;

  constructor(
    readonly conn: FrameConnection,
    pageSize: number,
  ) {
    this.frames = new FrameOutput(() => conn, pageSize, PREEMPT_FRAME_BYTES);
  }

  /** Usable for an answer now. */
  get open(): boolean {
    return !this.closing && !this.conn.closed;
  }

  /** Encodes page `p` on this channel and sends it at once (the send is queued; errors surface via onLost). */
  answer(s: SourceState, p: number): void {
    s.encoder.encodeInto(this.frames, p);
    this.frames.builder.finishFrame();
  }

  close(): void {
    if (this.closing) return;
    this.closing = true;
    // Whatever is queued goes first: a clean end, not a reset.
    void this.frames.pending.finally(() => this.conn.socket.end());
  }

  destroy(): void {
    this.closing = true;
    this.conn.destroy();
  }

  /** The channel broke while in use: `lost` is called once, never after close()/destroy(). */
  onLost(lost: (err: MigrationError) => void): void {
    this.conn.onClose((err) => {
      if (!this.closing) lost(err);
    });
  }
}

/**
 * Opens the preempt channel: a new connection (spec.preempt), the preamble, PREEMPT {migrationId, token}, and the
 * destination's PREEMPT_ACK (with the channel's own frame-binding nonce when the migration binds frames). Losing
 * it later breaks the main connection too, so that the loss is handled as the main link's would be: before GO the
 * guest stays here, in post-copy the migration pauses and recovers (or fails with POSTCOPY_LINK_LOST).
 */
export async function openPreempt(s: SourceState): Promise<PreemptChannel> {
  if (!s.spec.preempt) {
    throw new MigrationError(
      'CAPABILITY',
      'postcopy-preempt needs a second connection to the destination, and this run has no way to open one',
    );
  }
  const conn = await s.spec.preempt();
  try {
    conn.writeRaw(PREAMBLE);
    if (s.framesBound) {
      conn.bindFramesAfterReceiving(Command.PREEMPT_ACK, (p) => decodePreemptAck(p, true).nonce);
    }
    await conn.sendFrame(Command.PREEMPT, encodePreempt({ migrationId: s.r.id, token: s.recoveryToken }));
    const ack = await conn.expect(Command.PREEMPT_ACK, HANDSHAKE_TIMEOUT_MS);
    decodePreemptAck(ack.payload, s.framesBound);
  } catch (err) {
    conn.destroy();
    throw err;
  }
  const ch = new PreemptChannel(conn, s.pageSize);
  const main = s.conn;
  ch.onLost((err) => {
    s.event(`post-copy preempt channel lost: ${err.message}`);
    main.destroy(
      new MigrationError('CONNECTION_LOST', `the post-copy preempt channel was lost: ${err.message}`),
    );
  });
  return ch;
}
