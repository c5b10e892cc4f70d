import { describe, expect, it } from 'vitest';
import { Command } from '../migration/protocol.js';
import { allCells, cellId, expected, FAULTS, phasesOf, phaseTrigger } from './matrix.js';

describe('fault matrix plan', () => {
  it('covers every strategy × its phases × every fault, once', () => {
    const cells = allCells();
    const phases = 4 + 3 + 3 + 5;
    expect(cells).toHaveLength(phases * FAULTS.length);
    expect(new Set(cells.map(cellId)).size).toBe(cells.length);
    expect(phasesOf('postcopy')).toContain('postcopy');
    expect(phasesOf('precopy')).not.toContain('postcopy');
  });

  it('expects completion for faults that only slow a migration, a precise code for the rest', () => {
    for (const c of allCells()) {
      const e = expected(c);
      if (['loss', 'delay-spike', 'stall', 'stop-source'].includes(c.fault)) {
        expect(e.status).toBe('completed');
      } else if (c.phase === 'postcopy' && ['stop-destination', 'link-cut'].includes(c.fault)) {
        // After GO a SIGSTOPped destination resumes, and a cut link is repaired by post-copy recovery.
        expect(e.status).toBe('completed');
      } else {
        expect(e.status).toBe('failed');
        expect(e.code).toMatch(/^[A-Z_]+$/);
      }
      // Only a host killed after GO leaves the guest split beyond repair.
      expect(e.needsRecovery).toBe(
        c.phase === 'postcopy' && ['kill-source', 'kill-destination'].includes(c.fault),
      );
    }
  });

  it('injects switch-over faults before the vCPU state and post-copy faults after GO', () => {
    expect(phaseTrigger('switchover')).toEqual({ atFrame: Command.VCPU_STATE });
    expect(phaseTrigger('postcopy')).toMatchObject({
      atFrame: [Command.PAGES, Command.POSTCOPY_END],
      after: { frame: Command.GO },
    });
  });
});
