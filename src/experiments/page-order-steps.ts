/**
 * page-order: where each variant's paused window went on Svärd et al.'s yardstick, step by step — the medians over
 * repetitions of the report's switch-over steps (report.switchover, kept on each repetition: measure.ts,
 * keepSwitchover), source and destination. Every repetition's own steps stay in results.json.
 */
import type { SwitchoverTimes } from '../migration/index.js';
import { median } from './common.js';
import { switchoverOf } from './measure.js';
import type { CellResult } from './types.js';

type StepOf = (t: SwitchoverTimes) => number | undefined;

/** The steps shown, in the order they happen (source, then the destination's part of "written → READY"). */
export const STEP_COLUMNS: readonly (readonly [string, StepOf])[] = [
  ['pause', (t) => t.pauseMs],
  ['state', (t) => t.stateMs],
  ['last pages', (t) => t.lastPagesMs],
  ['digest', (t) => t.digestMs],
  ['send', (t) => t.sendMs],
  ['written → READY', (t) => t.checkMs],
  ['READY → RESUMED', (t) => t.ackMs],
  ['dst: state → SWITCHOVER', (t) => t.destination?.stateMs],
  ['dst: of which last pages applied', (t) => t.destination?.applyMs],
  ['dst: READY → GO', (t) => t.destination?.goMs],
  ["pages' own work (last pages + applied + drained)", pagesOwnMs],
] as const;

/**
 * The pages' own work in a paused window: the source's last pages (sync, encode, write) and the destination applying
 * and draining them. The split's page-dependent part (measure.ts, switchoverSplit) also counts the one write's
 * transit, which with a few KiB is the two agents' wake-ups and the destination's decode of the vCPU state (its
 * "state → SWITCHOVER" less "last pages applied"): costs a stop-and-copy of zero pages pays too.
 */
export function pagesOwnMs(t: SwitchoverTimes): number {
  return t.lastPagesMs + (t.destination?.applyMs ?? 0) + (t.destination?.drainMs ?? 0);
}

/** The steps kept on a cell's completed repetitions (those that have them). */
function keptSteps(result: CellResult): SwitchoverTimes[] {
  return result.repetitions
    .filter((m) => m.status === 'completed')
    .flatMap((m) => {
      const t = switchoverOf(m);
      return t ? [t] : [];
    });
}

/** The median of pagesOwnMs over a cell's completed repetitions that kept their steps. */
export function medianPagesOwnMs(result: CellResult): number | undefined {
  const xs = keptSteps(result).map(pagesOwnMs);
  return xs.length === 0 ? undefined : median(xs);
}

/** One row per cell: its label, the number of repetitions with steps, and each step's median (ms). */
export function stepRows(cells: readonly { label: string; result: CellResult }[]): (string | number)[][] {
  const rows: (string | number)[][] = [];
  for (const { label, result } of cells) {
    const steps = keptSteps(result);
    if (steps.length === 0) continue;
    rows.push([
      label,
      steps.length,
      ...STEP_COLUMNS.map(([, pick]) => {
        const xs = steps.flatMap((t) => {
          const v = pick(t);
          return v === undefined ? [] : [v];
        });
        return xs.length === 0 ? '–' : Math.round(median(xs) * 100) / 100;
      }),
    ]);
  }
  return rows;
}
