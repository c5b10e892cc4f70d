/**
 * `livemig predict`: the pre-copy model's answer (src/migration/model.ts) for a guest and a link, without running a
 * migration. `livemig experiment model` measures how far it is from real migrations.
 */
import Table from 'cli-table3';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { type PrecopyInput, type PrecopyPrediction, predictPrecopy } from '../migration/model.js';
import { formatBytes, formatMs } from '../units.js';
import { durationFlag, intFlag, LIMITS, numberFlag, rateFlag, sizeFlag } from './values.js';

interface PredictFlags {
  ram: string;
  dirtyRate?: string;
  dirtyPages?: string;
  pageSize: string;
  workingSet?: string;
  bandwidth: string;
  compression: string;
  downtimeLimit: string;
  maxRounds: string;
  resumeOverhead: string;
  dirtySet: string;
  json?: boolean;
}

/** Turns the flags into the model's input (bytes, bytes/s, seconds). */
export function predictInput(f: PredictFlags): PrecopyInput {
  const ramBytes = sizeFlag(f.ram, '--ram', 1, LIMITS.size);
  const pageSize = sizeFlag(f.pageSize, '--page-size', 1, 2 ** 30);
  if (f.dirtyRate !== undefined && f.dirtyPages !== undefined) {
    throw new UsageError(
      'give the dirty rate once: --dirty-rate (bytes/s) or --dirty-pages (pages/s)',
      '--dirty-rate',
    );
  }
  const dirtyRate =
    f.dirtyPages !== undefined
      ? numberFlag(f.dirtyPages, '--dirty-pages', 0, 1e12) * pageSize
      : rateFlag(f.dirtyRate ?? '0', '--dirty-rate', 0, LIMITS.rate);
  if (f.dirtySet !== 'linear' && f.dirtySet !== 'uniform') {
    throw new UsageError(`--dirty-set: "${f.dirtySet}" is not linear or uniform`, '--dirty-set');
  }
  const bandwidth = rateFlag(f.bandwidth, '--bandwidth', 1, LIMITS.rate);
  return {
    ramBytes,
    dirtyRate,
    workingSetBytes:
      f.workingSet !== undefined ? sizeFlag(f.workingSet, '--working-set', 1, LIMITS.size) : ramBytes,
    bandwidth,
    compressionRatio: numberFlag(f.compression, '--compression', 0.001, 1),
    downtimeLimit: durationFlag(f.downtimeLimit, '--downtime-limit', 0.001, 3_600_000) / 1000,
    maxRounds: intFlag(f.maxRounds, '--max-rounds', 1, 100_000),
    resumeOverhead: durationFlag(f.resumeOverhead, '--resume-overhead', 0, LIMITS.duration) / 1000,
    dirtySet: f.dirtySet,
  };
}

export function predictionTable(i: PrecopyInput, p: PrecopyPrediction): string {
  const t = new Table({ head: ['pre-copy model', ''], style: { head: [], border: [] } });
  const rate = (b: number) => `${formatBytes(b)}/s`;
  t.push(
    ['RAM', formatBytes(i.ramBytes)],
    ['dirty rate', rate(i.dirtyRate)],
    ['working set', formatBytes(i.workingSetBytes ?? i.ramBytes)],
    ['bandwidth', rate(i.bandwidth)],
    ['compression ratio', String(i.compressionRatio ?? 1)],
    ['downtime limit', formatMs((i.downtimeLimit ?? 0.3) * 1000)],
    ['max rounds', String(i.maxRounds ?? 30)],
    ['dirty set', i.dirtySet === 'uniform' ? 'uniform: W·(1 − e^(−D·T/W))' : 'linear: min(D·T, W)'],
    ['λ = c·D/B', p.ratio.toFixed(3)],
    ['rounds', `${p.rounds} (+ stop-and-copy)`],
    ['total time', formatMs(p.totalTime * 1000)],
    ['downtime', formatMs(p.downtime * 1000)],
    ['bytes', `${formatBytes(p.bytes)} (${(p.bytes / Math.max(1, i.ramBytes)).toFixed(2)}× RAM)`],
    ['stop-and-copy bytes', formatBytes(p.stopCopyBytes)],
    [
      'converged',
      p.converged
        ? 'yes: the downtime limit was met'
        : 'no: the round bound or a dirty set that stopped shrinking forced the switch-over',
    ],
  );
  return t.toString();
}

export function registerPredict(program: Command): void {
  program
    .command('predict')
    .description(
      'Predict a pre-copy migration with the model (rounds, total time, downtime, bytes) without running one. ' +
        'Example: livemig predict --ram 1GiB --dirty-rate 32MiB --bandwidth 128MiB',
    )
    .option('--ram <size>', 'guest RAM', '1GiB')
    .option('--dirty-rate <rate>', 'bytes dirtied per second (e.g. 32MiB)')
    .option('--dirty-pages <pages/s>', 'or: pages dirtied per second (× --page-size)')
    .option('--page-size <size>', 'page size, for --dirty-pages', '4KiB')
    .option('--working-set <size>', 'writable working set: the most one round can find dirty (default: RAM)')
    .option('--bandwidth <rate>', 'link bandwidth for the migration (e.g. 128MiB, 1Gbit)', '128MiB')
    .option('--compression <ratio>', 'wire bytes per re-sent page byte (XBZRLE), 0 < c ≤ 1', '1')
    .option('--downtime-limit <duration>', 'switch over when the expected downtime is below this', '300ms')
    .option('--max-rounds <n>', 'round bound before forced stop-and-copy (round 1 included)', '30')
    .option('--resume-overhead <duration>', 'fixed cost of the switch-over itself', '0ms')
    .option(
      '--dirty-set <model>',
      'linear: every write dirties a new page (the papers); uniform: a uniform writer re-dirties pages, W·(1 − e^(−D·T/W))',
      'linear',
    )
    .option('--json', 'print input and prediction as JSON')
    .action((f: PredictFlags) => {
      const input = predictInput(f);
      let p: PrecopyPrediction;
      try {
        p = predictPrecopy(input);
      } catch (err) {
        if (err instanceof RangeError) throw new UsageError(err.message);
        throw err;
      }
      if (f.json) process.stdout.write(`${JSON.stringify({ input, prediction: p }, null, 2)}\n`);
      else process.stdout.write(`${predictionTable(input, p)}\n`);
    });
}
