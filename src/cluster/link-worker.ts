/**
 * The cluster's link proxies run on this thread (started by links.ts), so that the manager's own work — sampling the
 * agents, planning, the dashboard — never holds a chunk back: on the manager's thread its event-loop stalls were
 * added to the links' delay (tens of ms on a loaded machine). Messages: the parent sends `stats` and `close`; this
 * thread answers `ready` (or `error`) once, then `stats` and `closed`.
 */
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
// The proxy module alone, not the faults folder's index: the fault matrix behind it has no business on this thread.
import { FaultProxy } from '../faults/proxy.js';
import { kernelThreadId } from '../thread-id.js';
import type { LinkWorkerData, LinkWorkerReply, LinkWorkerRequest } from './links.js';

const port = parentPort!;
const data = workerData as LinkWorkerData;
let proxies: FaultProxy[] = [];

/**
 * A chunk is due when its delay is over; every millisecond this thread wakes late for it is added to the link's delay
 * (measured at load 5-9: 0.2-16 ms per hop, four hops in a pre-copy switch-over). Where it may (root: CAP_SYS_NICE),
 * the thread therefore runs at a higher priority than the guests and agents it shares the cores with, as a link
 * would not queue behind them; elsewhere it stays at the manager's and the report shows the lateness either way.
 */
const NICE = -10;
function raisePriority(): number | null {
  const tid = kernelThreadId();
  if (tid === null) return null;
  try {
    setPriority(tid, NICE);
    return NICE;
  } catch {
    return null;
  }
}
const nice = raisePriority();

const stats = (): Extract<LinkWorkerReply, { kind: 'stats' }>['stats'] => {
  const sum = (
    k: 'connections' | 'bytesForward' | 'bytesBackward' | 'retransmitStalls' | 'released' | 'lateMsSum',
  ): number => proxies.reduce((a, p) => a + p.stats[k], 0);
  const released = sum('released');
  return {
    connections: sum('connections'),
    bytesForward: sum('bytesForward'),
    bytesBackward: sum('bytesBackward'),
    retransmitStalls: sum('retransmitStalls'),
    lateMsMean: released > 0 ? sum('lateMsSum') / released : 0,
    lateMsMax: proxies.reduce((a, p) => Math.max(a, p.stats.lateMsMax), 0),
    nice,
  };
};

const reply = (m: LinkWorkerReply): void => port.postMessage(m);

port.on('message', (m: LinkWorkerRequest) => {
  if (m.kind === 'stats') reply({ kind: 'stats', stats: stats() });
  else
    void Promise.all(proxies.map((p) => p.close())).then(() => {
      reply({ kind: 'closed', stats: stats() });
      port.close();
    });
});

// One proxy per destination (the default delay), then one per ordered pair with a delay of its own.
const specs = [
  ...data.targets.map((target, h) => ({
    target,
    delayMs: data.faults.delayMs,
    seed: data.seed * 1000 + h + 1,
  })),
  ...data.pairs.map((p) => ({
    target: data.targets[p.to]!,
    delayMs: p.delayMs,
    seed: data.seed * 1000 + 100 * (p.from + 1) + p.to + 1,
  })),
];
const started = await Promise.allSettled(
  specs.map((s) =>
    FaultProxy.start({
      target: s.target,
      listen: `${data.listenHost}:0`,
      faults: { delayMs: s.delayMs, jitterMs: data.faults.jitterMs, loss: data.faults.loss },
      seed: s.seed,
    }),
  ),
);
proxies = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
if (failed) {
  await Promise.all(proxies.map((p) => p.close()));
  proxies = [];
  reply({ kind: 'error', message: (failed.reason as Error).message });
} else {
  const addresses = proxies.map((p) => p.address);
  reply({
    kind: 'ready',
    addresses: addresses.slice(0, data.targets.length),
    pairAddresses: addresses.slice(data.targets.length),
  });
}
