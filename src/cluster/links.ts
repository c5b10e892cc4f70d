/**
 * Latency and loss on the cluster's links (`--link-delay`, `--link-jitter`, `--link-loss`). This kernel has no netem,
 * so they cannot be put on the veth links with tc; instead every host's incoming migration port is fronted by
 * livemig's user-space fault proxy (src/faults/proxy.ts), and the manager tells each source to migrate to the
 * destination's proxy. The proxies run in the manager's process and namespace: with `--netns` they listen on the
 * bridge's address, which every host's namespace reaches, so a migration still crosses the source's shaped uplink
 * and the destination's shaped downlink (bandwidth stays with tc); without it they listen on the loopback.
 *
 * What the endpoints see: every chunk held for the one-way delay (± jitter, order kept, both directions), so the
 * round trip grows by twice the delay; a lost segment as TCP shows it to the stream, a retransmission stall — the
 * chunk and everything behind it held one RTO (200 ms) with the probability that one of its segments was lost.
 * The manager's API calls to the agents do not cross the proxies (the control plane is not delayed).
 */
import { z } from 'zod';
import { UsageError } from '../errors.js';
import { FaultProxy } from '../faults/index.js';

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

/** One fault proxy per host, in front of its agent's migration port. */
export class ClusterLinks {
  private constructor(
    readonly faults: ClusterLinkFaults,
    private readonly proxies: FaultProxy[],
  ) {}

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
    const started = await Promise.allSettled(
      targets.map((target, h) =>
        FaultProxy.start({
          target,
          listen: `${listenHost}:0`,
          faults: { delayMs: f.delayMs, jitterMs: f.jitterMs, loss: f.loss },
          seed: seed * 1000 + h + 1,
        }),
      ),
    );
    const proxies = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) {
      await Promise.all(proxies.map((p) => p.close()));
      throw failed.reason;
    }
    return new ClusterLinks(f, proxies);
  }

  /** Where a source migrates to reach host `h` across the emulated link. */
  address(h: number): string {
    return this.proxies[h]!.address;
  }

  /** Host `h`'s proxy itself: to schedule a fault on that link (a stall, a spike, a cut) in a drill or a test. */
  proxy(h: number): FaultProxy {
    return this.proxies[h]!;
  }

  /** What the proxies did: connections relayed, bytes each way, chunks held for an RTO (loss events). */
  stats(): { connections: number; bytesForward: number; bytesBackward: number; retransmitStalls: number } {
    const sum = (k: 'connections' | 'bytesForward' | 'bytesBackward' | 'retransmitStalls'): number =>
      this.proxies.reduce((a, p) => a + p.stats[k], 0);
    return {
      connections: sum('connections'),
      bytesForward: sum('bytesForward'),
      bytesBackward: sum('bytesBackward'),
      retransmitStalls: sum('retransmitStalls'),
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.proxies.map((p) => p.close()));
  }
}
