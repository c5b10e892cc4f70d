/**
 * `livemig predict`: the pre-copy model's answer (src/migration/model.ts) for a guest and a link, without running a
 * migration. With the guest flags of `livemig run` it profiles the guest first (or reads `--profile FILE` from
 * `livemig profile`) and runs the model round by round with the migration flags' stop rules; with `--dirty-rate`
 * (or `--dirty-pages`) it runs the papers' closed model on those numbers alone. `livemig experiment model` measures
 * how far it is from real migrations (docs/model.md).
 */
import Table from 'cli-table3';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { measureEngineCosts } from '../experiments/model.js';
import {
  DEFAULT_ENGINE_COSTS,
  type EngineCosts,
  type PrecopyInput,
  type PrecopyPrediction,
  predictPrecopy,
} from '../migration/model.js';
import { resolveOptions } from '../migration/options.js';
import { type GuestProfile, readProfile } from '../profile/index.js';
import { formatBytes, formatMs } from '../units.js';
import {
  addGuestFlags,
  addMigrationFlags,
  type GuestFlagValues,
  guestConfigFromFlags,
  type MigrationFlagValues,
  migrationOptionsFromFlags,
} from './flags.js';
import { type ProfileFlags, profileFromFlags } from './profile.js';
import { durationFlag, intFlag, LIMITS, numberFlag, rateFlag, sizeFlag } from './values.js';

export interface PredictFlags extends GuestFlagValues, MigrationFlagValues {
  profile?: string;
  duration?: string;
  dirtyRate?: string;
  dirtyPages?: string;
  bandwidth?: string;
  compression: string;
  dirtySet: string;
  resumeOverhead: string;
  pageCost?: string;
  startCost?: string;
  switchoverCost?: string;
  calibrate?: boolean;
  json?: boolean;
}

/**
 * The flags every prediction reads besides the guest's and the migration's, parsed once: checked before seconds of
 * profiling or calibration (a typo fails at once), then handed to the model's input.
 */
export interface PredictSettings {
  /** The migration's bandwidth limit: --max-bandwidth, or --bandwidth, or QEMU's 128 MiB/s; 0 = unlimited. */
  bandwidth: number;
  /** The engine's costs given by --page-cost, --start-cost, --switchover-cost (over the defaults or measured). */
  engine: Partial<EngineCosts>;
  /** --compression: wire bytes per re-sent page byte (the papers' model). */
  compression: number;
}

export function parsePredictFlags(f: PredictFlags): PredictSettings {
  if (f.maxBandwidth !== undefined && f.bandwidth !== undefined) {
    throw new UsageError('give the bandwidth once: --max-bandwidth or --bandwidth', '--bandwidth');
  }
  const bandwidth =
    f.bandwidth !== undefined
      ? rateFlag(f.bandwidth, '--bandwidth', 1, LIMITS.rate)
      : f.maxBandwidth !== undefined
        ? rateFlag(f.maxBandwidth, '--max-bandwidth', 0, LIMITS.rate)
        : 128 * 1024 * 1024;
  const engine: Partial<EngineCosts> = {};
  if (f.pageCost !== undefined) engine.pageSec = numberFlag(f.pageCost, '--page-cost', 0, 1e6) / 1e6;
  if (f.startCost !== undefined) {
    engine.startSec = durationFlag(f.startCost, '--start-cost', 0, LIMITS.duration) / 1000;
  }
  if (f.switchoverCost !== undefined) {
    engine.switchoverSec = durationFlag(f.switchoverCost, '--switchover-cost', 0, LIMITS.duration) / 1000;
  }
  return { bandwidth, engine, compression: numberFlag(f.compression, '--compression', 0.001, 1) };
}

/** True when the flags give the dirty rate by hand (the papers' model, no profile). */
export function isByHand(f: PredictFlags): boolean {
  return f.dirtyRate !== undefined || f.dirtyPages !== undefined;
}

/** The papers' model from flags alone: --ram, --working-set, --dirty-rate or --dirty-pages, --bandwidth, … */
export function predictInput(f: PredictFlags, settings = parsePredictFlags(f)): PrecopyInput {
  const ramBytes = sizeFlag(f.ram, '--ram', 1, LIMITS.size);
  const pageSize = sizeFlag(f.pageSize, '--page-size', 1, 2 ** 30);
  if (f.dirtyRate !== undefined && f.dirtyPages !== undefined) {
    throw new UsageError(
      'give the dirty rate once: --dirty-rate (bytes/s) or --dirty-pages (pages/s)',
      '--dirty-rate',
    );
  }
  if (f.profile !== undefined) {
    throw new UsageError('--profile replaces --dirty-rate/--dirty-pages: give one or the other', '--profile');
  }
  const dirtyRate =
    f.dirtyPages !== undefined
      ? numberFlag(f.dirtyPages, '--dirty-pages', 0, 1e12) * pageSize
      : rateFlag(f.dirtyRate ?? '0', '--dirty-rate', 0, LIMITS.rate);
  if (f.dirtySet !== 'linear' && f.dirtySet !== 'uniform') {
    throw new UsageError(`--dirty-set: "${f.dirtySet}" is not linear or uniform`, '--dirty-set');
  }
  const limit = settings.bandwidth;
  const maxRounds = f.maxRounds === undefined ? 30 : intFlag(f.maxRounds, '--max-rounds', 1, 100_000);
  return {
    ramBytes,
    dirtyRate,
    workingSetBytes:
      f.workingSet !== undefined ? sizeFlag(f.workingSet, '--working-set', 1, LIMITS.size) : ramBytes,
    bandwidth: limit > 0 ? limit : DEFAULT_ENGINE_COSTS.linkBandwidth,
    compressionRatio: settings.compression,
    downtimeLimit: durationFlag(f.downtimeLimit ?? '300ms', '--downtime-limit', 0.001, 3_600_000) / 1000,
    maxRounds,
    resumeOverhead: durationFlag(f.resumeOverhead, '--resume-overhead', 0, LIMITS.duration) / 1000,
    dirtySet: f.dirtySet,
  };
}

/** The profile-fed model: the guest's profile, the migration flags (preset included) and the engine's costs. */
export function profiledInput(
  f: PredictFlags,
  profile: GuestProfile,
  measured?: { plain: EngineCosts; xbzrle: EngineCosts },
  settings = parsePredictFlags(f),
): PrecopyInput {
  const { options, preset } = migrationOptionsFromFlags(f);
  if (options.strategy && options.strategy !== 'precopy') {
    throw new UsageError(
      `--strategy ${options.strategy}: livemig predict models pre-copy only`,
      '--strategy',
    );
  }
  const ramBytes = profile.ramPages * profile.pageSize;
  const o = resolveOptions({ ...options, maxBandwidth: settings.bandwidth }, preset, ramBytes);
  return {
    ramBytes,
    dirtyRate: profile.dirtyPagesPerSec * profile.pageSize,
    bandwidth: o.maxBandwidth > 0 ? o.maxBandwidth : Number.POSITIVE_INFINITY,
    downtimeLimit: o.downtimeLimitMs / 1000,
    maxRounds: o.maxRounds,
    profile,
    migration: o,
    engine: {
      ...(measured ? (o.xbzrle ? measured.xbzrle : measured.plain) : DEFAULT_ENGINE_COSTS),
      ...settings.engine,
    },
  };
}

export function predictionTable(i: PrecopyInput, p: PrecopyPrediction): string {
  const t = new Table({ head: ['pre-copy model', ''], style: { head: [], border: [] } });
  const rate = (b: number) => (Number.isFinite(b) ? `${formatBytes(b)}/s` : 'unlimited');
  if (i.profile) {
    const prof = i.profile;
    const o = i.migration ?? {};
    t.push(
      ['guest', `${prof.source.workload}, profiled ${formatMs(prof.durationMs)} (${prof.measuredAt})`],
      ['RAM', `${formatBytes(i.ramBytes)}, ${(100 * (prof.zeroFraction ?? 0)).toFixed(1)} % zero pages`],
      ['dirtying', `${prof.dirtyPagesPerSec.toFixed(0)} dirty pages/s, ${prof.pagesWritten} pages written`],
      ['bandwidth limit', rate(i.bandwidth)],
      ['downtime limit', formatMs((o.downtimeLimitMs ?? 300) * 1)],
      ['max rounds', o.maxRounds === 0 ? 'no limit' : String(o.maxRounds ?? 30)],
      [
        'XBZRLE',
        o.xbzrle && p.xbzrle
          ? `cache ${formatBytes(o.xbzrleCacheBytes ?? 0)}, ${o.cacheWays}-way: ${(p.xbzrle.hitRate * 100).toFixed(0)} % hits, ` +
            `${p.xbzrle.wireRatio.toFixed(3)} wire bytes per resent page byte`
          : 'off',
      ],
    );
  } else {
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
    );
  }
  t.push(
    ['rounds', `${p.rounds} (+ stop-and-copy)`],
    ['total time', formatMs(p.totalTime * 1000)],
    ['downtime', formatMs(p.downtime * 1000)],
    ['bytes', `${formatBytes(p.bytes)} (${(p.bytes / Math.max(1, i.ramBytes)).toFixed(2)}× RAM)`],
    ['stop-and-copy bytes', formatBytes(p.stopCopyBytes)],
    [
      'converged',
      p.switchoverReason !== undefined
        ? `${p.converged ? 'yes' : 'no'}: ${p.switchoverReason}`
        : p.converged
          ? 'yes: the downtime limit was met'
          : 'no: the round bound or a dirty set that stopped shrinking forced the switch-over',
    ],
  );
  let out = t.toString();
  if (p.perRound && p.perRound.length > 0) {
    const r = new Table({
      head: ['round', 'pages', 'bytes', 'time', 'dirtied meanwhile', 'throttle'],
      style: { head: [], border: [] },
    });
    for (const x of p.perRound.slice(0, 40)) {
      r.push([
        x.round,
        Math.round(x.pages),
        formatBytes(x.bytes),
        formatMs(x.seconds * 1000),
        Math.round(x.dirtyPages),
        x.throttle ? `${x.throttle} %` : '',
      ]);
    }
    out += `\n${r.toString()}`;
  }
  return out;
}

export function registerPredict(program: Command): void {
  const cmd = program
    .command('predict')
    .description(
      'Predict a pre-copy migration (rounds, total time, downtime, bytes) without running one: profiles the guest ' +
        'given by the guest flags of `livemig run` (or reads --profile FILE from `livemig profile`) and runs the ' +
        'model with the migration flags; or, with --dirty-rate, the papers’ model on the numbers given.',
    )
    .option(
      '--profile <file>',
      'a profile from `livemig profile --out FILE` (else the guest is profiled first)',
    )
    .option('--duration <duration>', 'when profiling first: how long to watch the guest', '3s')
    .option('--dirty-rate <rate>', "the papers' model instead: bytes dirtied per second (e.g. 32MiB)")
    .option('--dirty-pages <pages/s>', "the papers' model instead: pages dirtied per second (× --page-size)")
    .option(
      '--bandwidth <rate>',
      'link bandwidth for the migration (same as --max-bandwidth; default 128MiB)',
    )
    .option('--compression <ratio>', "papers' model: wire bytes per re-sent page byte, 0 < c ≤ 1", '1')
    .option('--resume-overhead <duration>', "papers' model: fixed cost of the switch-over itself", '0ms')
    .option(
      '--dirty-set <model>',
      "papers' model: linear (every write dirties a new page) or uniform, W·(1 − e^(−D·T/W))",
      'linear',
    )
    .option(
      '--page-cost <µs>',
      `engine: source time per page sent, microseconds (default ${DEFAULT_ENGINE_COSTS.pageSec * 1e6})`,
    )
    .option(
      '--start-cost <duration>',
      `engine: fixed time before round 1 (default ${DEFAULT_ENGINE_COSTS.startSec * 1000} ms)`,
    )
    .option(
      '--switchover-cost <duration>',
      `engine: fixed cost of the switch-over (default ${DEFAULT_ENGINE_COSTS.switchoverSec * 1000} ms)`,
    )
    .option(
      '--calibrate',
      "measure the engine's costs on this machine first: 10 short migrations of a near-idle guest on loopback",
    )
    .option('--json', 'print input and prediction as JSON');
  addGuestFlags(cmd);
  addMigrationFlags(cmd);
  cmd.addHelpText(
    'after',
    '\nExamples:\n' +
      '  livemig predict --workload zipf --ram 256MiB --write-rate 4000 --max-bandwidth 64MiB\n' +
      '  livemig profile --workload kv --out kv.json && livemig predict --profile kv.json --xbzrle --preset proxmox\n' +
      '  livemig predict --ram 1GiB --dirty-rate 32MiB --bandwidth 128MiB        # the papers’ model by hand\n',
  );
  cmd.action(async (f: PredictFlags) => {
    const settings = parsePredictFlags(f); // before seconds of profiling or calibration
    let input: PrecopyInput;
    if (isByHand(f)) input = predictInput(f, settings);
    else {
      let profile: GuestProfile;
      if (f.profile !== undefined) profile = await readProfile(f.profile);
      else {
        guestConfigFromFlags(f); // fail on bad guest flags before the watch
        if (!f.json) process.stderr.write(`profiling the guest for ${f.duration}...\n`);
        profile = await profileFromFlags({
          ...f,
          duration: f.duration ?? '3s',
          tick: '5ms',
          warmup: '200ms',
        } as ProfileFlags);
      }
      let measured: { plain: EngineCosts; xbzrle: EngineCosts } | undefined;
      if (f.calibrate) {
        if (!f.json) process.stderr.write("measuring the engine's costs (10 migrations on loopback)...\n");
        measured = await measureEngineCosts({ ramBytes: 64 * 1024 * 1024 });
      }
      input = profiledInput(f, profile, measured, settings);
    }
    let p: PrecopyPrediction;
    try {
      p = predictPrecopy(input);
    } catch (err) {
      if (err instanceof RangeError) throw new UsageError(err.message);
      throw err;
    }
    if (f.json) {
      const { profile: _p, ...rest } = input;
      process.stdout.write(`${JSON.stringify({ input: rest, prediction: p }, null, 2)}\n`);
    } else process.stdout.write(`${predictionTable(input, p)}\n`);
  });
}
