import { describe, expect, it } from 'vitest';
import { parsePolicy, planetlabDatacenter } from '../config.js';
import { syntheticWorkload } from '../workload.js';
import { simulate } from './index.js';

describe('PABFD placement', () => {
  it('prices a host whose tentative demand sum rounds to just below 0 as idle (livemig kept zero-demand VMs)', () => {
    // Undoing a failed drain subtracts the placed VMs' demands again; on a host holding only zero-demand VMs the
    // sum can come out at −1e-17, which the power model rejects as a utilisation outside [0, 1]. (Seed 4: it does
    // with MU choosing by utilisation; seeds 13 and 37 too.)
    const r = simulate(syntheticWorkload({ vms: 150, seed: 4 }), {
      mode: 'livemig',
      policy: parsePolicy('lr-mu'),
      datacenter: planetlabDatacenter(75),
      series: false,
    });
    expect(r.energyKWh).toBeGreaterThan(0);
    expect(r.migrations).toBeGreaterThan(0);
  });
});
