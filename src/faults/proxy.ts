/**
 * A user-space fault proxy: a TCP relay between a source agent and a destination agent that makes the link
 * between them misbehave, switchable at run time and by schedule. This kernel has no netem, so the faults a real
 * network shows are modelled here, the way the two TCP endpoints see them:
 *
 * - delay (fixed + jitter) and delay spikes: every chunk is held for the link's one-way latency; order is kept,
 *   as a TCP stream keeps it.
 * - loss: a TCP stream cannot lose bytes; a lost segment shows up as a retransmission stall — the segment and
 *   everything behind it wait about one RTO. So each chunk is held an extra `rtoMs` with the probability that at
 *   least one of its MSS-sized segments was lost, 1 − (1 − p)^segments.
 * - stall: stop forwarding for N ms (a congested or flapping link, a paused middlebox).
 * - throttle: a bottleneck link of `rateBytesPerSec`, serialised chunk by chunk.
 * - cut: destroy both sides of every connection (RST where Node can send one), at a byte offset of the
 *   source → destination stream, at a protocol frame, after a time, or on command.
 *
 * Triggers watch the source → destination direction of each connection ("forward"). A frame trigger reads the
 * migration stream's framing (preamble, then length + command headers) and fires just before that frame's first
 * byte is forwarded; it never matches a TLS stream (the framing is encrypted there), byte and time triggers do.
 * Backpressure is kept: a direction stops reading once it holds `highWaterBytes`, so the sender's TCP window
 * closes as it would behind a slow link.
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { MigrationError, UsageError } from '../errors.js';
import { Command, PREAMBLE } from '../migration/protocol/index.js';

export interface LinkFaults {
  /** One-way latency added to every chunk, ms. */
  delayMs: number;
  /** Uniform jitter ± this many ms on top of delayMs (order is still kept). */
  jitterMs: number;
  /** Probability that one segment is lost (0..1): a retransmission stall of rtoMs for its chunk and all behind it. */
  loss: number;
  /** Stall per loss event, ms (Linux's minimum RTO is 200 ms). */
  rtoMs: number;
  /** Segment size for the loss model (an Ethernet MSS). */
  segmentBytes: number;
  /** Bottleneck rate in each direction, bytes/s (0 = no limit). */
  rateBytesPerSec: number;
}

export const NO_FAULTS: Readonly<LinkFaults> = {
  delayMs: 0,
  jitterMs: 0,
  loss: 0,
  rtoMs: 200,
  segmentBytes: 1448,
  rateBytesPerSec: 0,
};

/** What happens when a trigger fires. */
export type FaultAction =
  | { kind: 'cut' }
  | { kind: 'stall'; ms: number }
  /** Extra one-way latency for everything that arrives during the next `forMs`. */
  | { kind: 'spike'; ms: number; forMs: number }
  | { kind: 'set'; faults: Partial<LinkFaults> }
  /** Splice these bytes into the forward stream at that point (a replayed or foreign frame, a TLS record). */
  | { kind: 'inject'; bytes: Buffer }
  /**
   * Run code at that point of the stream (SIGKILL or SIGSTOP a process). The forward direction holds the
   * triggering bytes until it resolves, so the code runs before the peer sees them.
   */
  | { kind: 'call'; fn: () => void | Promise<void> };

/** When a scheduled action fires: after a time, before a byte offset, or before the nth frame of a command. */
export type FaultTrigger =
  | { afterMs: number }
  | { atByte: number }
  /** The nth frame of a command; with `after`, counting only once the nth `after.frame` has been seen. */
  | { atFrame: number | number[]; nth?: number; after?: { frame: number; nth?: number } };

export interface FaultEvent {
  /** ms since the proxy started. */
  atMs: number;
  action: FaultAction['kind'];
  /** Forward byte offset of the connection it fired on (time triggers and commands: -1). */
  atByte: number;
  trigger: string;
}

export interface ProxyStats {
  connections: number;
  bytesForward: number;
  bytesBackward: number;
  cuts: number;
  stalls: number;
  /** Loss events: chunks held for a retransmission timeout. */
  retransmitStalls: number;
  /** Most bytes one direction held at once. */
  peakHeldBytes: number;
  /**
   * Times the proxy woke to write out chunks that were due, and how late after the first one's release time (the
   * thread's timers and scheduling: what the emulation adds to the link's delay; a blocked peer is not counted), ms.
   */
  released: number;
  lateMsSum: number;
  lateMsMax: number;
  events: FaultEvent[];
}

export interface FaultProxyOptions {
  /** Where the real destination agent listens (host:port). */
  target: string;
  /** Address to listen on (default 127.0.0.1:0; inside a netns harness, that host's address). */
  listen?: string;
  faults?: Partial<LinkFaults>;
  /** Seed of the jitter and loss draws (reproducible runs). */
  seed?: number;
  /** A direction stops reading from its socket once it holds this many bytes. */
  highWaterBytes?: number;
  /** Sees every chunk as it arrives (to record a session for replay). */
  tap?: (direction: 'forward' | 'backward', bytes: Buffer) => void;
}

interface Chunk {
  buf: Buffer;
  release: number;
}

interface PendingTrigger {
  trigger: FaultTrigger;
  action: FaultAction;
  label: string;
  seen: number;
  /** Frames of `after.frame` seen so far. */
  afterSeen: number;
  fired: boolean;
}

/** Splits "host:port" (IPv6 in brackets). */
function hostPort(address: string, what: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(address);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`${what}: "${address}" is not HOST:PORT (e.g. 127.0.0.1:7071)`, what);
  }
  return { host: (m[1] ?? m[2])!, port };
}

function checkFaults(f: Partial<LinkFaults>): void {
  const bad = (field: string, form: string) => {
    throw new UsageError(`fault ${field}: ${form}`, field);
  };
  for (const k of ['delayMs', 'jitterMs', 'rtoMs', 'rateBytesPerSec'] as const) {
    const v = f[k];
    if (v !== undefined && !(Number.isFinite(v) && v >= 0)) bad(k, `"${v}" is not a number ≥ 0`);
  }
  if (f.loss !== undefined && !(f.loss >= 0 && f.loss <= 1))
    bad('loss', `"${f.loss}" is not a probability 0..1`);
  if (f.segmentBytes !== undefined && !(Number.isInteger(f.segmentBytes) && f.segmentBytes >= 1)) {
    bad('segmentBytes', `"${f.segmentBytes}" is not an integer ≥ 1`);
  }
}

/**
 * Finds frame starts in the forward stream of a migration connection: after the 8-byte preamble, each frame is
 * an 8-byte header (u32 BE payload length, command byte, 3 reserved) + payload + 4-byte CRC. Stops (for good) at
 * anything that is not that framing, e.g. TLS.
 */
export class FrameWatcher {
  private offset = 0;
  private preambleLeft = PREAMBLE.length;
  private header = Buffer.alloc(8);
  private headerHave = 0;
  private skip = 0;
  private frameStart = 0;
  active = true;

  /** Feeds the next bytes; returns the stream offsets and commands of frames that start in them. */
  feed(chunk: Buffer): { offset: number; command: number }[] {
    const found: { offset: number; command: number }[] = [];
    let i = 0;
    while (this.active && i < chunk.length) {
      if (this.preambleLeft > 0) {
        const at = PREAMBLE.length - this.preambleLeft;
        if (chunk[i] !== PREAMBLE[at]) this.active = false;
        this.preambleLeft--;
        i++;
      } else if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
      } else {
        if (this.headerHave === 0) this.frameStart = this.offset + i;
        const n = Math.min(8 - this.headerHave, chunk.length - i);
        chunk.copy(this.header, this.headerHave, i, i + n);
        this.headerHave += n;
        i += n;
        if (this.headerHave === 8) {
          this.headerHave = 0;
          found.push({ offset: this.frameStart, command: this.header[4]! });
          this.skip = this.header.readUInt32BE(0) + 4;
        }
      }
    }
    this.offset += chunk.length;
    return found;
  }
}

/** One direction of one relayed connection: holds chunks until their release time, then writes them in order. */
class Pipe {
  private queue: Chunk[] = [];
  private held = 0;
  private lastRelease = 0;
  private rateCursor = 0;
  private timer: NodeJS.Timeout | undefined;
  private pumping = false;
  private ended = false;
  /** Bytes of this direction already written out. */
  forwarded = 0;
  /** Bytes received (offset of the next byte that arrives). */
  received = 0;
  /** Absolute offsets (of the forward stream) where a trigger must fire before that byte is written. */
  marks: { at: number; t: PendingTrigger }[] = [];
  readonly watcher: FrameWatcher | undefined;

  constructor(
    private readonly proxy: FaultProxy,
    private readonly input: Socket,
    private readonly output: Socket,
    readonly forward: boolean,
  ) {
    this.watcher = forward ? new FrameWatcher() : undefined;
    input.on('data', (b: Buffer) => this.onData(b));
    input.on('end', () => {
      this.ended = true;
      this.schedule();
    });
  }

  private onData(buf: Buffer): void {
    const now = performance.now();
    this.proxy.tap?.(this.forward ? 'forward' : 'backward', buf);
    const start = this.received;
    this.received += buf.length;
    if (this.watcher?.active) {
      for (const f of this.watcher.feed(buf)) this.proxy.frameSeen(this, f.offset, f.command);
    }
    if (this.forward) this.proxy.byteRange(this, start, this.received);
    const release = this.proxy.releaseTime(now, buf.length, this);
    this.queue.push({ buf, release });
    this.held += buf.length;
    this.proxy.noteHeld(this.held);
    if (this.held > this.proxy.highWater) this.input.pause();
    this.schedule();
  }

  /** Serialisation on the bottleneck: each direction's chunks leave one after another at the set rate. */
  rateSlot(arrive: number, bytes: number, rate: number): number {
    if (rate <= 0) return arrive;
    this.rateCursor = Math.max(this.rateCursor, arrive) + (bytes / rate) * 1000;
    return this.rateCursor;
  }

  inOrder(release: number): number {
    this.lastRelease = Math.max(this.lastRelease, release);
    return this.lastRelease;
  }

  schedule(): void {
    if (this.pumping || this.proxy.isClosed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const head = this.queue[0];
    if (!head) {
      if (this.ended && !this.output.destroyed) this.output.end();
      return;
    }
    const wait = Math.max(head.release, this.proxy.stallUntil) - performance.now();
    if (wait > 0) this.timer = setTimeout(() => this.pump(), Math.ceil(wait));
    else void this.pump();
  }

  private async pump(): Promise<void> {
    this.timer = undefined;
    if (this.pumping) return;
    this.pumping = true;
    let first = true;
    try {
      for (;;) {
        if (this.output.destroyed || this.proxy.isClosed) return;
        const head = this.queue[0];
        if (!head) break;
        const now = performance.now();
        if (Math.max(head.release, this.proxy.stallUntil) > now) break;
        // A trigger inside this chunk: write up to it, fire, and look again (the action may stall or cut).
        let mark: { at: number; t: PendingTrigger } | undefined;
        for (const m of this.marks) {
          if (m.at < this.forwarded + head.buf.length && (!mark || m.at < mark.at)) mark = m;
        }
        if (mark && mark.at <= this.forwarded) {
          this.marks.splice(this.marks.indexOf(mark), 1);
          await this.proxy.fire(mark.t, this.forwarded, this.output);
          continue;
        }
        let part = head.buf;
        if (mark) {
          part = head.buf.subarray(0, mark.at - this.forwarded);
          head.buf = head.buf.subarray(part.length);
        } else this.queue.shift();
        this.held -= part.length;
        this.forwarded += part.length;
        this.proxy.countBytes(this.forward, part.length);
        if (first) this.proxy.noteLate(now - Math.max(head.release, this.proxy.stallUntil));
        first = false;
        if (this.held <= this.proxy.highWater / 2 && this.input.isPaused()) this.input.resume();
        if (!this.output.write(part)) {
          await new Promise<void>((res) => {
            const done = () => {
              this.output.off('drain', done);
              this.output.off('close', done);
              res();
            };
            this.output.on('drain', done);
            this.output.on('close', done);
          });
        }
      }
    } finally {
      this.pumping = false;
    }
    this.schedule();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue = [];
  }
}

interface Relay {
  client: Socket;
  upstream: Socket;
  pipes: Pipe[];
}

/** The proxy. `address` is what the source agent is told to migrate to. */
export class FaultProxy {
  private server: Server;
  private relays = new Set<Relay>();
  private triggers: PendingTrigger[] = [];
  private timers = new Set<NodeJS.Timeout>();
  private faults: LinkFaults;
  private rng: number;
  private spikeUntil = 0;
  private spikeMs = 0;
  private refusing = false;
  private closed = false;
  private readonly t0 = performance.now();
  readonly highWater: number;
  readonly tap: FaultProxyOptions['tap'];
  readonly target: { host: string; port: number };
  /** Nothing is forwarded before this time (performance.now()). */
  stallUntil = 0;
  address = '';
  readonly stats: ProxyStats = {
    connections: 0,
    bytesForward: 0,
    bytesBackward: 0,
    cuts: 0,
    stalls: 0,
    retransmitStalls: 0,
    peakHeldBytes: 0,
    released: 0,
    lateMsSum: 0,
    lateMsMax: 0,
    events: [],
  };

  private constructor(o: FaultProxyOptions) {
    this.target = hostPort(o.target, 'target');
    checkFaults(o.faults ?? {});
    this.faults = { ...NO_FAULTS, ...o.faults };
    this.rng = (o.seed ?? 1) >>> 0 || 1;
    this.highWater = o.highWaterBytes ?? 4 << 20;
    this.tap = o.tap;
    this.server = createServer({ allowHalfOpen: true }, (s) => this.accept(s));
  }

  /** Starts a proxy listening on `listen` (default 127.0.0.1, any port) that relays to `target`. */
  static async start(o: FaultProxyOptions): Promise<FaultProxy> {
    const p = new FaultProxy(o);
    const { host, port } = hostPort(o.listen ?? '127.0.0.1:0', 'listen');
    await new Promise<void>((resolve, reject) => {
      p.server.once('error', reject);
      p.server.listen(port, host, () => resolve());
    });
    const a = p.server.address();
    if (!a || typeof a === 'string') throw new MigrationError('INTERNAL', 'fault proxy has no TCP address');
    p.address = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
    return p;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get current(): Readonly<LinkFaults> {
    return this.faults;
  }

  /** Changes the link's faults now; chunks already held keep their release times. */
  set(faults: Partial<LinkFaults>): void {
    checkFaults(faults);
    this.faults = { ...this.faults, ...faults };
  }

  /** Back to a clean link: no faults, no stall, new connections accepted. */
  heal(): void {
    this.faults = { ...NO_FAULTS };
    this.stallUntil = 0;
    this.spikeUntil = 0;
    this.refusing = false;
    for (const r of this.relays) for (const p of r.pipes) p.schedule();
  }

  /** Stops forwarding in both directions for `ms` (from now). */
  stall(ms: number): void {
    this.stats.stalls++;
    this.stallUntil = Math.max(this.stallUntil, performance.now() + ms);
    for (const r of this.relays) for (const p of r.pipes) p.schedule();
  }

  /** A delay spike: `ms` more one-way latency for what arrives in the next `forMs`. */
  spike(ms: number, forMs: number): void {
    this.spikeMs = ms;
    this.spikeUntil = performance.now() + forMs;
  }

  /**
   * Cuts the link: every relayed connection is destroyed on both sides. With `refuse`, new connections are cut
   * as they arrive until heal().
   */
  cut(refuse = false): void {
    this.stats.cuts++;
    this.refusing ||= refuse;
    for (const r of [...this.relays]) this.destroyRelay(r);
  }

  /** Schedules `action` at `trigger` (one shot). Time triggers count from now. */
  at(trigger: FaultTrigger, action: FaultAction): void {
    const label =
      'afterMs' in trigger
        ? `after ${trigger.afterMs} ms`
        : 'atByte' in trigger
          ? `at byte ${trigger.atByte}`
          : `at frame ${[trigger.atFrame]
              .flat()
              .map((c) => Command[c] ?? c)
              .join('|')} #${trigger.nth ?? 1}${
              trigger.after
                ? ` after ${Command[trigger.after.frame] ?? trigger.after.frame} #${trigger.after.nth ?? 1}`
                : ''
            }`;
    const t: PendingTrigger = { trigger, action, label, seen: 0, afterSeen: 0, fired: false };
    if ('afterMs' in trigger) {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        void this.fire(t, -1);
      }, trigger.afterMs);
      this.timers.add(timer);
      return;
    }
    this.triggers.push(t);
    // Byte triggers on connections already past that offset are not retroactive: they wait for the next one.
    if ('atByte' in trigger) {
      for (const r of this.relays) {
        const p = r.pipes[0]!;
        if (p.received > trigger.atByte && p.forwarded <= trigger.atByte)
          p.marks.push({ at: trigger.atByte, t });
      }
    }
  }

  /** Runs an action now (as if a trigger fired). */
  async apply(action: FaultAction): Promise<void> {
    await this.fire(
      { trigger: { afterMs: 0 }, action, label: 'command', seen: 0, afterSeen: 0, fired: false },
      -1,
    );
  }

  /** Fires a trigger's action once; `out` is the forward socket it fired on (where `inject` writes). */
  async fire(t: PendingTrigger, atByte: number, out?: Socket): Promise<void> {
    if (t.fired) return;
    t.fired = true;
    this.triggers = this.triggers.filter((x) => x !== t);
    const a = t.action;
    this.stats.events.push({
      atMs: Math.round(performance.now() - this.t0),
      action: a.kind,
      atByte,
      trigger: t.label,
    });
    switch (a.kind) {
      case 'cut':
        this.cut();
        break;
      case 'stall':
        this.stall(a.ms);
        break;
      case 'spike':
        this.spike(a.ms, a.forMs);
        break;
      case 'set':
        this.set(a.faults);
        break;
      case 'call':
        await a.fn();
        break;
      case 'inject':
        // Time triggers and commands have no stream position: splice into every open connection.
        for (const sock of out ? [out] : [...this.relays].map((r) => r.upstream)) {
          if (!sock.destroyed) sock.write(a.bytes);
        }
        break;
    }
  }

  // --- called by the pipes -------------------------------------------------------------------------------

  /** When a chunk of `bytes` arriving at `now` may leave. */
  releaseTime(now: number, bytes: number, pipe: Pipe): number {
    const f = this.faults;
    let t = now + f.delayMs;
    if (f.jitterMs > 0) t += (this.random() * 2 - 1) * f.jitterMs;
    if (now < this.spikeUntil) t += this.spikeMs;
    if (f.loss > 0) {
      const segments = Math.ceil(bytes / f.segmentBytes);
      if (this.random() < 1 - (1 - f.loss) ** segments) {
        t += f.rtoMs;
        this.stats.retransmitStalls++;
      }
    }
    t = pipe.rateSlot(Math.max(t, now), bytes, f.rateBytesPerSec);
    return pipe.inOrder(t);
  }

  frameSeen(pipe: Pipe, offset: number, command: number): void {
    for (const t of this.triggers) {
      if (!('atFrame' in t.trigger)) continue;
      const after = t.trigger.after;
      if (after && t.afterSeen < (after.nth ?? 1)) {
        if (command === after.frame) t.afterSeen++;
        continue;
      }
      const at = t.trigger.atFrame;
      if (Array.isArray(at) ? !at.includes(command) : at !== command) continue;
      if (++t.seen === (t.trigger.nth ?? 1)) pipe.marks.push({ at: offset, t });
    }
  }

  byteRange(pipe: Pipe, from: number, to: number): void {
    for (const t of this.triggers) {
      if ('atByte' in t.trigger && t.trigger.atByte >= from && t.trigger.atByte < to) {
        if (!pipe.marks.some((m) => m.t === t)) pipe.marks.push({ at: t.trigger.atByte, t });
      }
    }
  }

  countBytes(forward: boolean, n: number): void {
    if (forward) this.stats.bytesForward += n;
    else this.stats.bytesBackward += n;
  }

  noteLate(ms: number): void {
    this.stats.released++;
    this.stats.lateMsSum += ms;
    if (ms > this.stats.lateMsMax) this.stats.lateMsMax = ms;
  }

  noteHeld(n: number): void {
    if (n > this.stats.peakHeldBytes) this.stats.peakHeldBytes = n;
  }

  private random(): number {
    // xorshift32: jitter and loss draws reproducible from the seed.
    let x = this.rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rng = x >>> 0;
    return this.rng / 2 ** 32;
  }

  private accept(client: Socket): void {
    if (this.refusing || this.closed) {
      kill(client);
      return;
    }
    this.stats.connections++;
    // Half-open both ways: a FIN is passed on only after the bytes held before it.
    const upstream = tcpConnect({ host: this.target.host, port: this.target.port, allowHalfOpen: true });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const relay: Relay = { client, upstream, pipes: [] };
    relay.pipes.push(new Pipe(this, client, upstream, true), new Pipe(this, upstream, client, false));
    this.relays.add(relay);
    // Until the upstream connects, the forward pipe's writes are buffered by the socket: fine, it is bounded
    // by the pipe's high-water mark.
    const gone = () => this.destroyRelay(relay);
    client.on('error', gone);
    upstream.on('error', gone);
    // A clean close (FIN both ways) is passed on by the pipes; an error or reset takes the other side down too.
    const closed = (hadError: boolean) => {
      if (hadError) gone();
      else if (client.destroyed && upstream.destroyed) this.relays.delete(relay);
    };
    client.on('close', closed);
    upstream.on('close', closed);
  }

  private destroyRelay(r: Relay): void {
    this.relays.delete(r);
    for (const p of r.pipes) p.stop();
    kill(r.client);
    kill(r.upstream);
  }

  /** Closes the proxy: cuts every connection, cancels timers, stops listening. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const r of [...this.relays]) this.destroyRelay(r);
    await new Promise<void>((res) => this.server.close(() => res()));
  }
}

/** Drops a socket the way a failed link looks to the endpoint: an RST where Node can send one. */
function kill(s: Socket): void {
  if (s.destroyed) return;
  try {
    if (!s.connecting) s.resetAndDestroy();
    else s.destroy();
  } catch {
    s.destroy();
  }
}
