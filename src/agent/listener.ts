/**
 * The agent's one TCP port: admission of each connection (--max-connections, --connect-rate, admission.ts), the
 * first-byte deadline, optional mutual TLS terminated here, then sniffing: a connection that starts with the
 * migration preamble is a migration stream, anything else is HTTP. Refused peers are told why in their protocol.
 */
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket, type Server as TlsServer } from 'node:tls';
import { MigrationError } from '../errors.js';
import { FrameConnection } from '../migration/connection.js';
import { MAX_HELLO_PAYLOAD, PREAMBLE } from '../migration/protocol/index.js';
import { type AdmissionLimits, PeerRate } from './admission.js';
import { checkListenSecurity, serverTlsOptions, type TlsMaterial, tlsFailure } from './tls.js';

export interface ListenerOptions {
  host: string;
  port: number;
  tls?: TlsMaterial;
  /** Allow plain TCP on a non-loopback address. */
  insecure: boolean;
  limits: AdmissionLimits;
  log: (line: string) => void;
  /** A connection whose first bytes are not the migration preamble (TLS already terminated). */
  onHttp: (socket: Socket) => void;
  /** A connection that starts with the migration preamble (TLS already terminated). */
  onMigration: (socket: Socket) => void;
}

export class Listener {
  private readonly server = createNetServer();
  /** Sniffed and refused connections, destroyed at close. */
  private readonly sockets = new Set<Socket>();
  /** Open connections (from accept), until they close. */
  private openConnections = 0;
  private readonly openByPeer = new Map<string, number>();
  private readonly peerRate: PeerRate;
  private readonly limits: AdmissionLimits;
  private readonly log: (line: string) => void;

  constructor(private readonly o: ListenerOptions) {
    this.limits = o.limits;
    this.log = o.log;
    this.peerRate = new PeerRate(this.limits.connectRate, this.limits.connectBurst);
    if (o.tls) {
      // TLS is terminated first; the decrypted stream is then sniffed like a plain one.
      const tls: TlsServer = createTlsServer({
        ...serverTlsOptions(o.tls),
        handshakeTimeout: this.limits.firstByteTimeoutMs,
      });
      // Verification is ours (rejectUnauthorized off in serverTlsOptions) so that a refused peer is told why,
      // in its own protocol, instead of seeing a bare reset.
      tls.on('secureConnection', (s: TLSSocket) => {
        if (s.authorized) return this.sniff(s);
        const why = s.getPeerCertificate()?.raw
          ? `this agent does not accept your certificate (${String(s.authorizationError)}): it must be valid and signed by the agent's --tls-ca`
          : 'this agent requires a client certificate (--tls-cert, --tls-key) signed by its --tls-ca';
        this.log(`refused ${s.remoteAddress ?? '?'}: ${why}`);
        this.refuse(s, why);
      });
      tls.on('tlsClientError', (err, s) => {
        this.log(
          `refused ${s.remoteAddress ?? '?'}: ${tlsFailure(err, 'the client')?.message ?? err.message}`,
        );
        s.destroy();
      });
      this.server.on('connection', (socket) => this.admit(socket) && this.sniffTls(socket, tls));
    } else this.server.on('connection', (socket) => this.admit(socket) && this.sniff(socket));
  }

  async listen(): Promise<AddressInfo> {
    checkListenSecurity(this.o.host, this.o.tls !== undefined, this.o.insecure);
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.o.port, this.o.host, () => resolve());
    });
    return this.server.address() as AddressInfo;
  }

  /** Ends every connection still being sniffed or refused (the HTTP server's and migrations' included). */
  destroyConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  close(): Promise<void> {
    return new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /**
   * Every accepted connection counts until it closes. Over --max-connections it is closed at once, without a word
   * (waiting to learn its protocol would hold the descriptor the limit protects). Over its address's
   * --connect-rate, a plain port says why in the peer's protocol if it speaks within a second; a TLS port closes it.
   */
  private admit(socket: Socket): boolean {
    const peer = socket.remoteAddress ?? '?';
    const fromPeer = (this.openByPeer.get(peer) ?? 0) + 1;
    this.openConnections++;
    this.openByPeer.set(peer, fromPeer);
    socket.once('close', () => {
      this.openConnections--;
      const n = (this.openByPeer.get(peer) ?? 1) - 1;
      if (n > 0) this.openByPeer.set(peer, n);
      else this.openByPeer.delete(peer);
    });
    socket.on('error', () => undefined);
    const full =
      this.openConnections > this.limits.maxConnections
        ? `${this.limits.maxConnections} open (--max-connections)`
        : fromPeer > this.limits.maxConnectionsPerPeer
          ? `${this.limits.maxConnectionsPerPeer} open from it (--max-connections-per-peer)`
          : undefined;
    if (full) {
      this.log(`refused connection from ${peer}: ${full}`);
      socket.destroy();
      return false;
    }
    if (this.peerRate.take(peer)) return true;
    const why = `too many new connections from ${peer} (--connect-rate ${this.limits.connectRate}/s): retry later`;
    this.log(`refused connection from ${peer}: ${why}`);
    // A TLS port: no words without a handshake, and a handshake is what it must not get.
    if (this.o.tls) socket.destroy();
    else this.refuse(socket, why, 'RESOURCE_LIMIT', Math.min(1000, this.limits.firstByteTimeoutMs));
    return false;
  }

  /** Closes a connection that sends nothing (a TLS one: completes no handshake) within --first-byte-timeout. */
  private firstByteDeadline(socket: Socket): void {
    socket.setTimeout(this.limits.firstByteTimeoutMs, () => {
      this.log(
        `closed connection from ${socket.remoteAddress ?? '?'}: no byte within ${this.limits.firstByteTimeoutMs} ms`,
      );
      socket.destroy();
    });
  }

  /** Keeps a socket among those stop() ends, until it closes; its errors only close it. */
  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.once('error', () => undefined);
  }

  /**
   * Tracks a new connection, closes it if no byte comes within --first-byte-timeout, and hands its first bytes to
   * `route` once they come (pushed back first, so whoever reads next sees the whole stream).
   */
  private onFirstBytes(socket: Socket, route: (head: Buffer) => void): void {
    this.track(socket);
    this.firstByteDeadline(socket);
    socket.once('readable', () => {
      const head: Buffer | null = socket.read(Math.min(PREAMBLE.length, socket.readableLength));
      if (!head) return;
      // From here the HTTP server's, the migration's or the TLS handshake's own timeouts apply (the handshake's is
      // handshakeTimeout = --first-byte-timeout).
      socket.setTimeout(0);
      socket.unshift(head);
      route(head);
    });
  }

  /** First bytes decide: the migration preamble, or HTTP. */
  private sniff(socket: Socket): void {
    this.onFirstBytes(socket, (head) => {
      if (startsLikeMigration(head)) this.o.onMigration(socket);
      else this.o.onHttp(socket);
    });
  }

  /** A TLS port: a ClientHello goes to the TLS server; plain migration or HTTP gets a clear refusal. */
  private sniffTls(socket: Socket, tls: TlsServer): void {
    this.onFirstBytes(socket, (head) => {
      if (head[0] === 0x16) return void tls.emit('connection', socket); // TLS handshake record
      this.log(`refused plain connection from ${socket.remoteAddress ?? '?'}: not TLS`);
      this.refuse(
        socket,
        'this agent requires TLS with a client certificate (--tls-cert, --tls-key, --tls-ca)',
      );
    });
  }

  /**
   * Answers a refused peer in its own protocol (migration error frame, or HTTP 403 for AUTH_FAILED and 429 for
   * RESOURCE_LIMIT): an unauthenticated one, or one over a limit.
   */
  private refuse(
    socket: Socket,
    why: string,
    code: 'AUTH_FAILED' | 'RESOURCE_LIMIT' = 'AUTH_FAILED',
    silenceMs = this.limits.firstByteTimeoutMs,
  ): void {
    this.track(socket);
    const answer = (): void => {
      const head: Buffer | null = socket.read(Math.min(PREAMBLE.length, socket.readableLength));
      if (!head) return void socket.once('readable', answer);
      socket.unshift(head);
      if (startsLikeMigration(head)) {
        const conn = new FrameConnection(socket, { expectPreamble: true, maxPayload: MAX_HELLO_PAYLOAD });
        void conn.sendErrorAndClose(new MigrationError(code, why));
        return;
      }
      const body = JSON.stringify({ error: { code, message: why } });
      const status = code === 'AUTH_FAILED' ? '403 Forbidden' : '429 Too Many Requests';
      socket.end(
        `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
      // Discard the rest of the request: the peer's close is seen only once its bytes are read, and until then the
      // connection would count against the limits for nothing.
      socket.resume();
    };
    answer();
    // A peer that never speaks is dropped rather than held open.
    socket.setTimeout(silenceMs, () => socket.destroy());
  }
}

/** A migration stream starts with the preamble's magic (its first 4 bytes); anything else is taken for HTTP. */
function startsLikeMigration(head: Buffer): boolean {
  return head.length >= 4 && head.subarray(0, 4).equals(PREAMBLE.subarray(0, 4));
}
