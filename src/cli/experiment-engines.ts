/**
 * `livemig experiment engines`: QEMU and livemig's engine migrate the same workload over the same link with the same
 * settings (src/experiments/engines.ts). It boots real QEMU guests, so it has its own runner; `experiment.ts` hands
 * this name over to it.
 */
import Table from 'cli-table3';
import { MigrationError } from '../errors.js';
import { type EnginesResult, enginesPlan, runEngines } from '../experiments/engines.js';
import { downtimeLines } from '../experiments/engines-downtime.js';
import { formatMs } from '../units.js';
import { type ExperimentFlags, intFlag } from './experiment-flags.js';

export const ENGINES_EXPERIMENT = 'engines';
export const ENGINES_EXPERIMENT_TITLE =
  'QEMU vs livemig: same workload, link and settings; time, downtime, bytes, rounds, CPU side by side';

export function printEngines(r: EnginesResult): string {
  const t = new Table({ head: [...r.table.columns], style: { head: [], border: [] } });
  for (const row of r.table.rows) t.push(row.map(String));
  return [
    `\n== ${ENGINES_EXPERIMENT_TITLE} (QEMU ${r.qemu}, TCG)`,
    t.toString(),
    'Downtime, livemig ÷ QEMU (same run):',
    ...downtimeLines(r.downtime).map((l) => `- ${l}`),
    'Findings:',
    ...r.findings.map((f) => `- ${f}`),
    `wrote ${r.files.join(', ')} in ${formatMs(r.wallMs)}`,
    '',
  ].join('\n');
}

export async function runEnginesCommand(f: ExperimentFlags): Promise<void> {
  const seed = intFlag(f.seed, '--seed', 0, 2 ** 31 - 1);
  const opts = { quick: f.quick === true, tiny: f.tiny === true };
  // --cells: only the configs whose id contains one of these (a full run split over several calls).
  const wanted = f.cells?.split(',').filter((x) => x !== '');
  const configs = wanted ? enginesPlan(opts).filter((c) => wanted.some((w) => c.id.includes(w))) : undefined;
  if (configs?.length === 0) {
    throw new MigrationError('BAD_ARGUMENT', `--cells ${f.cells}: no engines config matches (see --dry-run)`);
  }
  if (f.dryRun) {
    for (const c of configs ?? enginesPlan(opts))
      process.stdout.write(`${ENGINES_EXPERIMENT}: ${c.id} × qemu, livemig\n`);
    return;
  }
  const r = await runEngines({
    ...opts,
    configs,
    seed,
    out: f.out,
    log: f.progress === false ? undefined : (l) => process.stderr.write(`[${ENGINES_EXPERIMENT}] ${l}\n`),
    command: `livemig experiment ${process.argv.slice(3).join(' ')}`.trim(),
  });
  if (f.json)
    process.stdout.write(
      `${JSON.stringify({ configs: r.configs, findings: r.findings, notes: { qemuBetter: r.qemuBetter, livemigBetter: r.livemigBetter }, downtime: r.downtime, table: r.table, runs: r.runs, files: r.files }, null, 2)}\n`,
    );
  else process.stdout.write(printEngines(r));
}
