/**
 * `livemig experiment model-qemu`: the pre-copy model against real QEMU migrations of the test VM
 * (src/experiments/model-qemu.ts). It boots QEMU guests, so it has its own runner, like `engines`.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import Table from 'cli-table3';
import { type ModelQemuResult, modelQemuPlan, runModelQemu } from '../experiments/model-qemu.js';
import type { ExperimentFlags } from './experiment-flags.js';

export const MODEL_QEMU_EXPERIMENT = 'model-qemu';
export const MODEL_QEMU_EXPERIMENT_TITLE =
  "the pre-copy model against QEMU: the test VM's profile from its program's parameters, measured vs predicted";

const pct = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;

export function printModelQemu(r: ModelQemuResult): string {
  const t = new Table({
    head: [
      'cell',
      'time s (QEMU / model)',
      'err',
      'downtime ms',
      'err ms',
      'MiB',
      'err',
      'rounds',
      'dirty MiB/s QEMU / W(1s)',
    ],
    style: { head: [], border: [] },
  });
  for (const row of r.rows) {
    const m = row.measured;
    const p = row.predicted;
    t.push([
      row.config.id,
      `${(m.totalTimeMs / 1000).toFixed(2)} / ${(p.totalTimeMs / 1000).toFixed(2)}`,
      pct(row.error.totalTime),
      `${m.downtimeMs.toFixed(0)} / ${p.downtimeMs.toFixed(0)}`,
      row.error.downtimeMs.toFixed(0),
      `${(m.bytes / 2 ** 20).toFixed(0)} / ${(p.bytes / 2 ** 20).toFixed(0)}`,
      pct(row.error.bytes),
      `${m.rounds} / ${p.rounds}`,
      `${row.dirtyRate.qemuMiBps ?? '-'} / ${row.dirtyRate.profileMiBps.toFixed(1)}`,
    ]);
  }
  const s = r.summary;
  return [
    `\n== ${MODEL_QEMU_EXPERIMENT_TITLE} (QEMU ${r.qemu}, TCG)`,
    `QEMU's costs (calibrated on three migrations outside the grid): ${(r.engine.pageSec * 1e6).toFixed(1)} µs per page, ` +
      `${((r.engine.stopPageSec ?? r.engine.pageSec) * 1e6).toFixed(1)} µs per page in the stop-and-copy, ` +
      `start ${(r.engine.startSec * 1000).toFixed(0)} ms, switch-over ${(r.engine.switchoverSec * 1000).toFixed(1)} ms; ` +
      `RAM ${(r.zeroFraction * 100).toFixed(0)} % zero pages`,
    t.toString(),
    `|error| total time: median ${(s.totalTime.median * 100).toFixed(1)} %, p90 ${(s.totalTime.p90 * 100).toFixed(1)} %; ` +
      `bytes: median ${(s.bytes.median * 100).toFixed(1)} %, p90 ${(s.bytes.p90 * 100).toFixed(1)} %; ` +
      `downtime: median ${s.downtimeMs.median.toFixed(1)} ms`,
    r.files.length ? `wrote ${r.files.join(', ')}` : '',
    '',
  ].join('\n');
}

export async function runModelQemuCommand(f: ExperimentFlags): Promise<void> {
  const opts = { quick: f.quick === true, tiny: f.tiny === true };
  if (f.dryRun) {
    for (const c of modelQemuPlan(opts)) process.stdout.write(`${MODEL_QEMU_EXPERIMENT}: ${c.id}\n`);
    return;
  }
  const out = join(f.out, MODEL_QEMU_EXPERIMENT);
  await mkdir(out, { recursive: true });
  const r = await runModelQemu({
    ...opts,
    out,
    log: f.progress === false ? undefined : (l) => process.stderr.write(`[${MODEL_QEMU_EXPERIMENT}] ${l}\n`),
  });
  if (f.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  else process.stdout.write(printModelQemu(r));
}
