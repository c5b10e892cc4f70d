/**
 * Downtime of an idle guest (`npm run bench:downtime`), issue 17: real agents as separate processes on loopback, N
 * pre-copy migrations of an idle guest, first on a quiet machine, then while a second process keeps both cores
 * busy (two spinning threads). Every migration must end `completed` and verified, or the bench fails.
 *
 * For each phase it prints downtime median, p90, p99 and max, the load average, the production anchor (Google's
 * fleet, VEE 2018: 50 ms median, 300 ms p99), and where the downtime goes: the report's `switchover` steps, timed
 * with performance.now() (µs resolution) on the source — pause → last pages → state → digest → send → destination
 * check → resume + ack — and the destination's own account of its part (drain, verify, state load, GO, resume),
 * sent back in RESUMED. Agents whose reports lack those steps (an older build) fall back to the report's events.
 *
 * `--baseline CLI`: also run agents from another build (e.g. the previous release's dist/cli/bin.js), alternating
 * migrations between the two pairs within each phase, so both see the same load; the table gives both and the ratio.
 *
 * `--go-with-digest`: also a pair of this build migrating with `goWithDigest: true` (GO in the digest's write: one
 * round trip less, the point of no return at the digest's write instead of at GO).
 *
 * After each migration it times the floor under the switch-over's waits in the same conditions (hop-floor.ts: four
 * one-way 64-byte messages between two plain Node processes, as SWITCHOVER, READY, GO, RESUMED) and prints it as the
 * last step.
 *
 * `--priority-scopes`: also pairs of this build with LIVEMIG_SWITCHOVER_PRIORITY=migration (the switch-over's threads
 * at nice −10 for the whole migration) and =off (never raised), beside the default (raised in the paused window
 * only: src/switchover-priority.ts). Each row says what the window ran at (`report.switchover.priority`).
 *
 * One warm-up migration per pair (not counted) comes first. Writes results/bench-downtime.json. Options: --count N
 * (default 50), --full (also a 256 MiB guest), --baseline CLI, --go-with-digest, --priority-scopes.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import Table from 'cli-table3';
import { AgentClient } from '../src/agent/index.js';
import { type ChildAgent, spawnAgent } from '../src/agent/spawn.js';
import {
  describeDowntime,
  downtimeDistribution,
  type MigrationReport,
  type SwitchoverPriority,
  type SwitchoverTimes,
} from '../src/migration/index.js';
import { percentile } from '../src/migration/stats.js';
import { type HopFloor, startHopFloor } from './hop-floor.js';

// Agents run from the built dist/ (`bench:downtime` builds first): what users run, without the TypeScript loader.
const ownCli = fileURLToPath(new URL('../dist/cli/bin.js', import.meta.url));

const MiB = 1024 * 1024;
const full = process.argv.includes('--full');
const argOf = (name: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const count = Number(argOf('--count') ?? 50);
if (!Number.isInteger(count) || count < 1) {
  process.stderr.write('--count takes a whole number of migrations, e.g. --count 20\n');
  process.exit(2);
}
const baselineCli = argOf('--baseline');
const goWithDigest = process.argv.includes('--go-with-digest');
const priorityScopes = process.argv.includes('--priority-scopes');
const sizes = full ? [64 * MiB, 256 * MiB] : [64 * MiB];

/** The switch-over's steps (ms), from the report's `switchover` (µs resolution). */
const STEPS = [
  'pauseMs',
  'stateMs',
  'lastPagesMs',
  'digestMs',
  'sendMs',
  'checkMs',
  'ackMs',
  'dst.stateMs',
  'dst.applyMs',
  'dst.drainMs',
  'dst.verifyMs',
  'dst.loadStateMs',
  'dst.goMs',
  'dst.resumeMs',
  'dst.totalMs',
] as const;
type Step = (typeof STEPS)[number];
const STEP_NAMES: Record<Step, string> = {
  pauseMs: 'source: pause the vCPUs (requested → all parked)',
  stateMs: 'source: vCPU state taken and encoded (ahead of the last pages)',
  lastPagesMs: 'source: last dirty-log sync + last pages written',
  digestMs: 'source: RAM + vCPU digest',
  sendMs: 'source: VCPU_STATE + digest (+ GO) written, one write',
  checkMs: 'written → READY read (link + destination check; with GO: + resume)',
  ackMs: 'READY → RESUMED read (GO after READY: GO, resume, ack)',
  'dst.stateMs': '  destination (before the clock below): VCPU_STATE taken → SWITCHOVER taken',
  'dst.applyMs': "    of which: last pages after the state applied on the connection's thread",
  'dst.drainMs': '  destination: page sink drained',
  'dst.verifyMs': '  destination: digests compared',
  'dst.loadStateMs': '  destination: vCPU state loaded',
  'dst.goMs': '  destination: READY written, GO taken',
  'dst.resumeMs': '  destination: vCPUs woken',
  'dst.totalMs': '  destination: SWITCHOVER taken → resumed',
};

interface Run {
  downtimeMs: number;
  verified: boolean;
  verify: string;
  goWithDigest: boolean | undefined;
  steps: Partial<Record<Step, number>> | undefined;
  /** What the paused window ran at, source/destination: the nice value, or the reason it was not raised. */
  priority: string;
}

/** Seconds of the last event (`"1.234s text"`) that starts with `prefix` after its timestamp. */
function eventAt(events: readonly string[], prefix: string): number | undefined {
  for (let i = events.length - 1; i >= 0; i--) {
    const m = /^(\d+\.\d+)s (.*)$/.exec(events[i]!);
    if (m?.[2]?.startsWith(prefix)) return Number(m[1]) * 1000;
  }
  return undefined;
}

function steps(r: MigrationReport): Run['steps'] {
  const s: SwitchoverTimes | undefined = r.switchover;
  if (s) {
    const out: Partial<Record<Step, number>> = {
      pauseMs: s.pauseMs,
      stateMs: s.stateMs,
      lastPagesMs: s.lastPagesMs,
      digestMs: s.digestMs,
      sendMs: s.sendMs,
      checkMs: s.checkMs,
      ackMs: s.ackMs,
    };
    for (const [k, v] of Object.entries(s.destination ?? {})) out[`dst.${k}` as Step] = v;
    return out;
  }
  // An older build: its events (1 ms resolution) delimit fewer steps.
  const paused = eventAt(r.events, 'guest paused');
  const sent = eventAt(r.events, 'switch-over: last pages, vCPU state and digest sent');
  const ready = eventAt(r.events, 'switch-over: the destination verified the digest');
  const resumed = eventAt(r.events, 'guest resumed on the destination');
  if (paused === undefined || sent === undefined || ready === undefined || resumed === undefined)
    return undefined;
  const pausedAt = resumed - r.downtimeMs;
  return {
    pauseMs: paused - pausedAt,
    lastPagesMs: sent - paused,
    checkMs: ready - sent,
    ackMs: resumed - ready,
  };
}

interface Pair {
  name:
    | 'new'
    | 'new, GO with the digest'
    | 'new, priority for the whole migration'
    | 'new, priority off'
    | 'baseline';
  /** Migration options beyond the bench's own. */
  options: Record<string, unknown>;
  src: ChildAgent;
  dst: ChildAgent;
  a: AgentClient;
  b: AgentClient;
}

async function startPair(
  name: Pair['name'],
  cli: string,
  options: Record<string, unknown> = {},
  scope?: 'migration' | 'off',
): Promise<Pair> {
  process.env.LIVEMIG_CLI = cli;
  // The agents' environment (spawnAgent passes this process's): the scope of the switch-over's raised priority.
  if (scope) process.env.LIVEMIG_SWITCHOVER_PRIORITY = scope;
  else delete process.env.LIVEMIG_SWITCHOVER_PRIORITY;
  const [src, dst] = await Promise.all([
    spawnAgent('127.0.0.1', ['--quiet']),
    spawnAgent('127.0.0.1', ['--quiet']),
  ]);
  delete process.env.LIVEMIG_SWITCHOVER_PRIORITY;
  return { name, options, src, dst, a: new AgentClient(src.address), b: new AgentClient(dst.address) };
}

async function migrateOnce(p: Pair, ramBytes: number, n: number): Promise<MigrationReport> {
  const id = `downtime-${p.name.replace(/\W+/g, '-')}-${n}`;
  await p.a.startGuest({ ramBytes, seed: n, workload: { name: 'idle' } }, id);
  await new Promise((r) => setTimeout(r, 100));
  const started = await p.a.migrate(id, p.dst.address, { maxBandwidth: 0, ...p.options });
  const report = await p.a.follow(started.id, undefined, 50);
  await (report.status === 'completed' ? p.b : p.a).stopGuest(id).catch(() => undefined);
  if (report.status !== 'completed' || !report.verified) {
    throw new Error(
      `${p.name} migration ${n} ended ${report.status}, verified ${report.verified} (verify ${report.verify})` +
        (report.error ? `: ${report.error.code} ${report.error.message}` : ''),
    );
  }
  return report;
}

/** A second process keeping both cores busy: its main thread and one worker thread spin. */
function busyProcess(): ChildProcess {
  const code =
    "const { Worker } = require('node:worker_threads'); new Worker('for (;;) {}', { eval: true }); for (;;) {}";
  return spawn(process.execPath, ['-e', code], { stdio: 'ignore' });
}

async function stop(c: ChildProcess | undefined): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  await new Promise<void>((res) => {
    c.once('exit', () => res());
    c.kill('SIGKILL');
  });
}

/** "nice −10 (2 threads) / nice −10 (2 threads)", or the reason it was not raised; "–" from an older build. */
function priorityOf(r: MigrationReport): string {
  const p = r.switchover?.priority;
  if (!p) return '–';
  const one = (x: SwitchoverPriority | undefined) =>
    !x
      ? '?'
      : x.nice === null
        ? `not raised (${x.reason ?? '?'})`
        : `nice ${x.nice} (${x.threads} threads, ${x.scope})`;
  return `${one(p.source)} / ${one(p.destination)}`;
}

const median = (xs: number[]) =>
  percentile(
    [...xs].sort((x, y) => x - y),
    50,
  );

interface Phase {
  ramBytes: number;
  load: 'quiet' | 'loaded';
  build: Pair['name'];
  loadBefore: number;
  loadAfter: number;
  downtimeMs: { median: number; p90: number; p99: number; max: number };
  stepsMedianMs: Partial<Record<Step, number>>;
  stepsP99Ms: Partial<Record<Step, number>>;
  runsWithoutSteps: number;
  goWithDigest: number;
  runs: Run[];
  /** Four one-way messages between two plain processes (hop-floor.ts), one sequence after each migration. */
  floorMs: { median: number; p99: number; samples: number[] };
}

async function phases(
  ramBytes: number,
  load: Phase['load'],
  pairs: Pair[],
  floor: HopFloor,
): Promise<Phase[]> {
  const busy = load === 'loaded' ? busyProcess() : undefined;
  const runs = new Map<Pair['name'], Run[]>(pairs.map((p) => [p.name, []]));
  const floorMs: number[] = [];
  try {
    if (busy) await new Promise((r) => setTimeout(r, 2000)); // let the load average start to rise
    const loadBefore = loadavg()[0]!;
    for (let n = 0; n < count; n++) {
      for (const p of pairs) {
        process.stderr.write(`\r${ramBytes / MiB} MiB, ${load}: ${n + 1}/${count} (${p.name})   `);
        const r = await migrateOnce(p, ramBytes, n);
        runs.get(p.name)!.push({
          downtimeMs: r.downtimeMs,
          verified: r.verified,
          verify: r.verify,
          goWithDigest: r.switchover?.goWithDigest,
          steps: steps(r),
          priority: priorityOf(r),
        });
        floorMs.push(await floor.sample());
      }
    }
    process.stderr.write('\n');
    const loadAfter = loadavg()[0]!;
    return pairs.map((p) => {
      const rs = runs.get(p.name)!;
      const d = downtimeDistribution(rs.map((r) => r.downtimeMs));
      const withSteps = rs.flatMap((r) => (r.steps ? [r.steps] : []));
      const per = (f: (xs: number[]) => number) => {
        const out: Partial<Record<Step, number>> = {};
        for (const k of STEPS) {
          const xs = withSteps.flatMap((s) => (s[k] === undefined ? [] : [s[k]!]));
          if (xs.length > 0) out[k] = f(xs);
        }
        return out;
      };
      return {
        ramBytes,
        load,
        build: p.name,
        loadBefore,
        loadAfter,
        downtimeMs: { median: d.medianMs, p90: d.p90Ms, p99: d.p99Ms, max: d.maxMs },
        stepsMedianMs: per(median),
        stepsP99Ms: per((xs) =>
          percentile(
            [...xs].sort((x, y) => x - y),
            99,
          ),
        ),
        runsWithoutSteps: rs.length - withSteps.length,
        goWithDigest: rs.filter((r) => r.goWithDigest).length,
        runs: rs,
        floorMs: {
          median: median(floorMs),
          p99: percentile(
            [...floorMs].sort((x, y) => x - y),
            99,
          ),
          samples: floorMs,
        },
      };
    });
  } finally {
    await stop(busy);
  }
}

async function main(): Promise<void> {
  const cli = process.env.LIVEMIG_CLI ?? ownCli;
  const pairs = [await startPair('new', cli)];
  if (goWithDigest) pairs.push(await startPair('new, GO with the digest', cli, { goWithDigest: true }));
  if (priorityScopes) {
    pairs.push(await startPair('new, priority for the whole migration', cli, {}, 'migration'));
    pairs.push(await startPair('new, priority off', cli, {}, 'off'));
  }
  if (baselineCli) pairs.push(await startPair('baseline', baselineCli));
  const results: Phase[] = [];
  const floor = await startHopFloor();
  try {
    // The first migration into a fresh agent pays for its worker threads' start-up; it is not counted.
    for (const p of pairs) await migrateOnce(p, sizes[0]!, -1);
    for (const ram of sizes) {
      for (const load of ['quiet', 'loaded'] as const)
        results.push(...(await phases(ram, load, pairs, floor)));
    }
  } finally {
    floor.stop();
    await Promise.all(pairs.flatMap((p) => [p.src.stop(), p.dst.stop()]));
  }

  const f = (x: number | undefined) => (x === undefined ? '–' : x >= 10 ? x.toFixed(1) : x.toFixed(3));
  const table = new Table({
    head: [
      'guest',
      'build',
      'machine',
      'load avg (1 min)',
      'downtime ms: median',
      'p90',
      'p99',
      'max',
      'switch-over threads (source / destination)',
    ],
  });
  for (const p of results) {
    const base = baselineCli
      ? results.find((q) => q.build === 'baseline' && q.ramBytes === p.ramBytes && q.load === p.load)
      : undefined;
    const ratio =
      base && p.build === 'new'
        ? ` (${(base.downtimeMs.median / p.downtimeMs.median).toFixed(1)}× shorter)`
        : '';
    table.push([
      `idle ${p.ramBytes / MiB} MiB`,
      p.build,
      p.load === 'quiet' ? 'no added load' : '+ a process spinning on both cores',
      `${p.loadBefore.toFixed(1)} → ${p.loadAfter.toFixed(1)}`,
      f(p.downtimeMs.median) + ratio,
      f(p.downtimeMs.p90),
      f(p.downtimeMs.p99),
      f(p.downtimeMs.max),
      [...new Set(p.runs.map((r) => r.priority))].join('; '),
    ]);
  }
  const stepTable = new Table({
    head: [
      'step (report.switchover, µs resolution): median / p99 ms',
      ...results.map((p) => `${p.build} ${p.ramBytes / MiB} MiB ${p.load}`),
    ],
  });
  for (const k of STEPS) {
    if (results.every((p) => p.stepsMedianMs[k] === undefined)) continue;
    stepTable.push([
      STEP_NAMES[k],
      ...results.map((p) => `${f(p.stepsMedianMs[k])} / ${f(p.stepsP99Ms[k])}`),
    ]);
  }
  stepTable.push([
    'floor: 4 one-way messages between two plain processes (hop-floor.ts)',
    ...results.map((p) => `${f(p.floorMs.median)} / ${f(p.floorMs.p99)}`),
  ]);
  stepTable.push([
    'downtime (report): median / p99',
    ...results.map((p) => `${f(p.downtimeMs.median)} / ${f(p.downtimeMs.p99)}`),
  ]);
  const anchors = results.map(
    (p) =>
      `${p.build}, ${p.ramBytes / MiB} MiB, ${p.load}: ${describeDowntime(
        downtimeDistribution(p.runs.map((r) => r.downtimeMs)),
        'idle-guest migrations',
      )}`,
  );
  const missing = results.reduce((s, p) => s + p.runsWithoutSteps, 0);
  mkdirSync('results', { recursive: true });
  writeFileSync(
    'results/bench-downtime.json',
    `${JSON.stringify({ date: new Date().toISOString(), count, full, baseline: baselineCli !== undefined, phases: results }, null, 2)}\n`,
  );
  process.stdout.write(
    `${table.toString()}\nwhere the downtime goes:\n${stepTable.toString()}\n${anchors.join('\n')}\n` +
      (missing > 0
        ? `${missing} migration(s) lacked switch-over steps and are left out of the steps\n`
        : '') +
      `${count} migrations per row; GO with the digest in ${results
        .filter((p) => p.build !== 'baseline')
        .map((p) => `${p.goWithDigest}/${p.runs.length}`)
        .join(', ')}; written to results/bench-downtime.json\n`,
  );
}

await main();
