/**
 * Two connected byte streams in one process, no sockets (in the spirit of undici's MockAgent): what one end writes
 * the other reads, in order, with backpressure, and closing or destroying one end closes the other as a TCP peer
 * would see it ('end', then 'close'). A FrameConnection wraps an end exactly as it wraps a TCP socket, so the real
 * source and destination can be driven in a test without processes, ports or timing.
 */
import { Duplex } from 'node:stream';

export class LinkEnd extends Duplex {
  /** The other end (set by createLinkPair). */
  peer!: LinkEnd;
  /** The peer's write waiting for this end's reader to want more (backpressure). */
  private blockedWrite: (() => void) | undefined;
  /** This end's readable side has ended (the peer finished or went away): nothing more may be pushed. */
  private eof = false;

  constructor(
    /** What `remoteAddress` answers: the name of the other end (an agent keys stale migrations by it). */
    readonly remoteAddress: string,
    highWaterMark: number,
  ) {
    super({
      allowHalfOpen: false,
      readableHighWaterMark: highWaterMark,
      writableHighWaterMark: highWaterMark,
    });
  }

  /** TCP's Nagle switch: nothing to switch here. */
  setNoDelay(_noDelay?: boolean): this {
    return this;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    const peer = this.peer;
    // A write into a link whose far end is gone is lost, as bytes sent after a peer's close are.
    if (peer.eof || peer.destroyed) {
      callback();
      return;
    }
    let more = true;
    try {
      // A copy: the writer may reuse its buffer once the callback ran, as after a TCP write reached the kernel.
      more = peer.push(Buffer.from(chunk));
    } catch (err) {
      // The reader's 'data' handler threw: with a socket that is an uncaught exception in the reading process,
      // never the writer's error. So it is here too (a test sees it as an unhandled error).
      process.nextTick(() => {
        throw err;
      });
    }
    if (more) callback();
    else peer.blockedWrite = () => callback();
  }

  override _read(): void {
    const w = this.blockedWrite;
    this.blockedWrite = undefined;
    w?.();
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.peer.finishReading();
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    // Like a closed TCP socket: the peer reads what was already sent, then its end of the stream.
    this.peer.finishReading();
    this.eof = true;
    this.releaseBlocked();
    callback(err);
  }

  private finishReading(): void {
    if (this.eof || this.destroyed) return;
    this.eof = true;
    this.push(null);
  }

  private releaseBlocked(): void {
    const w = this.blockedWrite;
    this.blockedWrite = undefined;
    w?.();
  }
}

export interface LinkPairOptions {
  /** Bytes an end buffers before its writer waits (both directions); default 64 KiB. */
  highWaterMark?: number;
  /** The names each end reports as `remoteAddress` of the other: [a's peer, b's peer]. */
  names?: [string, string];
}

/** Two connected ends: `a` (e.g. the source's) and `b` (the destination's). */
export function createLinkPair(options: LinkPairOptions = {}): [LinkEnd, LinkEnd] {
  const hwm = options.highWaterMark ?? 64 * 1024;
  const [aSeesB, bSeesA] = options.names ?? ['link:b', 'link:a'];
  const a = new LinkEnd(aSeesB, hwm);
  const b = new LinkEnd(bSeesA, hwm);
  a.peer = b;
  b.peer = a;
  return [a, b];
}
