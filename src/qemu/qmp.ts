/**
 * A QMP client (QEMU Machine Protocol), written here rather than taken from npm, over a UNIX or TCP socket.
 *
 * The conversation: the server speaks first with a greeting ({"QMP": {version, capabilities}}); the client leaves
 * capabilities-negotiation mode with `qmp_capabilities`; from then on every command is one JSON object
 * {"execute", "arguments", "id"} and QEMU answers {"return", "id"} or {"error": {class, desc}, "id"}, in order.
 * Asynchronous events ({"event", "data", "timestamp"}) may arrive between any two messages. Each message ends
 * with CRLF; we split on LF and ignore blank lines.
 *
 * Failure rules: a QEMU error rejects that command only (QmpError); a command that gets no answer in time rejects
 * with QmpTimeoutError and its late answer is dropped; malformed JSON means the stream can no longer be trusted,
 * so the connection is closed and every pending command rejects with QmpProtocolError; a hang-up rejects every
 * pending command with QmpClosedError and ends the event iterators.
 */
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { LivemigError } from '../errors.js';
import { parseQmpMessage } from './qmp-messages.js';

/** Where a QMP monitor listens. */
export type QmpAddress = { path: string } | { host: string; port: number };

/** `unix:/run/q.sock`, `/run/q.sock`, `tcp:127.0.0.1:4444` or `127.0.0.1:4444`. */
export function parseQmpAddress(text: string): QmpAddress {
  if (text.startsWith('unix:')) return { path: text.slice(5) };
  const tcp = text.startsWith('tcp:') ? text.slice(4) : text;
  const m = /^(.*):(\d+)$/.exec(tcp);
  if (m && !tcp.includes('/'))
    return { host: m[1] === '' ? '127.0.0.1' : (m[1] as string), port: Number(m[2]) };
  if (text.startsWith('tcp:')) throw new TypeError(`QMP address "${text}": expected tcp:HOST:PORT`);
  return { path: text };
}

export function formatQmpAddress(a: QmpAddress): string {
  return 'path' in a ? `unix:${a.path}` : `tcp:${a.host}:${a.port}`;
}

/** QEMU answered a command with an error object. `errorClass` is QEMU's class, e.g. `GenericError`. */
export class QmpError extends LivemigError<'QMP_ERROR'> {
  override readonly name = 'QmpError';
  constructor(
    readonly errorClass: string,
    readonly desc: string,
    readonly command: string,
  ) {
    super('QMP_ERROR', `QMP ${command}: ${errorClass}: ${desc}`, { class: errorClass, command });
  }
}

/** A command (or the greeting) got no answer within its timeout. */
export class QmpTimeoutError extends LivemigError<'TIMEOUT'> {
  override readonly name = 'QmpTimeoutError';
  constructor(
    readonly command: string,
    readonly timeoutMs: number,
  ) {
    super('TIMEOUT', `QMP ${command}: no answer within ${timeoutMs} ms`, { command, timeoutMs });
  }
}

/** The peer sent something that is not QMP (bad JSON, no greeting, an answer to no command). */
export class QmpProtocolError extends LivemigError<'PROTOCOL'> {
  override readonly name = 'QmpProtocolError';
  constructor(message: string) {
    super('PROTOCOL', message);
  }
}

/** The connection is closed (peer hung up, or close() was called) before the answer came. */
export class QmpClosedError extends LivemigError<'PEER_CLOSED'> {
  override readonly name = 'QmpClosedError';
  constructor(message: string) {
    super('PEER_CLOSED', message);
  }
}

export interface QmpGreeting {
  QMP: {
    version: { qemu: { major: number; minor: number; micro: number }; package: string };
    capabilities: string[];
  };
}

export interface QmpEvent {
  event: string;
  data: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

/** `query-migrate`'s `ram` member (bytes unless named otherwise). */
export interface QmpMigrationRam {
  transferred: number;
  remaining: number;
  total: number;
  duplicate: number;
  normal: number;
  'normal-bytes': number;
  'dirty-pages-rate': number;
  mbps: number;
  'dirty-sync-count': number;
  'postcopy-requests': number;
  'page-size': number;
  'pages-per-second'?: number;
  'precopy-bytes'?: number;
  'downtime-bytes'?: number;
  'postcopy-bytes'?: number;
}

export interface QmpXbzrleCache {
  'cache-size': number;
  bytes: number;
  pages: number;
  'cache-miss': number;
  'cache-miss-rate': number;
  'encoding-rate'?: number;
  overflow: number;
}

export type QmpMigrationStatus =
  | 'none'
  | 'setup'
  | 'cancelling'
  | 'cancelled'
  | 'active'
  | 'postcopy-active'
  | 'postcopy-paused'
  | 'postcopy-recover-setup'
  | 'postcopy-recover'
  | 'completed'
  | 'failed'
  | 'colo'
  | 'pre-switchover'
  | 'device'
  | 'wait-unplug';

export interface QmpMigrationInfo {
  status?: QmpMigrationStatus;
  ram?: QmpMigrationRam;
  'xbzrle-cache'?: QmpXbzrleCache;
  'total-time'?: number;
  'expected-downtime'?: number;
  downtime?: number;
  'setup-time'?: number;
  'cpu-throttle-percentage'?: number;
  'error-desc'?: string;
}

export interface QmpStatusInfo {
  running: boolean;
  status: string;
}

/** Commands with typed arguments and results. Any other command goes through `execute<T>(name, args)`. */
export interface QmpCommands {
  qmp_capabilities: { args: { enable?: string[] } | undefined; result: Record<string, never> };
  'query-status': { args: undefined; result: QmpStatusInfo };
  'query-version': { args: undefined; result: QmpGreeting['QMP']['version'] };
  'query-migrate': { args: undefined; result: QmpMigrationInfo };
  'query-migrate-parameters': { args: undefined; result: Record<string, unknown> };
  'query-migrate-capabilities': { args: undefined; result: { capability: string; state: boolean }[] };
  'migrate-set-capabilities': {
    args: { capabilities: { capability: string; state: boolean }[] };
    result: Record<string, never>;
  };
  'migrate-set-parameters': {
    args: Record<string, number | string | boolean>;
    result: Record<string, never>;
  };
  migrate: { args: { uri: string; detach?: boolean; resume?: boolean }; result: Record<string, never> };
  'migrate-incoming': { args: { uri: string }; result: Record<string, never> };
  'migrate-start-postcopy': { args: undefined; result: Record<string, never> };
  migrate_cancel: { args: undefined; result: Record<string, never> };
  stop: { args: undefined; result: Record<string, never> };
  cont: { args: undefined; result: Record<string, never> };
  quit: { args: undefined; result: Record<string, never> };
}

export interface QmpConnectOptions {
  /** Give up connecting + greeting after this long (ms). Default 5000. */
  timeoutMs?: number;
  /** Keep retrying while the socket does not exist yet or refuses (QEMU still starting). Default false. */
  retry?: boolean;
  /** Default timeout of each command (ms). Default 10000. */
  commandTimeoutMs?: number;
}

interface Pending {
  command: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

interface QmpClientEvents {
  event: [QmpEvent];
  close: [Error | undefined];
}

/** One QMP connection. Create with `QmpClient.connect`. Emits `event` (QmpEvent) and `close`. */
export class QmpClient extends EventEmitter<QmpClientEvents> {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private closedWith: Error | undefined;
  private greetingWaiter: { resolve: (g: QmpGreeting) => void; reject: (e: Error) => void } | undefined;
  greeting: QmpGreeting | undefined;

  private constructor(
    private readonly socket: Socket,
    readonly commandTimeoutMs: number,
  ) {
    super();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (err) => this.shutdown(new QmpClosedError(`QMP connection failed: ${err.message}`)));
    socket.on('close', () => this.shutdown(new QmpClosedError('QMP connection closed by the peer')));
  }

  /** Connect, read the greeting and negotiate capabilities: the client is then ready for commands. */
  static async connect(address: QmpAddress, options: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = options.timeoutMs ?? 5000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const socket = await openSocket(address, Math.max(1, deadline - Date.now()));
        const client = new QmpClient(socket, options.commandTimeoutMs ?? 10_000);
        await client.handshake(Math.max(1, deadline - Date.now()));
        return client;
      } catch (err) {
        const retriable =
          options.retry === true &&
          err instanceof Error &&
          /ENOENT|ECONNREFUSED/.test((err as NodeJS.ErrnoException).code ?? '') &&
          Date.now() + 50 < deadline;
        if (!retriable) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  private async handshake(timeoutMs: number): Promise<void> {
    const greeting = await new Promise<QmpGreeting>((resolve, reject) => {
      if (this.greeting) return resolve(this.greeting);
      if (this.closedWith) return reject(this.closedWith);
      const timer = setTimeout(() => {
        // QEMU's QMP socket serves one client at a time; the next one gets no greeting until the first leaves.
        const err = new QmpTimeoutError('greeting (is another client connected to this monitor?)', timeoutMs);
        this.greetingWaiter = undefined;
        this.shutdown(err);
        reject(err);
      }, timeoutMs);
      this.greetingWaiter = {
        resolve: (g) => {
          clearTimeout(timer);
          resolve(g);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
    this.greeting = greeting;
    await this.execute('qmp_capabilities', undefined, { timeoutMs });
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  /** Run one command; resolves with its `return` value, rejects with QmpError / QmpTimeoutError / QmpClosedError. */
  execute<K extends keyof QmpCommands>(
    command: K,
    args?: QmpCommands[K]['args'],
    options?: { timeoutMs?: number },
  ): Promise<QmpCommands[K]['result']>;
  execute<T = unknown>(
    command: string,
    args?: Record<string, unknown>,
    options?: { timeoutMs?: number },
  ): Promise<T>;
  execute(command: string, args?: object, options: { timeoutMs?: number } = {}): Promise<unknown> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const id = String(this.nextId++);
    const timeoutMs = options.timeoutMs ?? this.commandTimeoutMs;
    const message: Record<string, unknown> = { execute: command, id };
    if (args !== undefined) message.arguments = args;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        // The late answer, if it ever comes, finds no pending entry and is dropped.
        this.pending.delete(id);
        reject(new QmpTimeoutError(command, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { command, resolve, reject, timer });
      this.socket.write(`${JSON.stringify(message)}\r\n`);
    });
  }

  /** Events from now on, until the connection closes (or the iterator is returned from). */
  events(): AsyncIterableIterator<QmpEvent> {
    const queue: QmpEvent[] = [];
    let wake: (() => void) | undefined;
    let done = this.closed;
    const onEvent = (e: QmpEvent): void => {
      queue.push(e);
      wake?.();
    };
    const onClose = (): void => {
      done = true;
      wake?.();
    };
    this.on('event', onEvent);
    this.on('close', onClose);
    const stop = (): void => {
      done = true;
      this.off('event', onEvent);
      this.off('close', onClose);
      wake?.();
    };
    const iterator: AsyncIterableIterator<QmpEvent> = {
      next: async () => {
        for (;;) {
          const e = queue.shift();
          if (e) return { value: e, done: false };
          if (done) return { value: undefined, done: true };
          await new Promise<void>((r) => {
            wake = r;
          });
          wake = undefined;
        }
      },
      return: async () => {
        stop();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /** The next event named `name` (and matching `match`), or QmpTimeoutError / QmpClosedError. */
  waitEvent(
    name: string,
    timeoutMs: number,
    match: (e: QmpEvent) => boolean = () => true,
  ): Promise<QmpEvent> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise((resolve, reject) => {
      const onEvent = (e: QmpEvent): void => {
        if (e.event !== name || !match(e)) return;
        cleanup();
        resolve(e);
      };
      const onClose = (err: Error | undefined): void => {
        cleanup();
        reject(err ?? new QmpClosedError('QMP connection closed'));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new QmpTimeoutError(`event ${name}`, timeoutMs));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off('event', onEvent);
        this.off('close', onClose);
      };
      this.on('event', onEvent);
      this.on('close', onClose);
    });
  }

  /** Close the connection; pending commands reject with QmpClosedError. */
  close(): Promise<void> {
    this.shutdown(new QmpClosedError('QMP connection closed by the client'));
    return new Promise((resolve) => {
      if (this.socket.closed) resolve();
      else this.socket.once('close', () => resolve());
    });
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    for (;;) {
      const nl = this.buffer.indexOf('\n');
      if (nl < 0) break;
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line === '') continue;
      this.onMessage(line);
      if (this.closedWith) return;
    }
    // A monitor never sends megabytes without a newline; treat that as a broken peer, not as memory to spend.
    if (this.buffer.length > 16 * 1024 * 1024) this.shutdown(new QmpProtocolError('QMP message over 16 MiB'));
  }

  private onMessage(line: string): void {
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      this.shutdown(new QmpProtocolError(`malformed JSON from QMP peer: ${line.slice(0, 120)}`));
      return;
    }
    const m = parseQmpMessage(json);
    if (typeof m === 'string') {
      this.shutdown(new QmpProtocolError(`${m}: ${line.slice(0, 120)}`));
      return;
    }
    if (m.kind === 'greeting') {
      this.greetingWaiter?.resolve(m.greeting);
      this.greetingWaiter = undefined;
      return;
    }
    if (m.kind === 'event') {
      this.emit('event', m.event);
      return;
    }
    if (this.greetingWaiter) {
      this.shutdown(new QmpProtocolError(`expected a QMP greeting, got: ${line.slice(0, 120)}`));
      return;
    }
    const p = m.id === undefined ? undefined : this.pending.get(m.id);
    if (!p) return; // the answer to a command that already timed out
    this.pending.delete(m.id as string);
    clearTimeout(p.timer);
    if (m.kind === 'return') p.resolve(m.value);
    else if (m.kind === 'error') p.reject(new QmpError(m.errorClass, m.desc, p.command));
    else
      p.reject(
        new QmpProtocolError(`QMP answer to ${p.command} has neither return nor {error: {class, desc}}`),
      );
  }

  private shutdown(err: Error): void {
    if (this.closedWith) return;
    this.closedWith = err;
    this.greetingWaiter?.reject(err);
    this.greetingWaiter = undefined;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    this.socket.destroy();
    this.emit('close', err instanceof QmpClosedError && /by the client/.test(err.message) ? undefined : err);
  }
}

function openSocket(address: QmpAddress, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = 'path' in address ? connect(address.path) : connect(address.port, address.host);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new QmpTimeoutError(`connect ${formatQmpAddress(address)}`, timeoutMs));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
