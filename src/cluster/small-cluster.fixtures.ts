/** The small cluster the agreement tests simulate: 4 hosts, 8 VMs of a PlanetLab day under THR-MMT-0.8. */
import { loadPlanetlabDay } from '../sim/index.js';
import { clusterSimOptions } from './agreement.js';
import { clusterWorkload } from './workload.js';

/** The first `intervals` 5-minute intervals of `day`, with the cluster's default concurrency limits. */
export async function smallCluster(day: string, intervals: number) {
  const { workload } = clusterWorkload(await loadPlanetlabDay(day), 8, 0, intervals * 300);
  const options = clusterSimOptions({
    policy: 'thr-mmt-0.8',
    hosts: 4,
    seed: 42,
    interval: 300,
    migrationLimits: { perHost: 2, perCluster: 5 },
  });
  return { workload, options };
}
