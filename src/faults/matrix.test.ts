import { describe, expect, it } from 'vitest';
import { Command } from '../migration/protocol/index.js';
import { allCells, type Cell, cellId, expected, FAULTS, phasesOf, phaseTrigger } from './matrix.js';

describe('fault matrix plan', () => {
  it('covers every strategy × its phases × every fault, once', () => {
    const cells = allCells();
    const phases = 5 + 4 + 4 + 6; // precopy, cold, postcopy, hybrid (each with 'go')
    expect(cells).toHaveLength(phases * FAULTS.length);
    expect(new Set(cells.map(cellId)).size).toBe(cells.length);
    expect(phasesOf('postcopy')).toContain('postcopy');
    expect(phasesOf('precopy')).not.toContain('postcopy');
  });

  it('expects completion for faults that only slow a migration, a precise code for the rest', () => {
    for (const c of allCells()) {
      const e = expected(c);
      if (c.phase === 'go') continue; // below
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

  it('at GO: one running guest, or a report of where it waits paused', () => {
    for (const c of allCells().filter((x) => x.phase === 'go')) {
      const e = expected(c);
      const partial = c.strategy === 'postcopy' || c.strategy === 'hybrid';
      // Never a guest nowhere without a report: either a holder, or a report that says where it waits.
      expect(e.holder !== 'none' || e.pausedOn !== undefined).toBe(true);
      if (c.fault === 'kill-destination')
        expect(e).toMatchObject({ code: 'OWNER_UNKNOWN', pausedOn: 'source' });
      if (c.fault === 'kill-source') expect(e.pausedOn).toBe('destination');
      // A complete guest held after a stall or a cut is handed over by RECONCILE; a partial one goes back.
      if (c.fault === 'stall' || c.fault === 'link-cut') {
        expect(e.holder).toBe(partial ? 'source' : 'destination');
      }
    }
  });

  it('pre-copy at switch-over, GO with the digest (off by default): a dead or hung destination is settled as at GO', () => {
    const at = (fault: Cell['fault'], goWithDigest = true) =>
      expected({ strategy: 'precopy', phase: 'switchover', fault }, goWithDigest);
    // Handed over with the digest: nobody answers RECONCILE, the report says the guest waits paused on the source.
    expect(at('kill-destination')).toMatchObject({ code: 'OWNER_UNKNOWN', pausedOn: 'source' });
    expect(at('stop-destination')).toMatchObject({ code: 'OWNER_UNKNOWN', pausedOn: 'source' });
    // GO after READY (goWithDigest: false, the default): the source is still authoritative there and resumes the guest.
    expect(expected({ strategy: 'precopy', phase: 'switchover', fault: 'kill-destination' })).toEqual(
      at('kill-destination', false),
    );
    expect(at('kill-destination', false)).toMatchObject({ code: 'CONNECTION_LOST', holder: 'source' });
    expect(at('kill-destination', false).pausedOn).toBeUndefined();
    expect(at('stop-destination', false)).toMatchObject({ code: 'TIMEOUT', holder: 'source' });
    // Unchanged: a cut link (the destination never verified: RECONCILE says so), cold (GO follows every page).
    expect(at('link-cut')).toEqual(at('link-cut', false));
    expect(expected({ strategy: 'cold', phase: 'switchover', fault: 'kill-destination' })).toMatchObject({
      code: 'CONNECTION_LOST',
      holder: 'source',
    });
    // Never a guest nowhere without a report.
    for (const f of FAULTS) {
      const e = at(f);
      expect(e.holder !== 'none' || e.pausedOn !== undefined || e.code !== undefined).toBe(true);
    }
  });

  it('injects switch-over faults before the vCPU state and post-copy faults after GO', () => {
    expect(phaseTrigger('switchover')).toEqual({ atFrame: Command.VCPU_STATE });
    expect(phaseTrigger('go')).toEqual({ atFrame: Command.GO });
    expect(phaseTrigger('postcopy')).toMatchObject({
      atFrame: [Command.PAGES, Command.POSTCOPY_END],
      after: { frame: Command.GO },
    });
  });
});
