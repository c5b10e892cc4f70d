import { describe, expect, it } from 'vitest';
import { parsePolicy } from './config.js';
import { medianOf, runJobs, type SimJob } from './run.js';

describe('job runner', () => {
  it('gives the same results on worker threads as in this thread, in submission order', async () => {
    const jobs: SimJob[] = ['thr-mmt', 'mad-mc', 'lr-rs', 'dvfs'].map((p) => ({
      workload: { synthetic: { vms: 80, seed: 5 } },
      hosts: 40,
      mode: 'cloudsim',
      policy: parsePolicy(p),
      seed: 9,
      series: false,
    }));
    const local = await runJobs(jobs, { jobs: 1 });
    let calls = 0;
    const threaded = await runJobs(jobs, { jobs: 2, onDone: () => calls++ });
    expect(calls).toBe(4);
    expect(threaded.map((r) => r.policy)).toEqual(['THR-MMT-0.8', 'MAD-MC-2.5', 'LR-RS-1.2', 'DVFS']);
    expect(threaded.map((r) => [r.energyKWh, r.migrations, r.slav])).toEqual(
      local.map((r) => [r.energyKWh, r.migrations, r.slav]),
    );
    expect(local[0]!.migrations).toBeGreaterThan(0);
  });

  it('sampled placement (huge runs) is deterministic for a seed', async () => {
    const job: SimJob = {
      workload: { synthetic: { vms: 400, seed: 2 } },
      hosts: 200,
      mode: 'livemig',
      policy: parsePolicy('lr-mmt'),
      placementCandidates: 8,
      seed: 4,
      series: false,
    };
    const [a, b] = await runJobs([job, job]);
    expect(a!.energyKWh).toBe(b!.energyKWh);
    expect(a!.migrations).toBe(b!.migrations);
  });

  it('medians', () => {
    expect(medianOf([3, 1, 2])).toBe(2);
    expect(medianOf([4, 1, 3, 2])).toBe(2.5);
  });
});
