/**
 * `livemig sim`: run consolidation policies on PlanetLab (or synthetic) traces, in CloudSim-compatible mode or
 * livemig's corrected mode, and write JSON / CSV / HTML reports.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import Table from 'cli-table3';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { renderReport, writeCsv, writeHtml, writeJson } from '../report/index.js';
import {
  checkInterval,
  FIX_NAMES,
  loadTraceSourceCached,
  medianTable,
  migrationDistributionTable,
  migrationLogLines,
  PLANETLAB_DAYS,
  type PolicySpec,
  parsePolicy,
  parseSimProfileSet,
  RESULT_COLUMNS,
  resolveTraces,
  resultRow,
  runJobs,
  SERIES_COLUMNS,
  type SimFixes,
  type SimJob,
  type SimMode,
  type SimProfileSet,
  seriesRows,
  simReport,
} from '../sim/index.js';
import { parseDuration } from '../units.js';
import { samplingFlag, simAgainst, switchOffFlag } from './sim-against.js';
import { durationFlag, intFlag, LIMITS, numberFlag, rateFlag } from './values.js';

/** Reads a `--profiles` file: a usage error naming the file when it is missing or not a profile set. */
async function readSimProfiles(file: string): Promise<SimProfileSet> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(
      `--profiles: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      '--profiles',
    );
  }
  return parseSimProfileSet(text, file);
}

/** The paper's Table V rows. */
export const TABLE_V_POLICIES = [
  'npa',
  'dvfs',
  'thr-mmt-1.0',
  'thr-mmt-0.8',
  'iqr-mmt-1.5',
  'mad-mmt-2.5',
  'lrr-mmt-1.2',
  'lr-mmt-1.2',
];

interface SimFlags {
  preset: string;
  day?: string;
  days?: string[];
  synthetic?: string;
  interval?: string;
  hosts?: string;
  policy: string[];
  safety?: string;
  threshold?: string;
  compat?: string;
  compare?: boolean;
  seed: string;
  jobs: string;
  out?: string;
  json?: boolean;
  progress: boolean;
  dirtyRate?: string;
  xbzrleRatio?: string;
  pricing?: string;
  profiles?: string;
  zeroFraction?: string;
  downtimeLimit?: string;
  placementCandidates?: string;
  fixes?: string;
  capacityChecks?: string;
  migrationLog?: string;
  sampling?: string;
  switchOff?: string;
  against?: string[];
  noise?: string;
  markdown?: boolean;
}

/** The most VMs a synthetic day may have: ~290 bytes of samples each, so the day stays in memory (≈290 MB). */
const MAX_SYNTHETIC_VMS = 1_000_000;

/** The CSV sample interval in whole seconds (`--interval 1m`; a bare number is milliseconds, as every duration). */
function intervalSeconds(text: string): number {
  const ms = parseDuration(text, '--interval');
  if (ms % 1000 !== 0 || ms === 0) {
    throw new UsageError(
      `--interval: "${text}" is not a whole number of seconds; write e.g. 30s, 5m`,
      '--interval',
    );
  }
  checkInterval(ms / 1000);
  return ms / 1000;
}

export function registerSim(program: Command): void {
  program
    .command('sim')
    .description(
      'Simulate a data centre consolidating VMs by live migration (CloudSim PlanetLab setup: 800 hosts, ' +
        'SPECpower models) on the bundled PlanetLab days or your own traces. ' +
        'Example: livemig sim --day 20110303 --policy lr-mmt --compat cloudsim',
    )
    .option('--preset <name>', 'data-centre preset (planetlab: 400 HP ML110 G4 + 400 G5)', 'planetlab')
    .option(
      '--day <name|path>',
      `a bundled PlanetLab day (${PLANETLAB_DAYS[0]} … ${PLANETLAB_DAYS[PLANETLAB_DAYS.length - 1]}), or your traces: ` +
        'a CloudSim folder (one file per VM, one integer % per 5-min line), a .csv file (one VM per column), ' +
        'a folder of per-VM .csv files (timestamp,cpu) or a .trace.br pack',
    )
    .option(
      '--days <names|paths...>',
      '"all" (the ten bundled days), day names (comma lists ok), folders, or a folder of day folders; ' +
        'reports medians over days',
    )
    .option(
      '--interval <duration>',
      'sample interval of CSV traces (default 5m; finer ones are averaged to 5 min)',
    )
    .option('--synthetic <vms>', 'synthetic workload with this many VMs instead of traces')
    .option('--hosts <n>', 'number of hosts (default 800)')
    .option(
      '--policy <names...>',
      'OVERLOAD-SELECTION[-SAFETY] (thr|iqr|mad|lr|lrr × mmt|rs|mc|mu), npa, dvfs, or "table5"; comma lists ok',
      ['lr-mmt'],
    )
    .option('--safety <x>', 'safety parameter for IQR/MAD/LR/LRR (THR: the threshold)')
    .option('--threshold <x>', 'THR threshold (same as --safety for thr-*)')
    .option('--compat <name>', 'reproduce another simulator: cloudsim (CloudSim 3.0.3, quirks included)')
    .option('--compare', 'run both cloudsim-compatible and livemig modes and compare')
    .option('--seed <n>', 'seed for random selection (RS) and synthetic traces', '42')
    .option('--jobs <n>', 'run policies/days on N worker threads', '1')
    .option('--out <dir>', 'write results.json, results.csv, series.csv and report.html here')
    .option('--json', 'print the results as JSON on stdout')
    .option('--no-progress', 'no progress bar')
    .option(
      '--pricing <model>',
      'livemig mode: how migrations are priced. profile (default): each VM gets a guest profile measured on the ' +
        'engine (by RAM size and trace class) and the profile-fed pre-copy model prices it, charging the ' +
        "engine's energy per GiB; rate: the papers' model with --dirty-rate and --xbzrle-ratio (docs/simulator.md)",
    )
    .option(
      '--profiles <file>',
      'with --pricing profile: a livemig-sim-profiles file instead of the bundled one',
    )
    .option(
      '--zero-fraction <f>',
      "with --pricing profile: share 0..1 of a VM's RAM that is zero pages (default 0: a long-running VM's RAM is " +
        "full), or 'profile' for the profiled guests' own (freshly started, mostly zero)",
    )
    .option(
      '--dirty-rate <rate>',
      'livemig mode, --pricing rate: page dirty rate of a VM at 100 % CPU (default 32MiB/s)',
    )
    .option(
      '--xbzrle-ratio <r>',
      'livemig mode, --pricing rate: XBZRLE wire bytes per re-sent byte (default 0.4)',
    )
    .option('--downtime-limit <duration>', 'livemig mode: pre-copy downtime limit (default 300ms)')
    .option('--placement-candidates <n>', 'PABFD looks at N sampled active hosts instead of all (huge runs)')
    .option(
      '--fixes <list>',
      `override livemig's fixes: comma list of [no-]NAME, all, none (names: ${FIX_NAMES.join(', ')})`,
    )
    .option(
      '--capacity-checks <when>',
      'host RAM / bandwidth limits: initial (cloudsim default), always, never',
    )
    .option(
      '--migration-log <file>',
      'one run only: write every migration started as "MIG <time> vm=<id> from=<host> to=<host>" (CloudSim ids)',
    )
    .option(
      '--sampling <how>',
      'what the policy sees of a VM at each step: mean (livemig default: the interval’s mean, as a monitor measures ' +
        'it) or instant (CloudSim: the trace’s sample at that instant)',
    )
    .option(
      '--switch-off <when>',
      'livemig mode: when a drained host stops drawing power: step (default: at the next scheduling step) or ' +
        'instant (CloudSim: when its last migration completes)',
    )
    .option(
      '--against <dir...>',
      'rerun the simulator side of a `livemig cluster --out DIR` run (DIR/cluster.json) and print the agreement; ' +
        'several folders (repeats of one configuration): the simulator against their median, with their range',
    )
    .option('--markdown', 'with --against: the agreement as the Markdown section of docs/cluster.md')
    .option(
      '--noise <n>',
      'with --against: also N simulator runs on the trace plus the runs’ own measurement errors (drawn per VM and ' +
        'interval), and where the cluster’s figures lie in that distribution',
    )
    .action(async (flags: SimFlags) => {
      const sampling = samplingFlag(flags.sampling);
      const switchOff = switchOffFlag(flags.switchOff);
      if (flags.against !== undefined) {
        await simAgainst(flags.against, {
          ...(sampling ? { sampling } : {}),
          ...(switchOff ? { switchOff } : {}),
          json: Boolean(flags.json),
          markdown: Boolean(flags.markdown),
          ...(flags.noise === undefined ? {} : { noise: intFlag(flags.noise, '--noise', 1, 10_000) }),
        });
        return;
      }
      if (flags.preset !== 'planetlab') throw new UsageError('--preset: only "planetlab" exists', '--preset');
      let modes: SimMode[];
      if (flags.compare) modes = ['cloudsim', 'livemig'];
      else if (flags.compat === undefined) modes = ['livemig'];
      else if (flags.compat === 'cloudsim') modes = ['cloudsim'];
      else throw new UsageError(`--compat: unknown simulator "${flags.compat}"; use cloudsim`, '--compat');

      const names = flags.policy
        .flatMap((p) => p.split(','))
        .flatMap((p) => (p === 'table5' ? TABLE_V_POLICIES : [p]));
      const safetyText = flags.threshold ?? flags.safety;
      const safety =
        safetyText === undefined
          ? undefined
          : numberFlag(safetyText, flags.threshold !== undefined ? '--threshold' : '--safety', 0, 1000);
      const policies: PolicySpec[] = names.map((n) => parsePolicy(n, safety));

      const seed = intFlag(flags.seed, '--seed', 0, 2 ** 31 - 1);
      const hosts = flags.hosts === undefined ? undefined : intFlag(flags.hosts, '--hosts', 1, 1_000_000);
      let workloads: SimJob['workload'][];
      if (flags.synthetic !== undefined) {
        workloads = [
          { synthetic: { vms: intFlag(flags.synthetic, '--synthetic', 1, MAX_SYNTHETIC_VMS), seed } },
        ];
      } else if (flags.days || flags.day) {
        const interval = flags.interval === undefined ? undefined : intervalSeconds(flags.interval);
        const many = flags.days !== undefined;
        const args = flags.days ?? [flags.day!];
        const sources = (
          await Promise.all(args.map((a) => resolveTraces(a, { many, ...(interval ? { interval } : {}) })))
        ).flat();
        // Read every workload here first: a bad file is reported as a usage error before any run starts, also
        // with --jobs N (the worker threads then read the traces again).
        await Promise.all(sources.map(loadTraceSourceCached));
        workloads = sources;
      } else {
        throw new UsageError(
          `say which workload: --day ${PLANETLAB_DAYS[0]} (or a trace folder / .csv file), --days all, or --synthetic VMS`,
          '--day',
        );
      }
      const pricingModel: string = flags.pricing ?? 'profile';
      if (pricingModel !== 'profile' && pricingModel !== 'rate') {
        throw new UsageError(`--pricing: use profile or rate (got "${pricingModel}")`, '--pricing');
      }
      if (flags.profiles && pricingModel !== 'profile') {
        throw new UsageError('--profiles needs --pricing profile', '--profiles');
      }
      if (flags.zeroFraction !== undefined && pricingModel !== 'profile') {
        throw new UsageError('--zero-fraction needs --pricing profile', '--zero-fraction');
      }
      const profiles = flags.profiles ? await readSimProfiles(flags.profiles) : undefined;
      const pricing = {
        model: pricingModel as 'profile' | 'rate',
        ...(flags.zeroFraction === undefined
          ? {}
          : {
              zeroFraction:
                flags.zeroFraction === 'profile'
                  ? null
                  : numberFlag(flags.zeroFraction, '--zero-fraction', 0, 1),
            }),
        ...(flags.dirtyRate
          ? { dirtyRateAtFullLoad: rateFlag(flags.dirtyRate, '--dirty-rate', 0, LIMITS.rate) }
          : {}),
        ...(flags.xbzrleRatio
          ? { compressionRatio: numberFlag(flags.xbzrleRatio, '--xbzrle-ratio', 0.001, 1) }
          : {}),
        ...(flags.downtimeLimit
          ? { downtimeLimit: durationFlag(flags.downtimeLimit, '--downtime-limit', 1, 3_600_000) / 1000 }
          : {}),
      };
      // After the values are parsed: a malformed number is reported as such first.
      if (pricingModel === 'profile' && (flags.dirtyRate || flags.xbzrleRatio)) {
        throw new UsageError(
          "--dirty-rate and --xbzrle-ratio describe the papers' model: add --pricing rate (the default, profile, " +
            'takes them from the measured profiles)',
          flags.dirtyRate ? '--dirty-rate' : '--xbzrle-ratio',
        );
      }
      const fixes: Partial<Record<keyof SimFixes, boolean>> = {};
      for (const item of (flags.fixes ?? '').split(',').filter(Boolean)) {
        if (item === 'all' || item === 'none') {
          for (const k of FIX_NAMES) fixes[k] = item === 'all';
          continue;
        }
        const name = item.replace(/^no-/, '') as keyof SimFixes;
        if (!FIX_NAMES.includes(name)) {
          throw new UsageError(`--fixes: unknown fix "${name}"; known: ${FIX_NAMES.join(', ')}`, '--fixes');
        }
        fixes[name] = !item.startsWith('no-');
      }
      const cap = flags.capacityChecks;
      if (cap !== undefined && cap !== 'initial' && cap !== 'always' && cap !== 'never') {
        throw new UsageError('--capacity-checks: use initial, always or never', '--capacity-checks');
      }
      const jobs: SimJob[] = [];
      for (const workload of workloads) {
        for (const mode of modes) {
          for (const policy of policies) {
            jobs.push({
              workload,
              mode,
              policy,
              seed,
              pricing,
              ...(profiles ? { profiles } : {}),
              series: Boolean(flags.out),
              ...(flags.migrationLog ? { migrationLog: true } : {}),
              ...(sampling ? { sampling } : {}),
              ...(switchOff ? { switchOff } : {}),
              fixes,
              ...(cap ? { capacityChecks: cap } : {}),
              ...(hosts !== undefined ? { hosts } : {}),
              ...(flags.placementCandidates
                ? {
                    placementCandidates: intFlag(
                      flags.placementCandidates,
                      '--placement-candidates',
                      1,
                      1_000_000,
                    ),
                  }
                : {}),
            });
          }
        }
      }
      if (flags.migrationLog && jobs.length !== 1) {
        throw new UsageError(
          `--migration-log: needs exactly one run (one day, one mode, one policy), not ${jobs.length}`,
          '--migration-log',
        );
      }
      const showBar = flags.progress && !flags.json && process.stderr.isTTY;
      const bar = showBar
        ? new cliProgress.SingleBar(
            { format: 'sim [{bar}] {value}/{total} runs | {last}', stream: process.stderr },
            cliProgress.Presets.shades_classic,
          )
        : undefined;
      bar?.start(jobs.length, 0, { last: '' });
      const results = await runJobs(jobs, {
        jobs: intFlag(flags.jobs, '--jobs', 1, 256),
        onDone: (done, _total, r) => bar?.update(done, { last: `${r.workload} ${r.mode} ${r.policy}` }),
      });
      bar?.stop();

      if (flags.migrationLog) {
        await writeFile(flags.migrationLog, migrationLogLines(results[0]?.migrationLog ?? []));
      }
      if (flags.out) {
        const command = `livemig ${process.argv.slice(2).join(' ')}`;
        await writeJson(join(flags.out, 'results.json'), results);
        await writeCsv(join(flags.out, 'results.csv'), [...RESULT_COLUMNS], results.map(resultRow));
        await writeCsv(join(flags.out, 'series.csv'), SERIES_COLUMNS, seriesRows(results));
        await writeHtml(join(flags.out, 'report.html'), await renderReport(simReport(results, { command })));
      }
      if (flags.json) {
        process.stdout.write(
          `${JSON.stringify(
            results.map(({ series: _s, migrationLog: _m, ...r }) => r),
            null,
            2,
          )}\n`,
        );
        return;
      }
      const perRun = new Table({
        head: [
          'workload',
          'mode',
          'policy',
          'kWh',
          'migrations',
          'SLATAH',
          'PDM',
          'SLAV×1e5',
          'ESV×1e3',
          'shutdowns',
          'ms',
        ],
      });
      for (const r of results) {
        perRun.push([
          r.workload,
          r.mode,
          r.policy,
          r.energyKWh.toFixed(2),
          r.migrations,
          `${(r.slatah * 100).toFixed(2)}%`,
          `${(r.pdm * 100).toFixed(3)}%`,
          (r.slav * 1e5).toFixed(3),
          (r.esv * 1e3).toFixed(3),
          r.hostShutdowns,
          Math.round(r.wallMs),
        ]);
      }
      process.stdout.write(`${perRun.toString()}\n`);
      const dist = migrationDistributionTable(results);
      if (dist.rows.length > 0 && results.some((r) => r.mode === 'livemig')) {
        const t = new Table({ head: dist.columns });
        for (const row of dist.rows) t.push(row.map(String));
        process.stdout.write(`migrations as the model priced them (modelled)\n${t.toString()}\n`);
      }
      if (workloads.length > 1) {
        const m = medianTable(results);
        const t = new Table({ head: m.columns });
        for (const row of m.rows) t.push(row.map(String));
        process.stdout.write(`medians over ${workloads.length} workloads\n${t.toString()}\n`);
      }
      if (flags.out)
        process.stdout.write(
          `wrote ${join(flags.out, 'report.html')} (+ results.json, results.csv, series.csv)\n`,
        );
    });
}
