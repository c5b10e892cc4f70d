/**
 * A migration connection: a socket (TCP or TLS) carrying checked frames both ways, with backpressure, an
 * optional token bucket on the sending side, byte counters, and one error for every way the link can die.
 */
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { MigrationError } from '../errors.js';
import { safeText } from '../log-safe.js';
import type { BufferBudget } from './buffer-budget.js';
import {
  BINDING_NONCE_BYTES,
  bindFrame,
  bindTrailer,
  Command,
  decodeErrorBody,
  type ErrorBody,
  encodeFrame,
  encodeJson,
  type Frame,
  FrameBinding,
  FrameReader,
  FrameSender,
  PREAMBLE,
} from './protocol/index.js';
import { tlsFailure } from './tls-error.js';

/** Something that can delay a send to hold a bandwidth limit (the source's token bucket). */
export interface SendPacer {
  /** Resolves when `bytes` may go, or as soon as `signal` aborts (the connection died: cancel, timeout, peer gone). */
  consume(bytes: number, signal?: AbortSignal): Promise<void>;
  /** Milliseconds sends have waited in it so far (overlapping waits once); absent = not measured. */
  readonly heldMs?: number;
}

/**
 * What a connection needs of its byte stream: a `net.Socket` or `tls.TLSSocket` in production, one end of an
 * in-memory link in tests (testing/link-pair.ts). Narrow on purpose, so that both fit.
 */
export type LinkSocket = Pick<
  Duplex,
  'on' | 'once' | 'write' | 'end' | 'destroy' | 'pause' | 'resume' | 'isPaused' | 'closed'
> & {
  /** TCP's Nagle switch; absent on a stream that has none. */
  setNoDelay?(noDelay?: boolean): unknown;
  /** Writes between cork and uncork leave together (one writev); absent on a stream that has none. */
  cork?(): void;
  uncork?(): void;
  /** The peer's address (an agent keys stale migrations by it); absent or undefined when unknown. */
  readonly remoteAddress?: string | undefined;
};

/** Bytes the connection lets pile up in the socket before waiting for 'drain'. */
const SOCKET_QUEUE_BYTES = 4 << 20;
/** The socket queue in low-latency mode (post-copy): 256 KiB. */
const LOW_LATENCY_QUEUE_BYTES = 256 * 1024;
/** Received frames waiting for the consumer beyond which the socket stops reading. */
const RECEIVE_QUEUE_BYTES = 4 << 20;
const EMPTY_CHUNK = Buffer.alloc(0);
/**
 * How long a connection that sent ERROR waits for the peer to close before it closes anyway (lingering close): the
 * peer closes once it has read the ERROR; a peer that does not (stopped, gone, hostile) holds the socket no longer.
 */
const ERROR_LINGER_MS = 2000;

export class FrameConnection {
  readonly reader: FrameReader;
  bytesSent = 0;
  bytesReceived = 0;
  private queue: Frame[] = [];
  /** Payload bytes in `queue`. */
  private queuedIn = 0;
  private waiters: { resolve: (f: Frame) => void; reject: (e: Error) => void; timer?: NodeJS.Timeout }[] = [];
  private failure: MigrationError | undefined;
  private drainWaiters: (() => void)[] = [];
  /** Bytes handed to the socket whose write has not completed yet. */
  private queued = 0;
  /** When set, frames go to this handler instead of the receive queue (divertFrames). */
  private onFrame: ((f: Frame) => void) | undefined;
  private closeListeners: ((err: MigrationError) => void)[] = [];
  /** Aborted when the connection fails: wakes a send sleeping in the pacer (cancel and --timeout act at once). */
  private readonly failed = new AbortController();
  private queueLimit = SOCKET_QUEUE_BYTES;
  /** We told the peer why we stop (an ERROR frame, then our half of the close): the close lingers (linger). */
  private errorSent = false;
  /** The lingering close under way: resolves once the socket is destroyed. */
  private lingering: Promise<void> | undefined;
  private readonly errorLingerMs: number;
  /** Frame binding of what we send (protocol/binding.ts), once the handshake gave the nonce. */
  private sendBinding: FrameBinding | undefined;
  /** Binding that starts after we send a frame of this command (the destination's HELLO_ACK / RECOVER_ACK). */
  private bindAfterSending: { command: Command; binding: FrameBinding } | undefined;

  /** Waiting for room in the shared buffer budget (the socket is paused meanwhile): cancels the wait. */
  private budgetWait: (() => void) | undefined;
  /** Room the budget granted to the frame that waited for it, not yet taken by the reader. */
  private budgetGrant = 0;

  constructor(
    readonly socket: LinkSocket,
    options: {
      maxPayload?: number;
      expectPreamble?: boolean;
      pacer?: SendPacer;
      /** Large frames being assembled count against this budget, shared with other connections. */
      budget?: BufferBudget;
      /** How long the close after our ERROR waits for the peer to close (default ERROR_LINGER_MS). */
      errorLingerMs?: number;
    } = {},
  ) {
    this.reader = new FrameReader(options.maxPayload, { expectPreamble: options.expectPreamble ?? false });
    this.pacer = options.pacer;
    this.errorLingerMs = options.errorLingerMs ?? ERROR_LINGER_MS;
    if (options.budget) this.useBudget(options.budget);
    socket.setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.wakeDrain());
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.fail(
        this.toldByPeer() ??
          tlsFailure(err, 'the peer') ??
          new MigrationError('CONNECTION_LOST', `migration connection failed: ${err.message}`, {
            errno: err.code,
          }),
      );
    });
    socket.on('close', () => {
      this.fail(
        this.toldByPeer() ?? new MigrationError('CONNECTION_LOST', 'migration connection closed by the peer'),
      );
    });
  }

  private pacer: SendPacer | undefined;

  /**
   * Stop pacing sends (--max-bandwidth): the guest is paused and every millisecond is downtime
   * (QEMU: migration_completion_precopy sets RATE_LIMIT_DISABLED).
   */
  disableRateLimit(): void {
    this.pacer = undefined;
  }

  /** Milliseconds this connection's pacer has held sends back so far (0 without a limit, or once it is lifted). */
  get rateLimitHeldMs(): number {
    return this.pacer?.heldMs ?? 0;
  }

  /**
   * Runs `fn` with pacing off for the frames it sends synchronously, then paces again: a few KiB written while the
   * guest is paused (post-copy's start), which must neither wait for the pacer nor miss a corked write (a paced
   * send reaches the socket only after the pacer's promise, outside any cork).
   */
  unpaced<T>(fn: () => T): T {
    const pacer = this.pacer;
    this.pacer = undefined;
    try {
      return fn();
    } finally {
      this.pacer ??= pacer;
    }
  }

  /** Post-copy: a small socket queue, so that a page the destination faulted on does not wait behind pushed ones. */
  lowLatency(): void {
    this.queueLimit = LOW_LATENCY_QUEUE_BYTES;
  }

  /** Frames go to `handler` instead of the receive queue until stopDiverting (post-copy page requests, errors). */
  divertFrames(handler: (f: Frame) => void): void {
    this.onFrame = handler;
    // Frames that arrived before (a PAGE_REQUEST right behind RESUMED or RECOVER_ACK, in the same read) go first.
    for (const f of this.queue.splice(0)) {
      this.divert(handler, f);
      if (this.failure) break;
    }
    this.queuedIn = 0;
    if (this.socket.isPaused() && !this.failure && !this.budgetWait) this.socket.resume();
  }

  stopDiverting(): void {
    this.onFrame = undefined;
  }

  get closed(): boolean {
    return this.failure !== undefined;
  }

  get error(): MigrationError | undefined {
    return this.failure;
  }

  /** Called once when the connection dies (peer closed, socket error, protocol error, or our own destroy). */
  onClose(listener: (err: MigrationError) => void): void {
    if (this.failure) listener(this.failure);
    else this.closeListeners.push(listener);
  }

  /** Large frames reserve their size in `budget` before a byte of them is buffered (buffer-budget.ts). */
  private useBudget(budget: BufferBudget): void {
    this.reader.assembly = {
      admit: (total) => {
        if (this.budgetGrant > 0) {
          const granted = this.budgetGrant;
          this.budgetGrant = 0;
          if (granted === total) return true;
          budget.release(granted);
        }
        if (budget.tryAcquire(total)) return true;
        if (!this.budgetWait) {
          // Stop reading: the peer's bytes wait in TCP buffers (its sends slow down), not in our memory.
          this.socket.pause();
          this.budgetWait = budget.wait(total, () => {
            this.budgetWait = undefined;
            this.budgetGrant = total;
            // Not inside the releasing connection's parse: continue on a fresh stack.
            queueMicrotask(() => {
              if (this.failure) return;
              if (this.queuedIn <= RECEIVE_QUEUE_BYTES) this.socket.resume();
              this.onData(EMPTY_CHUNK);
            });
          });
        }
        return false;
      },
      done: (total) => budget.release(total),
    };
    this.onClose(() => {
      this.budgetWait?.();
      this.budgetWait = undefined;
      const held = this.reader.assembling + this.budgetGrant;
      this.budgetGrant = 0;
      if (held > 0) budget.release(held);
      this.reader.assembly = undefined;
    });
  }

  private onData(chunk: Buffer): void {
    this.bytesReceived += chunk.length;
    // After a stream error we told the peer about, keep reading and drop what still comes: closing a socket with
    // unread data resets the connection, and the reset could destroy our ERROR frame before the peer reads it.
    if (this.failure) return;
    let frames: Frame[];
    try {
      frames = this.reader.push(chunk);
    } catch (err) {
      this.refuse(err);
      return;
    }
    for (const f of frames) {
      if (this.onFrame) this.divert(this.onFrame, f);
      else {
        const w = this.waiters.shift();
        if (w) {
          if (w.timer) clearTimeout(w.timer);
          w.resolve(f);
        } else {
          this.queue.push(f);
          this.queuedIn += f.payload.length;
          // A consumer that falls behind slows the sender (TCP flow control), not our memory.
          if (this.queuedIn > RECEIVE_QUEUE_BYTES && !this.socket.isPaused()) this.socket.pause();
        }
      }
      if (this.failure) return;
    }
  }

  /** Refuses the stream: tells the peer why (an ERROR frame, then our half of the close) and fails. */
  private refuse(err: unknown): void {
    const e =
      err instanceof MigrationError
        ? err
        : new MigrationError('PROTOCOL', `migration stream: ${String(err)}`);
    // Tell the peer why before hanging up: a corrupt stream is a fault it must report, not a silent close.
    this.socket.end(
      this.outgoing(encodeFrame(Command.ERROR, encodeJson({ code: e.code, message: e.message }))),
    );
    this.errorSent = true;
    this.fail(e);
    void this.linger();
  }

  /**
   * Hands a frame to the diverting handler. A frame it cannot accept (it throws: a malformed PAGE_REQUEST) refuses
   * the stream like a corrupt one; thrown from a socket's 'data' event it would have crashed the process.
   */
  private divert(handler: (f: Frame) => void, f: Frame): void {
    try {
      handler(f);
    } catch (err) {
      this.refuse(err);
    }
  }

  /**
   * The peer's ERROR still waiting unread: a peer sends ERROR and then closes, so when the close comes first to a
   * side busy sending (a pre-copy round), the ERROR's code, not CONNECTION_LOST, is why the link ended.
   */
  private toldByPeer(): MigrationError | undefined {
    const told = this.queue.find((f) => f.command === Command.ERROR);
    return told ? remoteErrorToMigrationError(told) : undefined;
  }

  private fail(err: MigrationError): void {
    if (this.failure) return;
    this.failure = err;
    this.failed.abort();
    for (const w of this.waiters.splice(0)) {
      if (w.timer) clearTimeout(w.timer);
      w.reject(err);
    }
    this.wakeDrain();
    for (const l of this.closeListeners.splice(0)) l(err);
  }

  private wakeDrain(): void {
    for (const w of this.drainWaiters.splice(0)) w();
  }

  /** Next frame from the peer; an ERROR frame from the peer is thrown as a MigrationError with its code. */
  async receive(timeoutMs = 0, what = 'a frame'): Promise<Frame> {
    if (this.queue.length > 0) {
      const f = this.queue.shift()!;
      this.queuedIn -= f.payload.length;
      if (
        this.queuedIn <= RECEIVE_QUEUE_BYTES / 2 &&
        this.socket.isPaused() &&
        !this.failure &&
        !this.budgetWait
      )
        this.socket.resume();
      return this.checkRemoteError(f);
    }
    if (this.failure) throw this.failure;
    const frame = await new Promise<Frame>((resolve, reject) => {
      const w: (typeof this.waiters)[number] = { resolve, reject };
      if (timeoutMs > 0) {
        w.timer = setTimeout(() => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(
            new MigrationError(
              'TIMEOUT',
              `no answer from the peer within ${timeoutMs} ms while waiting for ${what}`,
            ),
          );
        }, timeoutMs);
      }
      this.waiters.push(w);
    });
    return this.checkRemoteError(frame);
  }

  /**
   * Runs `fn` with the socket corked: the frames it writes synchronously leave in one write. `fn` must not wait
   * for the socket (a corked socket writes nothing until uncorked).
   */
  corked<T>(fn: () => T): T {
    this.socket.cork?.();
    try {
      return fn();
    } finally {
      this.socket.uncork?.();
    }
  }

  /** The command of the next frame already received and not yet taken, if any (no wait). */
  peekCommand(): Command | undefined {
    return this.queue[0]?.command;
  }

  /** Receives a frame and insists on its command. */
  async expect(command: Command, timeoutMs = 0): Promise<Frame> {
    const f = await this.receive(timeoutMs, Command[command]);
    if (f.command !== command) {
      const e = new MigrationError(
        'PROTOCOL',
        `expected ${Command[command]} but the peer sent ${Command[f.command]}`,
      );
      this.destroy(e);
      throw e;
    }
    return f;
  }

  private checkRemoteError(f: Frame): Frame {
    if (f.command === Command.ERROR) throw remoteErrorToMigrationError(f);
    if (f.command === Command.CANCEL)
      throw new MigrationError('CANCELLED', 'the peer cancelled the migration');
    return f;
  }

  /**
   * The destination's side of frame binding (capability FRAME_BINDING): draws a fresh nonce for this connection,
   * binds what the source sends from now on to it, and our own frames from the one after our next `ack` frame
   * (HELLO_ACK or RECOVER_ACK, which carries the nonce to the source). Returns the nonce.
   */
  bindFramesWithNewNonce(ack: Command): Buffer {
    if (this.queue.length > 0) {
      // Frames the peer sent before it could know the nonce: not part of a bound stream.
      const e = new MigrationError(
        'FOREIGN_FRAME',
        'migration stream: frames arrived before the handshake ended',
      );
      this.destroy(e);
      throw e;
    }
    const nonce = randomBytes(BINDING_NONCE_BYTES);
    this.reader.bindFrames(new FrameBinding(nonce, FrameSender.SOURCE));
    this.bindAfterSending = { command: ack, binding: new FrameBinding(nonce, FrameSender.DESTINATION) };
    return nonce;
  }

  /**
   * The source's side: frames are bound, both ways, from the one after the destination's next `ack` frame (HELLO_ACK,
   * RECOVER_ACK) to the nonce `nonceOf` reads from it (undefined: the destination did not bind). Call before sending
   * what the destination answers with that frame.
   */
  bindFramesAfterReceiving(ack: Command, nonceOf: (payload: Buffer) => Uint8Array | undefined): void {
    this.reader.bindAfter(ack, nonceOf, FrameSender.DESTINATION, (nonce) => {
      this.sendBinding = new FrameBinding(nonce, FrameSender.SOURCE);
    });
  }

  /** Binds a frame as it goes on the wire (in write order, which is the order the peer checks). */
  private outgoing(frame: Buffer): Buffer {
    if (this.sendBinding) bindFrame(frame, this.sendBinding.next());
    else if (this.bindAfterSending && frame[4] === this.bindAfterSending.command) {
      this.sendBinding = this.bindAfterSending.binding;
      this.bindAfterSending = undefined;
    }
    return frame;
  }

  /** Writes raw bytes (the preamble) without pacing. */
  writeRaw(bytes: Uint8Array): void {
    this.socket.write(bytes);
    this.bytesSent += bytes.length;
  }

  /**
   * Sends a complete frame, honouring the bandwidth limit and the socket's backpressure. `onWritten` runs once the
   * socket is done with the buffer (so it can be reused).
   */
  async send(frame: Buffer, onWritten?: () => void): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.pacer) await this.pacer.consume(frame.length, this.failed.signal);
    if (this.failure) throw this.failure;
    // Backpressure by bytes still queued in user space, resumed at half the limit as each write completes
    // (not at 'drain', which waits for an empty queue and leaves the link idle while we refill it).
    this.queued += frame.length;
    this.socket.write(this.outgoing(frame), () => {
      this.queued -= frame.length;
      onWritten?.();
      if (this.queued <= this.queueLimit / 2) this.wakeDrain();
    });
    this.bytesSent += frame.length;
    if (this.queued > this.queueLimit) {
      await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
      if (this.failure) throw this.failure;
    }
  }

  /**
   * Sends a frame that is in pieces (a PAGES frame whose pages are views of paused guest RAM: no copy), in one write
   * (corked), honouring the same limit and backpressure as {@link send}. The last segment ends with the trailer.
   * `onWritten` runs once the socket is done with every segment.
   */
  async sendSegments(segments: Uint8Array[], length: number, onWritten?: () => void): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.pacer) await this.pacer.consume(length, this.failed.signal);
    if (this.failure) throw this.failure;
    if (this.sendBinding) bindTrailer(segments[segments.length - 1]!, length, this.sendBinding.next());
    this.queued += length;
    const last = segments.length - 1;
    this.socket.cork?.();
    try {
      for (let i = 0; i < last; i++) this.socket.write(segments[i]!);
      this.socket.write(segments[last]!, () => {
        this.queued -= length;
        onWritten?.();
        if (this.queued <= this.queueLimit / 2) this.wakeDrain();
      });
    } finally {
      this.socket.uncork?.();
    }
    this.bytesSent += length;
    if (this.queued > this.queueLimit) {
      await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
      if (this.failure) throw this.failure;
    }
  }

  sendFrame(command: Command, payload?: Uint8Array): Promise<void> {
    return this.send(encodeFrame(command, payload));
  }

  /**
   * Best effort: tells the peer why we stop (ERROR), then closes, lingering (see linger). Resolves once the socket
   * is destroyed. Never throws.
   */
  async sendErrorAndClose(err: MigrationError): Promise<void> {
    if (this.failure && !this.errorSent) {
      // The link is already dead (the peer closed or reset it, or we destroyed it): nobody left to tell.
      this.socket.destroy();
      return;
    }
    if (!this.failure) {
      // Fail at once (waking anything blocked on a send), then queue the ERROR frame and our FIN behind it.
      this.fail(err);
      try {
        this.socket.end(
          this.outgoing(encodeFrame(Command.ERROR, encodeJson({ code: err.code, message: err.message }))),
        );
      } catch {
        // the link is already gone; nothing more to tell
      }
      this.errorSent = true;
    }
    await this.linger();
  }

  /**
   * A lingering close, after our ERROR and FIN: read and drop what the peer still sends (onData does, once failed)
   * until it closes too, at most errorLingerMs, then destroy. Closing with unread bytes, or while the peer still
   * sends, makes the kernel reset the connection, and a reset can overtake the ERROR: a peer that is busy writing
   * (a source in a pre-copy round) would then lose it unread and report a lost link instead of why.
   */
  private linger(): Promise<void> {
    this.lingering ??= (async () => {
      // A socket paused for backpressure (a full receive queue, a wait for the buffer budget) must read again:
      // paused, its unread bytes pile up in the kernel and the close becomes a reset.
      this.socket.resume();
      await this.closedOrAfter(this.errorLingerMs);
      this.socket.destroy();
    })();
    return this.lingering;
  }

  /** Resolves when the socket closes, or after `ms`. */
  private closedOrAfter(ms: number): Promise<void> {
    if (this.socket.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      t.unref();
      this.socket.once('close', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  destroy(err?: MigrationError): void {
    this.fail(err ?? new MigrationError('CONNECTION_LOST', 'migration connection closed'));
    this.socket.destroy();
  }
}

export function remoteErrorToMigrationError(f: Frame): MigrationError {
  let body: ErrorBody;
  try {
    body = decodeErrorBody(f.payload);
  } catch (err) {
    // A malformed ERROR frame is still an error: a PROTOCOL one, saying what was wrong with the frame.
    const why = err instanceof MigrationError ? err.message : 'unreadable';
    return new MigrationError('PROTOCOL', `peer reported: an error, in a malformed ERROR frame (${why})`, {
      remote: true,
      ...(err instanceof MigrationError ? err.context : {}),
    });
  }
  // The peer's words are escaped and bounded here, once, before they reach a report, a log line or a terminal.
  return new MigrationError(
    body.code,
    `peer reported: ${body.message !== undefined ? safeText(body.message) : 'an error'}`,
    { remote: true },
  );
}

export { PREAMBLE };
