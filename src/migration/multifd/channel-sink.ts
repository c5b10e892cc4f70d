/**
 * The destination's parallel channels: each attached connection feeds its own page-sink thread, which checks every
 * PAGES frame (bounds, CRC32C, binding to the channel and its position) and applies it to the guest's RAM and the
 * shared ledger, in the order the channel delivered them. The main connection's SYNC k waits until every channel has
 * applied its pages up to its own SYNC k. Any channel's failure is the migration's.
 */
import type { CompressorName } from '../../codec/index.js';
import { MigrationError } from '../../errors.js';
import type { Guest } from '../../guest/index.js';
import type { FrameConnection } from '../connection.js';
import { PageSink } from '../page-sink.js';
import {
  Command,
  DEFAULT_MAX_FRAME,
  decodeSync,
  encodeChannelAck,
  type PageEncoding,
} from '../protocol/index.js';

interface Channel {
  conn: FrameConnection;
  sink: PageSink;
  synced: number;
}

export interface MultifdSinkInit {
  channels: number;
  guest: Guest;
  ledger: Uint32Array;
  /** The ledger digest's running sums (shared): every channel's sink keeps them with the CRCs it writes. */
  ledgerSums?: Int32Array;
  compressors: [PageEncoding, CompressorName][];
  pageCount: number;
  bound: boolean;
  idleTimeoutMs: number;
  /** Bytes the main connection has received so far: a channel without pages is not idle while the migration is not. */
  activity: () => number;
  /** A channel failed: the migration fails with this error. */
  onFail: (e: MigrationError) => void;
}

export class MultifdSink {
  private readonly channels: (Channel | undefined)[];
  private failure: MigrationError | undefined;
  private done = false;
  private waiters: { seq: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  /** Pages applied by every channel so far. */
  get pagesApplied(): number {
    let n = 0;
    for (const c of this.channels) n += c?.sink.pagesApplied ?? 0;
    return n;
  }

  get bytesReceived(): number {
    let n = 0;
    for (const c of this.channels) n += c?.conn.bytesReceived ?? 0;
    return n;
  }

  constructor(private readonly init: MultifdSinkInit) {
    this.channels = new Array<Channel | undefined>(init.channels).fill(undefined);
  }

  /** A CHANNEL for this migration (its token was checked): takes the connection over, or throws to refuse it. */
  attach(conn: FrameConnection, index: number): void {
    if (this.failure || this.done) {
      throw new MigrationError('PROTOCOL', 'CHANNEL refused: the migration is no longer receiving pages');
    }
    if (index >= this.channels.length) {
      throw new MigrationError(
        'PROTOCOL',
        `CHANNEL refused: channel ${index} of a migration with ${this.channels.length} channels`,
      );
    }
    if (this.channels[index])
      throw new MigrationError('PROTOCOL', `CHANNEL refused: channel ${index} is taken`);
    const init = this.init;
    // Checked on the channel's thread (the sink), not here: bounds, CRC32C and binding, in one pass.
    conn.reader.deferChecksum(Command.PAGES);
    conn.reader.setMaxPayload(DEFAULT_MAX_FRAME);
    const nonce = init.bound ? conn.bindFramesWithNewNonce(Command.CHANNEL_ACK) : undefined;
    const sink = new PageSink(
      init.guest,
      init.ledger,
      init.compressors,
      (b) => conn.reader.recycleBuffer(b),
      undefined,
      { pageCount: init.pageCount, ...(nonce ? { nonce } : {}) },
      init.ledgerSums,
    );
    const ch: Channel = { conn, sink, synced: 0 };
    this.channels[index] = ch;
    void this.serve(ch, index);
    conn.sendFrame(Command.CHANNEL_ACK, encodeChannelAck(nonce)).catch(() => undefined);
  }

  private async serve(ch: Channel, index: number): Promise<void> {
    try {
      for (;;) {
        const f = await this.receive(ch, index);
        if (f.command === Command.PAGES) {
          const u = f.unverified!;
          await ch.sink.submit(f.payload, 0, new Uint32Array(0), {
            expected: u.expected,
            headerCrc: u.headerCrc,
            sequence: u.binding?.sequence ?? 0,
            ...(u.binding ? { seed: u.binding.seed } : {}),
          });
        } else if (f.command === Command.SYNC) {
          const seq = decodeSync(f.payload);
          if (seq !== ch.synced + 1) {
            throw new MigrationError('PROTOCOL', `multifd channel ${index}: SYNC ${seq} after ${ch.synced}`);
          }
          await ch.sink.drain();
          ch.synced = seq;
          this.wake();
        } else {
          throw new MigrationError(
            'PROTOCOL',
            `unexpected ${Command[f.command]} frame on multifd channel ${index}`,
          );
        }
      }
    } catch (err) {
      if (this.done) return;
      const e =
        err instanceof MigrationError
          ? err
          : new MigrationError('INTERNAL', `multifd channel ${index}: ${String(err)}`);
      this.fail(
        new MigrationError(e.code, `multifd channel ${index}: ${e.message}`, {
          ...e.context,
          channel: index,
        }),
      );
    }
  }

  /** The channel's next frame; a channel that has no pages to carry waits as long as the migration moves. */
  private async receive(ch: Channel, index: number) {
    for (;;) {
      const seen = this.init.activity() + this.bytesReceived;
      try {
        return await ch.conn.receive(this.init.idleTimeoutMs, `the next frame on multifd channel ${index}`);
      } catch (err) {
        const moving =
          err instanceof MigrationError &&
          err.code === 'TIMEOUT' &&
          !err.context.remote &&
          this.init.activity() + this.bytesReceived !== seen;
        if (!moving) throw err;
      }
    }
  }

  private fail(e: MigrationError): void {
    if (this.failure || this.done) return;
    this.failure = e;
    for (const w of this.waiters.splice(0)) w.reject(e);
    this.init.onFail(e);
  }

  private wake(): void {
    this.waiters = this.waiters.filter((w) => {
      if (!this.reached(w.seq)) return true;
      w.resolve();
      return false;
    });
  }

  private reached(seq: number): boolean {
    return this.channels.every((c) => c !== undefined && c.synced >= seq);
  }

  /**
   * The main connection's SYNC `seq`: resolves once every channel has applied its pages up to its SYNC `seq`.
   * Channels that bring no byte and apply no page for the idle timeout (one never came, or stopped) fail the migration.
   */
  waitSync(seq: number): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.reached(seq)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w = { seq, resolve, reject };
      this.waiters.push(w);
      const progress = () => this.bytesReceived + this.pagesApplied;
      let seen = progress();
      const t = setInterval(() => {
        if (progress() !== seen) {
          seen = progress();
          return;
        }
        const missing = this.channels.findIndex((c) => c === undefined || c.synced < seq);
        this.fail(
          new MigrationError(
            'TIMEOUT',
            `multifd channel ${missing} did not reach sync point ${seq}: nothing moved for ${this.init.idleTimeoutMs} ms`,
          ),
        );
      }, this.init.idleTimeoutMs);
      const clear = () => clearInterval(t);
      const { resolve: res, reject: rej } = w;
      w.resolve = () => {
        clear();
        res();
      };
      w.reject = (e) => {
        clear();
        rej(e);
      };
    });
  }

  /** Every page has been applied (the switch-over began) or the migration ended: channels and their threads go. */
  async close(): Promise<void> {
    this.done = true;
    for (const w of this.waiters.splice(0))
      w.reject(new MigrationError('CANCELLED', 'multifd channels closed'));
    await Promise.all(
      this.channels.map(async (c) => {
        if (!c) return;
        c.conn.destroy();
        await c.sink.close();
      }),
    );
  }
}
