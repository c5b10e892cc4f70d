/**
 * Latency and loss on the cluster's links (`--link-delay`, `--link-jitter`, `--link-loss`). netem is missing from
 * some kernels (the one livemig is developed on among them), so they are not put on the veth links with tc; instead
 * every host's incoming migration port is fronted by livemig's user-space fault proxy (src/faults/proxy.ts), and the
 * manager tells each source to migrate to the destination's proxy. The proxies run in the manager's process and
 * namespace, on a thread of their own (link-worker.ts): with `--netns` they listen on the bridge's address, which
 * every host's namespace reaches, so a migration still crosses the source's shaped uplink and the destination's
 * shaped downlink (bandwidth stays with tc); without it they listen on the loopback.
 *
 * What the endpoints see: every chunk held for the one-way delay (± jitter, order kept, both directions), so the
 * round trip grows by twice the delay; a lost segment as TCP shows it to the stream, a retransmission stall — the
 * chunk and everything behind it held one RTO (200 ms) with the probability that one of its segments was lost.
 * The manager's API calls to the agents do not cross the proxies (the control plane is not delayed).
 */
import type { Worker } from 'node:worker_threads';
import { z } from 'zod';
import { MigrationError, UsageError } from '../errors.js';
import { startWorkerNextTo } from '../guest/index.js';

/** A pair of hosts whose link has its own one-way delay (both directions). */
export interface LinkPair {
  a: number;
  b: number;
  delayMs: number;
}

/** The emulated link between any two hosts (one proxy hop on each migration's path). */
export interface ClusterLinkFaults {
  /** One-way latency added to every migration connection, both directions, ms (pairs not in `pairs`). */
  delayMs: number;
  /** Pairs of hosts with a delay of their own (`--link-delay 1ms,0-3=20ms`): a per-pair matrix, symmetric. */
  pairs?: LinkPair[];
  /** Uniform jitter ± this many ms on top of delayMs, at most delayMs (order is kept). */
  jitterMs: number;
  /** Probability that a segment is lost, 0..0.5: shown as a retransmission stall of one RTO. */
  loss: number;
}

const FLAG: Record<keyof ClusterLinkFaults, string> = {
  delayMs: '--link-delay',
  pairs: '--link-delay',
  jitterMs: '--link-jitter',
  loss: '--link-loss',
};

const delaySchema = z.number().min(0, 'use 0 or more ms').max(10_000, 'use at most 10 s');
const pairSchema = z
  .object({
    a: z.number().int().min(0, 'a host index is 0 or more'),
    b: z.number().int().min(0, 'a host index is 0 or more'),
    delayMs: delaySchema,
  })
  .strict()
  .refine((p) => p.a !== p.b, { message: 'a pair is two different hosts (e.g. 0-3=20ms)' });

export const clusterLinkSchema = z
  .object({
    delayMs: delaySchema,
    pairs: z
      .array(pairSchema)
      .max(4096)
      .refine((ps) => new Set(ps.map((p) => pairKey(p.a, p.b))).size === ps.length, {
        message: 'each pair at most once (A-B and B-A are the same link)',
      })
      .optional(),
    jitterMs: z.number().min(0, 'use 0 or more ms').max(10_000, 'use at most 10 s'),
    loss: z
      .number()
      .min(0, 'use a fraction from 0 to 0.5')
      .max(0.5, 'use a fraction from 0 to 0.5 (e.g. 0.001 for 0.1 %)'),
  })
  .strict()
  .refine((l) => l.jitterMs <= Math.min(l.delayMs, ...(l.pairs ?? []).map((p) => p.delayMs)), {
    path: ['jitterMs'],
    message:
      'use at most --link-delay, on every pair (a chunk cannot leave before it arrived; order is kept)',
  });

/** One key per unordered pair. */
function pairKey(a: number, b: number): string {
  return a < b ? `${a}-${b}` : `${b}-${a}`;
}

/** The one-way delay between hosts `from` and `to`, ms. */
export function linkDelayBetween(f: ClusterLinkFaults, from: number, to: number): number {
  return f.pairs?.find((p) => pairKey(p.a, p.b) === pairKey(from, to))?.delayMs ?? f.delayMs;
}

/**
 * `--link-delay` as given: one duration for every pair (`5ms`), or a per-pair list with an optional default first,
 * `[DEFAULT,]A-B=DURATION,…` (`1ms,0-3=20ms,1-2=8ms`: hosts 0 and 3 are 20 ms apart one way, 1 and 2 8 ms, every other
 * pair 1 ms; no default: 0). `duration` parses one duration (the CLI's, which names the flag in its errors).
 */
export function parseLinkDelaySpec(
  value: string,
  hosts: number,
  duration: (text: string) => number,
): { delayMs: number; pairs?: LinkPair[] } {
  const flag = '--link-delay';
  const items = value.split(',').map((x) => x.trim());
  let delayMs: number | undefined;
  const pairs: LinkPair[] = [];
  for (const item of items) {
    const m = /^(\d+)-(\d+)=(.+)$/.exec(item);
    if (!m) {
      if (delayMs !== undefined || pairs.length > 0 || item === '')
        throw new UsageError(
          `${flag}: "${item}" is not A-B=DURATION; give one duration, or [DEFAULT,]A-B=DURATION,… (e.g. 1ms,0-3=20ms)`,
          flag,
        );
      delayMs = duration(item);
      continue;
    }
    const a = Number(m[1]);
    const b = Number(m[2]);
    if (a >= hosts || b >= hosts)
      throw new UsageError(
        `${flag}: "${item}": no host ${Math.max(a, b)} (hosts are 0 to ${hosts - 1})`,
        flag,
      );
    pairs.push({ a, b, delayMs: duration(m[3]!) });
  }
  return pairs.length > 0 ? { delayMs: delayMs ?? 0, pairs } : { delayMs: delayMs ?? 0 };
}

/** Checks link faults (from flags or a library caller); a UsageError naming the flag, or the faults. */
export function parseClusterLink(value: unknown): ClusterLinkFaults {
  const r = clusterLinkSchema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = issue.path[0] as keyof ClusterLinkFaults | undefined;
  const flag = (field && FLAG[field]) ?? '--link-delay';
  throw new UsageError(`${flag}: ${issue.message}`, flag);
}

export interface LinkStats {
  /** Connections relayed (a migration opens one or more). */
  connections: number;
  bytesForward: number;
  bytesBackward: number;
  /** Loss events: chunks held for a retransmission timeout. */
  retransmitStalls: number;
  /**
   * What the emulation itself adds to the delay: how late the proxy thread woke for a chunk that was due (its timers
   * and the machine's scheduling), mean and worst, ms. A real link has none of it.
   */
  lateMsMean: number;
  lateMsMax: number;
  /** The proxy thread's nice value when it could be raised (root), else null (it runs at the manager's). */
  nice: number | null;
}

/** What link-worker.ts is started with, and the messages both ways. */
export interface LinkWorkerData {
  targets: string[];
  /** Ordered pairs (from, to) with a proxy of their own, and its delay. */
  pairs: { from: number; to: number; delayMs: number }[];
  listenHost: string;
  faults: ClusterLinkFaults;
  seed: number;
}
export type LinkWorkerRequest = { kind: 'stats' } | { kind: 'close' };
export type LinkWorkerReply =
  | { kind: 'ready'; addresses: string[]; pairAddresses: string[] }
  | { kind: 'error'; message: string }
  | { kind: 'stats'; stats: LinkStats }
  | { kind: 'closed'; stats: LinkStats };

/**
 * One fault proxy per host, in front of its agent's migration port, all on a thread of their own (link-worker.ts):
 * the manager's work must not add to the links' delay.
 */
export class ClusterLinks {
  private last: LinkStats = {
    connections: 0,
    bytesForward: 0,
    bytesBackward: 0,
    retransmitStalls: 0,
    lateMsMean: 0,
    lateMsMax: 0,
    nice: null,
  };
  private closing: Promise<LinkStats> | undefined;

  private constructor(
    readonly faults: ClusterLinkFaults,
    private readonly addresses: string[],
    /** "from>to" → the proxy of a pair with a delay of its own. */
    private readonly pairAddresses: Map<string, string>,
    private readonly worker: Worker,
  ) {
    // A thread that fails ends its proxies: the migrations through them fail (CONNECTION_LOST) and are reported as
    // such; the manager itself must not die of it.
    worker.on('error', () => {});
  }

  /**
   * Starts a proxy for each agent address in `targets`, listening on `listenHost` (the bridge's address with
   * `--netns`, else 127.0.0.1) on a free port. Jitter and loss draws are seeded per host from `seed`.
   */
  static async start(
    targets: readonly string[],
    listenHost: string,
    faults: ClusterLinkFaults,
    seed = 1,
  ): Promise<ClusterLinks> {
    const f = parseClusterLink(faults);
    for (const p of f.pairs ?? []) {
      if (p.a >= targets.length || p.b >= targets.length)
        throw new UsageError(
          `--link-delay: pair ${p.a}-${p.b}: no host ${Math.max(p.a, p.b)} (hosts are 0 to ${targets.length - 1})`,
          '--link-delay',
        );
    }
    // Every destination's proxy carries the default delay; a pair of its own gets a proxy per direction.
    const pairs = (f.pairs ?? []).flatMap((p) => [
      { from: p.a, to: p.b, delayMs: p.delayMs },
      { from: p.b, to: p.a, delayMs: p.delayMs },
    ]);
    const data: LinkWorkerData = { targets: [...targets], pairs, listenHost, faults: f, seed };
    const worker = startWorkerNextTo(import.meta.url, 'link-worker', { workerData: data });
    let off = (): void => {};
    const first = await new Promise<LinkWorkerReply>((resolve, reject) => {
      const onExit = (code: number): void =>
        reject(new MigrationError('INTERNAL', `link proxy thread exited (${code})`));
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', onExit);
      // Only these: removeAllListeners would also take off the worker's own (which ref its message port).
      off = () => {
        worker.off('message', resolve);
        worker.off('error', reject);
        worker.off('exit', onExit);
      };
    })
      .catch(async (err: unknown) => {
        await worker.terminate();
        throw err;
      })
      .finally(() => off());
    if (first.kind !== 'ready') {
      await worker.terminate();
      const why = first.kind === 'error' ? first.message : first.kind;
      throw new MigrationError('INTERNAL', `cannot start the link proxies on ${listenHost} (${why})`);
    }
    const byPair = new Map(pairs.map((p, i) => [`${p.from}>${p.to}`, first.pairAddresses[i]!]));
    return new ClusterLinks(f, first.addresses, byPair, worker);
  }

  /**
   * Where a source migrates to reach host `h` across the emulated link: from host `from`, the pair's own proxy if
   * that pair has a delay of its own, else `h`'s (the default delay).
   */
  address(h: number, from?: number): string {
    return (from === undefined ? undefined : this.pairAddresses.get(`${from}>${h}`)) ?? this.addresses[h]!;
  }

  private ask(request: LinkWorkerRequest, answer: 'stats' | 'closed'): Promise<LinkStats> {
    return new Promise<LinkStats>((resolve) => {
      const onMessage = (m: LinkWorkerReply): void => {
        if (m.kind !== answer) return;
        done();
        this.last = m.stats;
        resolve(m.stats);
      };
      // A thread that died answers with what it last said.
      const onExit = (): void => {
        done();
        resolve(this.last);
      };
      const done = (): void => {
        this.worker.off('message', onMessage);
        this.worker.off('exit', onExit);
      };
      this.worker.on('message', onMessage);
      this.worker.once('exit', onExit);
      this.worker.postMessage(request);
    });
  }

  /** What the proxies did: connections relayed, bytes each way, chunks held for an RTO (loss events). */
  stats(): Promise<LinkStats> {
    return this.closing ?? this.ask({ kind: 'stats' }, 'stats');
  }

  /** Cuts what is still relayed, stops the proxies and their thread; the final figures. Idempotent. */
  close(): Promise<LinkStats> {
    this.closing ??= this.ask({ kind: 'close' }, 'closed').then(async (s) => {
      await this.worker.terminate();
      return s;
    });
    return this.closing;
  }
}
