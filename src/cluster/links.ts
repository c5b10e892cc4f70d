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

/** The emulated link between any two hosts (one proxy hop on each migration's path). */
export interface ClusterLinkFaults {
  /** One-way latency added to every migration connection, both directions, ms. */
  delayMs: number;
  /** Uniform jitter ± this many ms on top of delayMs, at most delayMs (order is kept). */
  jitterMs: number;
  /** Probability that a segment is lost, 0..0.5: shown as a retransmission stall of one RTO. */
  loss: number;
}

const FLAG: Record<keyof ClusterLinkFaults, string> = {
  delayMs: '--link-delay',
  jitterMs: '--link-jitter',
  loss: '--link-loss',
};

export const clusterLinkSchema = z
  .object({
    delayMs: z.number().min(0, 'use 0 or more ms').max(10_000, 'use at most 10 s'),
    jitterMs: z.number().min(0, 'use 0 or more ms').max(10_000, 'use at most 10 s'),
    loss: z
      .number()
      .min(0, 'use a fraction from 0 to 0.5')
      .max(0.5, 'use a fraction from 0 to 0.5 (e.g. 0.001 for 0.1 %)'),
  })
  .strict()
  .refine((l) => l.jitterMs <= l.delayMs, {
    path: ['jitterMs'],
    message: 'use at most --link-delay (a chunk cannot leave before it arrived; order is kept)',
  });

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
  listenHost: string;
  faults: ClusterLinkFaults;
  seed: number;
}
export type LinkWorkerRequest = { kind: 'stats' } | { kind: 'close' };
export type LinkWorkerReply =
  | { kind: 'ready'; addresses: string[] }
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
    const data: LinkWorkerData = { targets: [...targets], listenHost, faults: f, seed };
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
    return new ClusterLinks(f, first.addresses, worker);
  }

  /** Where a source migrates to reach host `h` across the emulated link. */
  address(h: number): string {
    return this.addresses[h]!;
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
