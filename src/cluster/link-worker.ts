/**
 * The cluster's link proxies run on this thread (started by links.ts), so that the manager's own work — sampling the
 * agents, planning, the dashboard — never holds a chunk back: on the manager's thread its event-loop stalls were
 * added to the links' delay (tens of ms on a loaded machine). Messages: the parent sends `stats` and `close`; this
 * thread answers `ready` (or `error`) once, then `stats` and `closed`.
 */
import { parentPort, workerData } from 'node:worker_threads';
// The proxy module alone, not the faults folder's index: the fault matrix behind it has no business on this thread.
import { FaultProxy } from '../faults/proxy.js';
import type { LinkWorkerData, LinkWorkerReply, LinkWorkerRequest } from './links.js';

const port = parentPort!;
const data = workerData as LinkWorkerData;
let proxies: FaultProxy[] = [];

const stats = (): Extract<LinkWorkerReply, { kind: 'stats' }>['stats'] => {
  const sum = (k: 'connections' | 'bytesForward' | 'bytesBackward' | 'retransmitStalls'): number =>
    proxies.reduce((a, p) => a + p.stats[k], 0);
  return {
    connections: sum('connections'),
    bytesForward: sum('bytesForward'),
    bytesBackward: sum('bytesBackward'),
    retransmitStalls: sum('retransmitStalls'),
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

const started = await Promise.allSettled(
  data.targets.map((target, h) =>
    FaultProxy.start({
      target,
      listen: `${data.listenHost}:0`,
      faults: { delayMs: data.faults.delayMs, jitterMs: data.faults.jitterMs, loss: data.faults.loss },
      seed: data.seed * 1000 + h + 1,
    }),
  ),
);
proxies = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
if (failed) {
  await Promise.all(proxies.map((p) => p.close()));
  proxies = [];
  reply({ kind: 'error', message: (failed.reason as Error).message });
} else reply({ kind: 'ready', addresses: proxies.map((p) => p.address) });
