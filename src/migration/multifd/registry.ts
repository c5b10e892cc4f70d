/**
 * Where an extra connection (CHANNEL) finds its migration on the destination agent. A channel is accepted only for
 * a live migration that announced parallel channels, with the token from that migration's HELLO (constant-time
 * compare), from the same peer address as its main connection, for an index it has not taken yet: a stray or foreign
 * connection gets an ERROR and is closed, and drives nothing.
 */
import { timingSafeEqual } from 'node:crypto';
import { MigrationError } from '../../errors.js';
import type { FrameConnection } from '../connection.js';
import { type ChannelHello, decodeChannelHello, type Frame } from '../protocol/index.js';

/** A migration waiting for (or holding) its channels. */
export interface ChannelHost {
  migrationId: string;
  token: string;
  /** The main connection's peer address: its channels come from the same host. */
  peer: string;
  /** Takes the channel over (sends CHANNEL_ACK); throws a MigrationError to refuse it. */
  attach(conn: FrameConnection, channel: number): void;
}

export class ChannelRegistry {
  private readonly hosts = new Map<string, { host: ChannelHost; expected: number }>();

  /** Channels announced by live migrations and not attached yet: the agent admits that many streams beyond --max-incoming. */
  get pending(): number {
    let n = 0;
    for (const h of this.hosts.values()) n += h.expected;
    return n;
  }

  register(host: ChannelHost, channels: number): void {
    this.hosts.set(host.migrationId, { host, expected: channels });
  }

  unregister(migrationId: string): void {
    this.hosts.delete(migrationId);
  }

  /**
   * Serves a connection whose first frame is CHANNEL: hands it to its migration, or refuses it (ERROR, close).
   * Returns true when the channel was accepted.
   */
  async accept(conn: FrameConnection, first: Frame): Promise<boolean> {
    let hello: ChannelHello;
    try {
      hello = decodeChannelHello(first.payload);
      const entry = this.hosts.get(hello.migrationId);
      const a = Buffer.from(hello.token, 'hex');
      const b = Buffer.from(entry?.host.token ?? '', 'hex');
      if (!entry || a.length !== b.length || !timingSafeEqual(a, b)) {
        throw new MigrationError(
          'AUTH_FAILED',
          'CHANNEL refused: no migration with that id and token waits on this agent for parallel channels',
        );
      }
      const peer = conn.socket.remoteAddress ?? '';
      if (peer !== entry.host.peer) {
        throw new MigrationError(
          'AUTH_FAILED',
          "CHANNEL refused: a migration's channels must come from the host of its main connection",
        );
      }
      entry.host.attach(conn, hello.channel);
      entry.expected = Math.max(0, entry.expected - 1);
      return true;
    } catch (err) {
      await conn.sendErrorAndClose(
        err instanceof MigrationError ? err : new MigrationError('PROTOCOL', String(err)),
      );
      return false;
    }
  }
}
