/**
 * The PAGES frames being filled and the chain of their sends: the encoder writes into `builder`, a full frame is
 * queued on the current connection, and the loops await `pending` at their yield points.
 */
import type { FrameConnection } from '../connection.js';
import { PagesFrameBuilder } from '../protocol/index.js';

/** Where sealed frames go: the migration connection (or a test's sink). */
export type FrameSink = Pick<FrameConnection, 'send'> & Partial<Pick<FrameConnection, 'sendSegments'>>;

export class FrameOutput {
  builder!: PagesFrameBuilder;
  /** The current builder's payload bound. */
  maxPayload = 0;
  pending: Promise<void> = Promise.resolve();

  /** `conn` is read at each send: after a post-copy recovery the frames go to the new connection. */
  constructor(
    private readonly conn: () => FrameSink,
    private readonly pageSize: number,
    maxPayload: number,
  ) {
    this.newBuilder(maxPayload);
  }

  /** A new builder with frames of at most `maxPayload` bytes (the destination's limit, or post-copy's small frames). */
  newBuilder(maxPayload: number): void {
    this.maxPayload = maxPayload;
    this.builder = new PagesFrameBuilder(
      maxPayload,
      (frame, release) => {
        this.pending = this.pending.then(() => this.conn().send(frame, release));
        // Awaited at the next yield point; if the run fails first, the connection's error is reported there.
        this.pending.catch(() => undefined);
      },
      this.pageSize,
      // Frames holding views of paused guest RAM leave as segments, in one writev (page-encoder.ts, pagesStable).
      (segments, length, release) => {
        this.pending = this.pending.then(() => {
          const conn = this.conn();
          if (conn.sendSegments) return conn.sendSegments(segments, length, release);
          return conn.send(Buffer.concat(segments, length), release);
        });
        this.pending.catch(() => undefined);
      },
    );
  }

  /** Seals the frame being filled and waits until every queued send has reached the socket. */
  async flush(): Promise<void> {
    this.builder.finishFrame();
    await this.pending;
  }

  /** A new connection (post-copy recovery): sends that failed with the old one are forgotten. */
  resetSends(): void {
    this.pending = Promise.resolve();
  }
}
