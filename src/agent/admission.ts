/**
 * Resource accounting at the agent's door (docs/security.md, "Resource limits"): what an unauthenticated peer can
 * make the agent hold before it has proved anything. Every connection counts from accept until it closes; a
 * migration stream counts against --max-incoming from its first bytes; guest RAM and vCPU threads are reserved
 * against the agent's totals before anything is allocated; a peer address opens connections at a bounded rate.
 */
import type { Server } from 'node:http';
import { availableParallelism, totalmem } from 'node:os';
import { MigrationError, UsageError } from '../errors.js';
import { formatBytes } from '../units.js';

export interface AdmissionLimits {
  /** Concurrent incoming migration streams (from their first bytes until the connection ends). */
  maxIncoming: number;
  /** Concurrent connections of any kind (migration, control API, not yet identified), from accept to close. */
  maxConnections: number;
  /** Of those, from one peer address: one address cannot take every place and lock the others out. */
  maxConnectionsPerPeer: number;
  /** A connection that sends no byte (a TLS one: no complete handshake) within this is closed. */
  firstByteTimeoutMs: number;
  /** A migration stream whose HELLO (or RECOVER) is not complete within this is refused; also the HTTP request
   *  timeout (headers and body). */
  helloTimeoutMs: number;
  /** Total guest memory on this agent (RAM, plus VCPU_OVERHEAD_BYTES per vCPU): running guests plus incoming ones
   *  (reserved at HELLO). */
  maxRamTotalBytes: number;
  /** Total vCPU threads on this agent (running guests plus incoming ones). */
  maxVcpus: number;
  /** Bytes of frames being assembled across all incoming connections (a connection waits for room). */
  maxBufferedBytes: number;
  /** New connections per second per peer address (token bucket), and the burst it may open at once. */
  connectRate: number;
  connectBurst: number;
  /** Finished outgoing migrations kept for `GET /v1/migrations` (oldest settled ones are evicted). */
  historySize: number;
}

/** Guest RAM each vCPU needs at least: a guest may have one vCPU per MiB of RAM (a 256 KiB guest has one). */
export const RAM_PER_VCPU_BYTES = 1 << 20;
/**
 * Memory a vCPU thread costs beyond the guest's RAM (its heap and stack; a worker thread adds ~9 MiB of RSS here),
 * charged against --max-ram-total so that the total bounds what guests really cost.
 */
export const VCPU_OVERHEAD_BYTES = 8 << 20;

/** What a guest is charged against --max-ram-total: its RAM, what it brings (its trace), its vCPU threads. */
export function guestMemoryBytes(ramBytes: number, vcpus: number, extraBytes = 0): number {
  return ramBytes + extraBytes + vcpus * VCPU_OVERHEAD_BYTES;
}

const MiB = 1 << 20;

/** Defaults; `maxRamBytes` is the agent's --max-ram (the total is never below one largest guest). */
export function defaultAdmissionLimits(maxRamBytes: number): AdmissionLimits {
  return {
    maxIncoming: 4,
    maxConnections: 128,
    maxConnectionsPerPeer: 32,
    firstByteTimeoutMs: 10_000,
    helloTimeoutMs: 30_000,
    maxRamTotalBytes: Math.max(totalmem(), maxRamBytes),
    maxVcpus: Math.max(16, availableParallelism() * 8),
    maxBufferedBytes: 64 * MiB,
    connectRate: 50,
    connectBurst: 100,
    historySize: 100,
  };
}

/** Checks limits given programmatically (the CLI validates its flags the same way, naming the flag). */
export function checkAdmissionLimits(l: AdmissionLimits): void {
  const positive: [keyof AdmissionLimits, string][] = [
    ['maxIncoming', '--max-incoming'],
    ['maxConnections', '--max-connections'],
    ['maxConnectionsPerPeer', '--max-connections-per-peer'],
    ['maxVcpus', '--max-vcpus'],
    ['connectBurst', '--connect-burst'],
    ['historySize', '--history'],
  ];
  for (const [k, flag] of positive) {
    const v = l[k];
    if (!Number.isSafeInteger(v) || v < 1)
      throw new UsageError(`${flag}: ${v} is not a positive integer`, flag);
  }
  const sizes: [keyof AdmissionLimits, string, number][] = [
    ['maxRamTotalBytes', '--max-ram-total', 1],
    ['maxBufferedBytes', '--max-buffered', MiB],
    ['firstByteTimeoutMs', '--first-byte-timeout', 1],
    ['helloTimeoutMs', '--hello-timeout', 1],
    ['connectRate', '--connect-rate', Number.MIN_VALUE],
  ];
  for (const [k, flag, min] of sizes) {
    const v = l[k];
    if (!(typeof v === 'number' && Number.isFinite(v) && v >= min)) {
      throw new UsageError(`${flag}: ${v} is not accepted; it must be at least ${min}`, flag);
    }
  }
  if (l.maxConnections < l.maxIncoming) {
    throw new UsageError(
      `--max-connections (${l.maxConnections}) must be at least --max-incoming (${l.maxIncoming})`,
      '--max-connections',
    );
  }
}

/**
 * New connections per peer address: a token bucket each (`rate` per second, up to `burst`). Buckets that are full
 * again are forgotten, and the table is bounded, so many addresses cannot grow it without limit.
 */
export class PeerRate {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private static readonly MAX_PEERS = 4096;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes one token for `peer`; false = over its rate (refuse the connection). */
  take(peer: string): boolean {
    const t = this.now();
    let b = this.buckets.get(peer);
    if (b) {
      b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.rate);
      b.at = t;
    } else {
      if (this.buckets.size >= PeerRate.MAX_PEERS) this.prune(t);
      b = { tokens: this.burst, at: t };
      this.buckets.set(peer, b);
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Forgets buckets that have refilled; if none has, the oldest (a full table must still admit new peers). */
  private prune(t: number): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + ((t - b.at) / 1000) * this.rate >= this.burst) this.buckets.delete(k);
    }
    if (this.buckets.size >= PeerRate.MAX_PEERS) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
  }

  get size(): number {
    return this.buckets.size;
  }
}

/** RAM and vCPUs held for a guest that does not exist yet (being created, or arriving by migration). */
export interface Reservation {
  readonly ramBytes: number;
  readonly vcpus: number;
  release(): void;
}

/**
 * The agent's totals of guest RAM and vCPU threads. What exists is counted by `inUse` (the hosted guests); what is
 * about to exist by reservations taken before any allocation and released once the guest is hosted (or given up).
 */
export class ResourceBudget {
  private reserved = { ramBytes: 0, vcpus: 0 };

  constructor(
    private readonly limits: Pick<AdmissionLimits, 'maxRamTotalBytes' | 'maxVcpus'> & { maxRamBytes: number },
    private readonly inUse: () => { ramBytes: number; vcpus: number },
  ) {}

  /**
   * Reserves a guest's RAM (`extraBytes`: other memory it brings, e.g. its trace) and vCPUs, or throws
   * RESOURCE_LIMIT naming the limit. `who` says what asked ("the source announced", "this request asks for").
   */
  reserve(req: { ramBytes: number; vcpus: number; extraBytes?: number }, who: string): Reservation {
    const { maxRamBytes, maxRamTotalBytes, maxVcpus } = this.limits;
    const ram = guestMemoryBytes(req.ramBytes, req.vcpus, req.extraBytes);
    if (req.ramBytes > maxRamBytes) {
      throw new MigrationError(
        'RESOURCE_LIMIT',
        `${who} a guest of ${formatBytes(req.ramBytes)}; this agent accepts at most ${formatBytes(maxRamBytes)} per guest (--max-ram)`,
      );
    }
    const perRam = Math.max(1, Math.floor(req.ramBytes / RAM_PER_VCPU_BYTES));
    if (req.vcpus > perRam) {
      throw new MigrationError(
        'RESOURCE_LIMIT',
        `${who} ${req.vcpus} vCPUs for ${formatBytes(req.ramBytes)} of RAM; this agent allows one vCPU per ` +
          `${formatBytes(RAM_PER_VCPU_BYTES)} of guest RAM (at most ${perRam} here)`,
      );
    }
    const used = this.inUse();
    const ramUsed = used.ramBytes + this.reserved.ramBytes;
    if (ramUsed + ram > maxRamTotalBytes) {
      throw new MigrationError(
        'RESOURCE_LIMIT',
        `${who} ${formatBytes(ram)} of guest memory (RAM, and ${formatBytes(VCPU_OVERHEAD_BYTES)} per vCPU); ` +
          `this agent holds ${formatBytes(ramUsed)} of its ${formatBytes(maxRamTotalBytes)} (--max-ram-total): ` +
          'stop or migrate a guest away first',
      );
    }
    const vcpusUsed = used.vcpus + this.reserved.vcpus;
    if (vcpusUsed + req.vcpus > maxVcpus) {
      throw new MigrationError(
        'RESOURCE_LIMIT',
        `${who} ${req.vcpus} vCPUs; this agent runs ${vcpusUsed} of its ${maxVcpus} (--max-vcpus)`,
      );
    }
    this.reserved.ramBytes += ram;
    this.reserved.vcpus += req.vcpus;
    let held = true;
    return {
      ramBytes: ram,
      vcpus: req.vcpus,
      release: () => {
        if (!held) return;
        held = false;
        this.reserved.ramBytes -= ram;
        this.reserved.vcpus -= req.vcpus;
      },
    };
  }

  /** Totals for the status report. */
  usage(): { ramBytes: number; vcpus: number; reservedRamBytes: number; reservedVcpus: number } {
    const u = this.inUse();
    return {
      ramBytes: u.ramBytes,
      vcpus: u.vcpus,
      reservedRamBytes: this.reserved.ramBytes,
      reservedVcpus: this.reserved.vcpus,
    };
  }
}

/**
 * An HTTP server that is handed sockets (never listens) with its requests bounded in time: headers and body within
 * `ms`, else 408. Node enforces these timeouts only on a server that tracks its connections, which it starts on
 * 'listening'; so that event is emitted here.
 */
export function limitRequestTime(server: Server, ms: number): void {
  server.headersTimeout = ms;
  server.requestTimeout = ms;
  // Read when the tracking starts: how often expired requests are looked for.
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = Math.min(
    1000,
    ms,
  );
  server.emit('listening');
}
