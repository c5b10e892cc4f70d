/**
 * `livemig cluster`: a data centre in miniature — the simulator's consolidation policy on real agents with real
 * live migrations, then the simulator on the same hosts, VMs and window, side by side (src/cluster, docs/cluster.md).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Table from 'cli-table3';
import type { Command } from 'commander';
import {
  agreementText,
  CLUSTER_WORKLOADS,
  type ClusterDashboard,
  type ClusterOptions,
  type ClusterReport,
  type ClusterView,
  clusterHtmlReport,
  DEFAULT_CLUSTER,
  DEFAULT_LINK_RATE,
  parseClusterLink,
  parseLinkDelaySpec,
  QUICK_CLUSTER,
  repeatAgreement,
  repeatMarkdown,
  runCluster,
  startClusterDashboard,
} from '../cluster/index.js';
import { UsageError } from '../errors.js';
import { renderReport, writeHtml } from '../report/index.js';
import { formatBytes, parseDuration, parseRate } from '../units.js';
import { planDashboard } from '../web/index.js';
import { addMigrationFlags, type MigrationFlagValues, migrationOptionsFromFlags } from './flags.js';
import { durationFlag, intFlag, numberFlag } from './values.js';

interface ClusterFlags extends MigrationFlagValues {
  quick?: boolean;
  hosts?: string;
  vms?: string;
  ram?: string;
  day?: string;
  start?: string;
  duration?: string;
  speed?: string;
  policy?: string;
  seed?: string;
  cpuScale?: string;
  measure?: string;
  parallelOutboundPerHost?: string;
  parallelPerCluster?: string;
  workloads?: string;
  killHost?: string;
  netns?: boolean;
  linkRate?: string;
  linkDelay?: string;
  linkJitter?: string;
  linkLoss?: string;
  dashboard?: string | boolean;
  out?: string;
  json?: boolean;
  repeat?: string;
}

function seconds(value: string, flag: string): number {
  return Math.round(parseDuration(value, flag) / 1000);
}

/** The run's options from the flags, on top of the defaults or the quick mode. */
export function clusterOptionsFromFlags(f: ClusterFlags): ClusterOptions {
  const base = f.quick ? QUICK_CLUSTER : DEFAULT_CLUSTER;
  const o: ClusterOptions = { ...base, migration: migrationOptionsFromFlags(f).options };
  if (f.hosts !== undefined) o.hosts = intFlag(f.hosts, '--hosts', 1, 64);
  if (f.vms !== undefined) o.vms = intFlag(f.vms, '--vms', 1, 256);
  if (f.ram !== undefined) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(f.ram.replace(/MiB$/i, ''));
    if (!m)
      throw new UsageError(`--ram: "${f.ram}"; use MIN-MAX in MiB (e.g. 64-128) or one size (32)`, '--ram');
    o.ramMiB = [Number(m[1]), Number(m[2] ?? m[1])];
  }
  if (f.day !== undefined) o.day = f.day;
  if (f.start !== undefined) o.startSec = seconds(f.start, '--start');
  if (f.duration !== undefined) o.durationSec = seconds(f.duration, '--duration');
  if (f.speed !== undefined) o.speed = numberFlag(f.speed, '--speed', 1, 3000);
  if (f.policy !== undefined) o.policy = f.policy;
  if (f.seed !== undefined) o.seed = intFlag(f.seed, '--seed', 0);
  if (f.cpuScale !== undefined) o.cpuScale = numberFlag(f.cpuScale, '--cpu-scale', 0.01, 1);
  if (f.measure !== undefined) {
    if (f.measure !== 'cpu' && f.measure !== 'scheduled')
      throw new UsageError(`--measure: "${f.measure}"; use cpu or scheduled`, '--measure');
    o.measure = f.measure;
  }
  if (f.parallelOutboundPerHost !== undefined)
    o.parallelOutboundPerHost = intFlag(f.parallelOutboundPerHost, '--parallel-outbound-per-host', 1, 64);
  if (f.parallelPerCluster !== undefined)
    o.parallelPerCluster = intFlag(f.parallelPerCluster, '--parallel-per-cluster', 1, 256);
  if (f.workloads !== undefined) o.workloads = f.workloads.split(',').map((s) => s.trim());
  if (f.killHost !== undefined) {
    const m = /^(\d+)@(\d+)$/.exec(f.killHost);
    if (!m) throw new UsageError(`--kill-host: "${f.killHost}"; use HOST@INTERVAL, e.g. 1@5`, '--kill-host');
    o.killHost = { host: Number(m[1]), atInterval: Number(m[2]) };
    if (o.killHost.host >= o.hosts) throw new UsageError('--kill-host: no such host', '--kill-host');
  }
  if (f.linkRate !== undefined && !f.netns)
    throw new UsageError('--link-rate: shapes the --netns links; add --netns', '--link-rate');
  if (f.netns) {
    const rate = f.linkRate === undefined ? DEFAULT_LINK_RATE : parseRate(f.linkRate, '--link-rate');
    if (!(rate > 0))
      throw new UsageError('--link-rate: use a rate above 0 (e.g. 1Gbit, 100Mbit)', '--link-rate');
    o.netns = { rateBytesPerSec: rate };
  }
  if (f.linkJitter !== undefined && f.linkDelay === undefined)
    throw new UsageError('--link-jitter: varies --link-delay; add --link-delay', '--link-jitter');
  if (f.linkDelay !== undefined || f.linkLoss !== undefined) {
    o.link = parseClusterLink({
      ...(f.linkDelay === undefined
        ? { delayMs: 0 }
        : parseLinkDelaySpec(f.linkDelay, o.hosts, (d) => durationFlag(d, '--link-delay', 0, 10_000))),
      jitterMs: f.linkJitter === undefined ? 0 : durationFlag(f.linkJitter, '--link-jitter', 0, 10_000),
      loss: f.linkLoss === undefined ? 0 : numberFlag(f.linkLoss, '--link-loss', 0, 0.5),
    });
  }
  return o;
}

/** Where `--dashboard [PORT|HOST:PORT]` serves the cluster view: loopback only (plain HTTP, read-only). */
export function clusterDashboardFlag(f: ClusterFlags): { host: string; port: number } | undefined {
  if (f.dashboard === undefined || f.dashboard === false) return undefined;
  return planDashboard(f.dashboard === true ? '0' : f.dashboard, '127.0.0.1').listen;
}

const pct = (x: number): string => `${(x * 100).toFixed(3)} %`;

/** The side-by-side table: cluster, simulator, relative difference. */
export function comparisonTable(r: ClusterReport, rows = r.comparison, simLabel = 'simulator'): string {
  const t = new Table({ head: ['metric', 'cluster (measured)', simLabel, 'difference'] });
  for (const row of rows) {
    const fmt = (x: number): string =>
      ['SLATAH', 'PDM'].includes(row.metric)
        ? pct(x)
        : ['SLAV', 'ESV'].includes(row.metric)
          ? x.toExponential(3)
          : row.metric.startsWith('energy')
            ? x.toFixed(4)
            : Number.isInteger(x)
              ? String(x)
              : x.toFixed(2);
    t.push([
      row.metric,
      fmt(row.cluster),
      fmt(row.sim),
      row.relative === null
        ? 'n/a (sim 0)'
        : `${row.relative >= 0 ? '+' : ''}${(row.relative * 100).toFixed(1)} %`,
    ]);
  }
  return t.toString();
}

/**
 * After the run, on a terminal, the view stays up (its final state) until Enter or Ctrl-C; without a terminal (a
 * script, CI) the run just ends.
 */
async function holdDashboard(dash: ClusterDashboard): Promise<void> {
  if (!process.stdin.isTTY) return;
  process.stderr.write(
    `the run is over; the dashboard stays at ${dash.url} until you press Enter or Ctrl-C\n`,
  );
  await new Promise<void>((resolve) => {
    const done = (): void => {
      process.stdin.off('data', done);
      process.off('SIGINT', done);
      process.stdin.pause();
      resolve();
    };
    process.stdin.once('data', done);
    process.once('SIGINT', done);
    process.stdin.resume();
  });
}

function summary(r: ClusterReport): string {
  const done = r.migrations.filter((m) => m.status === 'completed');
  const lost = r.vms.filter((v) => v.state === 'lost-with-host').map((v) => v.guest);
  const lines = [
    `${r.policy} on ${r.day}, ${r.window.intervals} intervals at ${r.speed}×, ${r.hosts.length} hosts, ${r.vms.length} VMs; wall ${(r.wallMs / 1000).toFixed(1)} s`,
    `migrations: ${r.migrations.length} started, ${done.length} completed and verified, ${r.deferred} held back by the concurrency limits; ` +
      `${formatBytes(done.reduce((a, m) => a + m.transferredBytes, 0))} sent`,
    `guests: ${r.vms.filter((v) => v.state === 'running').length} running, each on exactly one host` +
      (lost.length ? `; lost with a killed host: ${lost.join(', ')}` : ''),
  ];
  if (r.link)
    lines.push(
      `links: ${r.link.delayMs} ms one-way delay` +
        (r.link.pairs?.length
          ? ` (${r.link.pairs.map((p) => `${p.a}-${p.b} ${p.delayMs} ms`).join(', ')})`
          : '') +
        ` ± ${r.link.jitterMs} ms, loss ${r.link.loss} (emulated by a user-space proxy: ` +
        `${r.link.connections} connections, ${r.link.retransmitStalls} retransmission stalls; its thread woke ` +
        `${r.link.lateMsMean.toFixed(1)} ms late on average, ${r.link.lateMsMax.toFixed(1)} ms at worst` +
        `${r.link.nice === null ? '' : `, at nice ${r.link.nice}`})`,
    );
  for (const k of r.killed)
    lines.push(`host ${k.host} killed at interval ${k.interval}: ${k.guests.join(', ') || 'no guests'}`);
  return lines.join('\n');
}

/** Writes a run's cluster.json and report.html into `dir`. */
async function writeRun(dir: string, r: ClusterReport): Promise<void> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'cluster.json'), JSON.stringify(r, null, 2));
  const command = `livemig ${process.argv.slice(2).join(' ')}`;
  await writeHtml(join(dir, 'report.html'), await renderReport(clusterHtmlReport(r, command)));
}

/** `--repeat N`: N runs of one configuration, then the simulator against their median (agreement-repeat.ts). */
async function repeatedRuns(f: ClusterFlags, n: number): Promise<void> {
  const o = clusterOptionsFromFlags(f);
  const runs: ClusterReport[] = [];
  for (let i = 1; i <= n; i++) {
    process.stderr.write(`run ${i} of ${n}\n`);
    const r = await runCluster(o, (e) => process.stderr.write(`${e.message}\n`));
    if (f.out) await writeRun(join(f.out, `run-${i}`), r);
    if (!f.json) process.stdout.write(`run ${i} of ${n}: ${summary(r)}\n`);
    runs.push(r);
  }
  const repeat = repeatAgreement(runs);
  if (f.json) {
    process.stdout.write(`${JSON.stringify({ repeat, runs }, null, 2)}\n`);
    return;
  }
  process.stdout.write(`${repeatMarkdown(repeat)}\n`);
}

export function registerCluster(program: Command): void {
  const cmd = program
    .command('cluster')
    .description(
      'Run a data centre in miniature: N agents as hosts (CloudSim PlanetLab host types and SPECpower models), M ' +
        'guests whose CPU follows PlanetLab traces, and the simulator’s own consolidation policy deciding every ' +
        'scheduling interval on measured utilisation, carried out as real live migrations. Then the simulator on ' +
        'the same hosts, VMs and window, side by side.',
    )
    .option('--quick', 'small and short: 4 hosts, 8 VMs of 32 MiB, 2 h of 20110306 at 150× (about a minute)')
    .option('--hosts <n>', `hosts (agents) (default ${DEFAULT_CLUSTER.hosts})`)
    .option('--vms <n>', `VMs (guests) (default ${DEFAULT_CLUSTER.vms})`)
    .option('--ram <MIN-MAX>', `guest RAM in MiB (default ${DEFAULT_CLUSTER.ramMiB.join('-')})`)
    .option('--day <name|path>', `a bundled PlanetLab day or a trace folder (default ${DEFAULT_CLUSTER.day})`)
    .option('--start <duration>', 'window start in the trace, e.g. 6h (default 0)')
    .option('--duration <duration>', 'window length, e.g. 2h (default 6h)')
    .option('--speed <x>', `replay speed: a 5-min interval lasts 300/x s (default ${DEFAULT_CLUSTER.speed})`)
    .option('--policy <name>', `consolidation policy as livemig sim (default ${DEFAULT_CLUSTER.policy})`)
    .option('--seed <n>', 'seed for RS and planning (default 42)')
    .option(
      '--cpu-scale <f>',
      'real CPU per unit of emulated demand (default 0.05: a VM at 100 % may use 5 % of a core)',
    )
    .option(
      '--measure <cpu|scheduled>',
      'utilisation from the kernel CPU time of the vCPU threads (default) or the vCPUs’ own scheduled time',
    )
    .option('--parallel-outbound-per-host <n>', 'migrations out of one host at once (KubeVirt default 2)')
    .option('--parallel-per-cluster <n>', 'migrations in the whole cluster at once (KubeVirt default 5)')
    .option('--workloads <list>', `guest workloads, cycled over the VMs (${CLUSTER_WORKLOADS.join(',')})`)
    .option('--kill-host <HOST@INTERVAL>', 'fault drill: SIGKILL a host’s agent at that interval')
    .option(
      '--netns',
      'each host in its own network namespace, joined through a bridge by tc-shaped links (needs root)',
    )
    .option(
      '--link-rate <rate>',
      'with --netns: each host’s link rate, both ways (default 1Gbit, as CloudSim)',
    )
    .option(
      '--link-delay <duration|pairs>',
      'one-way latency between hosts, e.g. 5ms, or per pair [DEFAULT,]A-B=DURATION,… e.g. 1ms,0-3=20ms ' +
        '(emulated by a user-space proxy on each migration’s path, not netem)',
    )
    .option('--link-jitter <duration>', 'with --link-delay: ± this much on each chunk, order kept')
    .option(
      '--link-loss <fraction>',
      'segment loss probability, e.g. 0.001, shown as TCP shows it: a 200 ms retransmission stall',
    )
    .option(
      '--dashboard [port]',
      'serve the live cluster view (hosts, guests, power, migrations in flight) on 127.0.0.1:PORT (default: any port)',
    )
    .option(
      '--out <dir>',
      'write cluster.json (the whole report) and report.html (power curve, migration timeline) there',
    )
    .option('--json', 'print the whole report as JSON (progress still on stderr)')
    .option(
      '--repeat <n>',
      'run the same configuration N times, one after the other (with --out: DIR/run-1 … DIR/run-N), and compare ' +
        'the simulator with the median of the runs, their range shown (one run’s count is one draw)',
    );
  addMigrationFlags(cmd);
  cmd.addHelpText(
    'after',
    '\nExamples:\n' +
      '  livemig cluster --quick                                  # ~1 min: 4 hosts, 8 VMs, THR-MMT\n' +
      '  livemig cluster --hosts 8 --vms 24 --ram 64-128 --day 20110303 --duration 6h --speed 60 --policy lr-mmt\n' +
      '  livemig cluster --quick --policy mad-mc --xbzrle --parallel-per-cluster 2 --json > run.json\n' +
      '  livemig cluster --quick --kill-host 1@6                  # a host dies mid-run; its guests are reported\n' +
      '  sudo livemig cluster --quick --netns --link-rate 200Mbit # hosts in namespaces, shaped links\n' +
      '  livemig cluster --quick --link-delay 5ms --link-jitter 1ms  # latency between hosts (user-space proxy)\n' +
      '  livemig cluster --quick --dashboard 8080                 # watch it on http://127.0.0.1:8080/\n' +
      '  livemig cluster --quick --repeat 3 --out runs            # 3 runs: the simulator against their median\n' +
      '\nMigration flags (--strategy, --xbzrle, --max-bandwidth, …) apply to every migration the manager starts.\n' +
      'The run stops with exit code 1 if a guest is lost or duplicated, or a migration completes unverified.\n',
  );
  cmd.action(async (f: ClusterFlags) => {
    const repeat = f.repeat === undefined ? 1 : intFlag(f.repeat, '--repeat', 1, 50);
    if (repeat > 1) {
      if (f.dashboard !== undefined && f.dashboard !== false)
        throw new UsageError('--repeat: watch one run at a time; drop --dashboard', '--repeat');
      await repeatedRuns(f, repeat);
      return;
    }
    const o = clusterOptionsFromFlags(f);
    const where = clusterDashboardFlag(f);
    const dash = where ? await startClusterDashboard(where.host, where.port) : undefined;
    if (dash) process.stderr.write(`dashboard: ${dash.url}\n`);
    let last: ClusterView | undefined;
    let r: ClusterReport;
    try {
      r = await runCluster(o, (e) => {
        process.stderr.write(`${e.message}\n`);
        if (e.view) {
          last = e.view;
          dash?.publish(e.view);
        }
      });
    } catch (err) {
      if (dash && last) {
        // The page says how the run ended; the error itself goes to the terminal as usual.
        dash.publish({ ...last, phase: 'failed', error: (err as Error).message, inFlight: [] });
        await holdDashboard(dash);
      }
      await dash?.close();
      throw err;
    }
    if (f.out) await writeRun(f.out, r);
    if (f.json) {
      process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      await dash?.close();
      return;
    }
    process.stdout.write(`${summary(r)}\n${agreementText(r)}\n`);
    if (dash) {
      await holdDashboard(dash);
      await dash.close();
    }
  });
}
