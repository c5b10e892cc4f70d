/**
 * A representative slice of the fault matrix (the whole matrix: `npm run faults`, docs/reliability.md), one cell
 * per kind of outcome — a link cut mid-round, loss that only slows, a host killed at switch-over, a SIGSTOPped
 * destination caught by --timeout, and post-copy after GO (a link cut that post-copy recovery repairs; a SIGSTOP
 * that post-copy survives). Each cell checks the guest's single holder, the oracle, the error code and a retry.
 */
import { describe, expect, it } from 'vitest';
import { type Cell, cellId, runCell } from '../src/faults/index.js';

const cells: Cell[] = [
  { strategy: 'precopy', phase: 'late-round', fault: 'link-cut' },
  { strategy: 'hybrid', phase: 'early-round', fault: 'loss' },
  { strategy: 'cold', phase: 'switchover', fault: 'kill-source' },
  { strategy: 'precopy', phase: 'switchover', fault: 'stop-destination' },
  { strategy: 'postcopy', phase: 'postcopy', fault: 'link-cut' },
  { strategy: 'postcopy', phase: 'postcopy', fault: 'stop-destination' },
];

describe('fault matrix (representative cells)', () => {
  it.each(cells.map((c) => [cellId(c), c] as const))('%s', async (_id, c) => {
    const r = await runCell(c, { timeoutMs: 5000, pauseMs: 1000 });
    expect(r.injected).toBe(true);
    expect(r.problems).toEqual([]);
    // The outcome the matrix expects, spelled out so a change of behaviour shows here.
    if (r.expected.status === 'completed' || r.recovered) expect(r.status).toBe('completed');
    else if (r.notes.length === 0) expect(r.code ?? r.destinationCode).toBe(r.expected.code);
    if (r.recovered) {
      // Post-copy recovery reconnected through the healed link and finished the migration.
      expect(r.holder).toBe('destination');
      expect(r.oracle).toBe(true);
    } else if (r.expected.needsRecovery) {
      expect(r.holder).not.toBe('both');
      expect(r.sourceGuest).not.toBe('running');
    } else {
      expect(r.holder).toBe(r.expected.holder);
      if (r.holder !== 'none') expect(r.oracle).toBe(true);
      if (r.status !== 'completed') {
        expect(r.retry).toBe('completed');
        expect(r.retryOracle).toBe(true);
      }
    }
  });
});
