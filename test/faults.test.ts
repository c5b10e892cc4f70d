/**
 * A representative slice of the fault matrix (the whole matrix: `npm run faults`, docs/reliability.md), one cell
 * per kind of outcome — a link cut mid-round, loss that only slows, a host killed at switch-over, a SIGSTOPped
 * destination caught by --timeout, and post-copy after GO (a link cut that post-copy recovery repairs; a SIGSTOP
 * that post-copy survives). Each cell checks the guest's single holder, the oracle, the error code and a retry.
 */
import { describe, it, vi } from 'vitest';
import { type Cell, cellId, runCell } from '../src/faults/index.js';

// Each cell has agents, a proxy and a guest of its own, and spends most of its time waiting out the timeouts it
// tests (handover, reconcile, --timeout): three cells at a time, the outcomes settled by frames and timeouts, not by
// how fast the machine is (the matrix's alternatives cover the races a loaded host can tip).
vi.setConfig({ maxConcurrency: 3 });

const cells: Cell[] = [
  { strategy: 'precopy', phase: 'late-round', fault: 'link-cut' },
  { strategy: 'hybrid', phase: 'early-round', fault: 'loss' },
  { strategy: 'cold', phase: 'switchover', fault: 'kill-source' },
  { strategy: 'precopy', phase: 'switchover', fault: 'stop-destination' },
  { strategy: 'postcopy', phase: 'postcopy', fault: 'link-cut' },
  { strategy: 'postcopy', phase: 'postcopy', fault: 'stop-destination' },
];

/**
 * Faults after GO (docs/protocol.md, "Who owns the guest after GO"), each once at small size with short timeouts
 * (`npm run faults -- --only /go/ --repeat N` runs them all, repeatedly): GO stalled past both sides' handover
 * timeout, GO lost with a killed destination or a killed source, a source SIGSTOPped across the switch-over for
 * longer than the destination waits for GO, and post-copy's GO cut. Each ends with the guest running on exactly one
 * host, or a report saying where it waits paused — which the cell then follows, as an operator would.
 */
const afterGo: Cell[] = [
  { strategy: 'precopy', phase: 'go', fault: 'stall' },
  { strategy: 'precopy', phase: 'go', fault: 'kill-destination' },
  { strategy: 'cold', phase: 'go', fault: 'kill-source' },
  { strategy: 'precopy', phase: 'switchover', fault: 'stop-source' },
  { strategy: 'precopy', phase: 'go', fault: 'stop-destination' },
  { strategy: 'postcopy', phase: 'go', fault: 'link-cut' },
];

describe.concurrent('fault matrix (representative cells)', () => {
  // (120 s: pre-copy's SIGSTOPped destination at switch-over waits out the handover and reconcile timeouts, ~35 s at
  // load 6-28: the source has handed the guest over with the digest, docs/reliability.md.)
  it.for(cells.map((c) => [cellId(c), c] as const))(
    '%s',
    { timeout: 120_000 },
    async ([_id, c], { expect }) => {
      // --timeout is how a SIGSTOPped destination is caught before GO: long enough for the rounds before the
      // switch-over with three cells at a time on a loaded machine (5 s was not, at load 26: the migration timed out
      // before the fault's frame). For the other cells it is only a safety net (loss must only slow a migration).
      const r = await runCell(c, {
        timeoutMs: c.fault === 'stop-destination' ? 15_000 : 20_000,
        pauseMs: 1000,
      });
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
        // (A guest that outlived its killed source, adopted on the destination, has nothing to retry.)
        if (r.status !== 'completed' && r.holder !== 'destination') {
          expect(r.retry).toBe('completed');
          expect(r.retryOracle).toBe(true);
        }
      }
    },
  );
});

describe.concurrent('fault matrix: ownership after GO', () => {
  it.for(afterGo.map((c) => [cellId(c), c] as const))(
    '%s',
    { timeout: 180_000 },
    async ([_id, c], { expect }) => {
      const r = await runCell(c, {
        // Longer than the 4 s SIGSTOP plus the rounds before it on a loaded machine: the path under test is the
        // handover, not --timeout (which, firing first, keeps the guest on the source: also accepted).
        timeoutMs: 20_000,
        pauseMs: 1000,
        handoverPauseMs: 4000,
        options: { handoverTimeoutMs: 2000, reconcileTimeoutMs: 8000 },
      });
      expect(r.injected).toBe(true);
      expect(r.problems).toEqual([]);
      // Never on two hosts; never nowhere unless a report says where it waits (then the cell settled it).
      expect(r.holder).not.toBe('both');
      expect(r.pausedOn).toBe(r.expected.pausedOn ?? null);
      if (r.pausedOn !== null) expect(r.settled).not.toBeNull();
      expect(r.holder).toBe(r.expected.holder);
      expect(r.oracle).toBe(true);
      if (r.expected.status === 'completed') expect(r.status).toBe('completed');
      else expect(r.code ?? r.destinationCode).toBe(r.expected.code);
    },
  );
});
