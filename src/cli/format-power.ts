/**
 * Report rows for power: how the budget was kept (the closed-loop controller) and what the migration cost in
 * energy (docs/power.md). Kept apart from format.ts so that the table stays one call.
 */
import type { MigrationReport } from '../migration/stats.js';

export function powerRows(r: MigrationReport): [string, string][] {
  const e = r.energy;
  if (!e) return [];
  const rows: [string, string][] = [];
  const b = e.budget;
  if (b) {
    const w = (x: number) => `${x.toFixed(1)} W`;
    rows.push([
      'power budget',
      `${w(b.budgetWatts)} over ${b.windowMs} ms windows: worst window ${w(b.worstWindow.watts)} ` +
        `(${((100 * b.worstWindow.watts) / b.budgetWatts - 100).toFixed(1)} % vs budget), ` +
        `${(b.overBudgetMs / 1000).toFixed(1)} s over, ${b.overBudgetJoules.toFixed(1)} J over, ` +
        `first window ${w(b.firstWindowWatts)}, ${b.decisions.length} decisions`,
    ]);
    if (!b.reachable) {
      rows.push([
        'power budget',
        'NOT REACHABLE at times: even the lowest setting was predicted over the budget then',
      ]);
    }
  }
  const c = e.cost;
  if (c) {
    const dst =
      c.destinationJoules === null
        ? 'destination not available'
        : `destination ${c.destinationJoules.toFixed(0)} J (${(c.destinationJoulesPerGiB ?? 0).toFixed(0)} J/GiB)`;
    rows.push([
      'energy per migration',
      `source ${c.sourceJoules.toFixed(0)} J (${c.sourceJoulesPerGiB.toFixed(0)} J/GiB), ${dst}; ` +
        `above idle-before: source ${c.sourceExtraJoules.toFixed(0)} J` +
        (c.destinationExtraJoules === null ? '' : `, destination ${c.destinationExtraJoules.toFixed(0)} J`) +
        ` [modelled, ${c.model}]`,
    ]);
  }
  return rows;
}
