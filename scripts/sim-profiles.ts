/**
 * Measures the guest profiles the simulator prices migrations with (data/profiles/sim-profiles.json) on this engine:
 * one `livemig profile` per CloudSim VM memory size and trace class, and the energy a migration adds per GiB moved
 * (median over several `livemig run` migrations, per host power model of the simulated data centre).
 *
 *   npm run build && node --import tsx scripts/sim-profiles.ts [--out FILE] [--duration 30s] [--runs 5]
 *
 * Takes about 15 minutes on a 2-core machine; measure on a quiet machine (the script prints the load average).
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { profileSchema } from '../src/profile/schema.js';
import { type SimProfileSet, simProfileSetSchema, type TraceClass } from '../src/sim/profiles.js';

const run = promisify(execFile);
const bin = new URL('../dist/cli/bin.js', import.meta.url).pathname;

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'data/profiles/sim-profiles.json' },
    duration: { type: 'string', default: '30s' },
    runs: { type: 'string', default: '5' },
  },
});

/** The three trace classes and the workload each stands for, at a full-speed write rate of 32 MiB/s. */
const CLASSES: { traceClass: TraceClass; workload: string[] }[] = [
  { traceClass: 'light', workload: ['--workload', 'kv'] },
  { traceClass: 'moderate', workload: ['--workload', 'zipf'] },
  { traceClass: 'heavy', workload: ['--workload', 'gap'] },
];
const FULL_SPEED = ['--write-rate', '8192', '--seed', '1'];
/** CloudSim's PlanetLab VM types' RAM, MB (the simulator's sizes; profiled in MiB of the same count). */
const SIZES = [613, 870, 1740];
const POWER_MODELS = ['hpProLiantMl110G4', 'hpProLiantMl110G5'];

const load = (): string =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const loadStart = load();
  const classes: SimProfileSet['classes'] = [];
  for (const size of SIZES) {
    for (const c of CLASSES) {
      const file = join(tmpdir(), `livemig-sim-profile-${c.traceClass}-${size}.json`);
      const args = [
        bin,
        'profile',
        ...c.workload,
        ...FULL_SPEED,
        '--ram',
        `${size}MiB`,
        '--duration',
        values.duration,
        '--warmup',
        '2s',
        '--tick',
        '10ms',
        '--json',
      ];
      const { stdout } = await run(process.execPath, args, { maxBuffer: 1 << 24 });
      const profile = profileSchema.parse(JSON.parse(stdout));
      await writeFile(file, stdout);
      classes.push({
        traceClass: c.traceClass,
        workload: `${c.workload.join(' ')} ${FULL_SPEED.join(' ')}`,
        profile,
      });
      process.stderr.write(`profiled ${c.traceClass} ${size} MiB (load ${load()})\n`);
    }
  }
  // Energy a migration adds above each host's power just before it, J per GiB moved: median per power model, then
  // the mean of the models (the simulated data centre has as many G4 as G5 hosts).
  const runs = Number(values.runs);
  const perModel: { source: number; destination: number }[] = [];
  for (const model of POWER_MODELS) {
    const src: number[] = [];
    const dst: number[] = [];
    for (let i = 0; i < runs; i++) {
      const { stdout } = await run(
        process.execPath,
        [
          bin,
          'run',
          '--ram',
          '512MiB',
          '--workload',
          'gap',
          ...FULL_SPEED,
          '--max-bandwidth',
          '62.5MB',
          '--xbzrle',
          '--power-model',
          model,
          '--json',
        ],
        { maxBuffer: 1 << 26 },
      );
      const cost = (JSON.parse(stdout) as { energy?: { cost?: Record<string, number | null> } }).energy?.cost;
      if (!cost) throw new Error('livemig run --json gave no energy.cost');
      const gib = Number(cost.bytesMoved) / 2 ** 30;
      src.push(Number(cost.sourceExtraJoules) / gib);
      dst.push(Number(cost.destinationExtraJoules) / gib);
    }
    perModel.push({ source: median(src), destination: median(dst) });
    process.stderr.write(
      `${model}: extra J/GiB source ${src.map((x) => x.toFixed(0)).join(' ')}, destination ${dst.map((x) => x.toFixed(0)).join(' ')}\n`,
    );
  }
  const mean = (f: (m: { source: number; destination: number }) => number): number =>
    perModel.reduce((a, m) => a + f(m), 0) / perModel.length;
  const set: SimProfileSet = simProfileSetSchema.parse({
    kind: 'livemig-sim-profiles',
    version: 1,
    measuredWith: `node --import tsx scripts/sim-profiles.ts --duration ${values.duration} --runs ${runs} (load average ${loadStart} at the start, ${load()} at the end)`,
    // The engine's per-page cost on a quiet machine (docs/model.md): the simulated hosts are not this 2-core box,
    // so the link, not the source's CPU, bounds a simulated migration.
    engine: { pageSec: 9.4e-6, switchoverSec: 0.011 },
    energy: {
      // A migration that displaces its own guest's work can come out below zero on the source: no credit is given.
      sourceJPerGiB: Math.max(
        0,
        mean((m) => m.source),
      ),
      destinationJPerGiB: Math.max(
        0,
        mean((m) => m.destination),
      ),
      model: `mean of ${POWER_MODELS.join(' and ')} (SPECpower), modelled from per-thread CPU time`,
      measuredWith: `livemig run --ram 512MiB --workload gap ${FULL_SPEED.join(' ')} --max-bandwidth 62.5MB --xbzrle --power-model <model> --json: energy.cost.*ExtraJoules per GiB moved, median of ${runs}`,
    },
    classes,
  });
  await writeFile(values.out, `${JSON.stringify(set, null, 1)}\n`);
  process.stderr.write(`wrote ${values.out} (load ${load()})\n`);
}

await main();
