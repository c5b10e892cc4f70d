/**
 * Downtime of an idle guest (`npm run bench:downtime`), the baseline for issue 17: real agents as separate processes
 * on loopback, N pre-copy migrations of an idle guest, first on a quiet machine, then while two busy-loop processes
 * keep both cores busy. Every migration must end `completed` and verified, or the bench fails.
 *
 * For each phase it prints downtime median, p90, p99 and max, the load average, and where the downtime goes: the
 * steps between the source's report events (guest paused, last pages + vCPU state + digest sent, READY, resumed).
 * The events carry millisecond timestamps; the moment of the pause itself is the resume event minus `downtimeMs`.
 * Steps are therefore quantised to 1 ms: the table gives their median and their mean (the mean of quantised steps
 * is not biased by the rounding, so it is the sub-millisecond figure).
 *
 * One warm-up migration (not counted) comes first. Writes results/bench-downtime.json. Options: --count N (default 50), --full (also a 256 MiB guest).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import Table from 'cli-table3';
import { AgentClient } from '../src/agent/index.js';
import { type ChildAgent, spawnAgent } from '../src/agent/spawn.js';
import type { MigrationReport } from '../src/migration/index.js';
import { percentile } from '../src/migration/stats.js';

// Agents run from the built dist/ (`bench:downtime` builds first): what users run, without the TypeScript loader.
process.env.LIVEMIG_CLI ??= fileURLToPath(new URL('../dist/cli/bin.js', import.meta.url));

const MiB = 1024 * 1024;
const full = process.argv.includes('--full');
const countAt = process.argv.indexOf('--count');
const count = countAt > 0 ? Number(process.argv[countAt + 1]) : 50;
if (!Number.isInteger(count) || count < 1) {
  process.stderr.write('--count takes a whole number of migrations, e.g. --count 20\n');
  process.exit(2);
}
const sizes = full ? [64 * MiB, 256 * MiB] : [64 * MiB];

/** The switch-over's steps, as the source's report events delimit them (ms). */
const STEPS = ['pause', 'lastPagesStateDigest', 'destinationCheck', 'goResumed'] as const;
type Step = (typeof STEPS)[number];
const STEP_NAMES: Record<Step, string> = {
  pause: 'pause the vCPUs (paused → "guest paused")',
  lastPagesStateDigest: 'last pages + vCPU state + digest sent',
  destinationCheck: 'destination: receive, verify digest, READY',
  goResumed: 'GO → RESUMED (destination resumes, acknowledges)',
};

interface Run {
  downtimeMs: number;
  status: string;
  verify: string;
  verified: boolean;
  steps: Record<Step, number> | undefined;
}

/** Seconds of an event (`"1.234s text"`) that starts with `prefix` after its timestamp; the last such one. */
function eventAt(events: readonly string[], prefix: string): number | undefined {
  for (let i = events.length - 1; i >= 0; i--) {
    const m = /^(\d+\.\d+)s (.*)$/.exec(events[i]!);
    if (m?.[2]?.startsWith(prefix)) return Number(m[1]) * 1000;
  }
  return undefined;
}

function steps(r: MigrationReport): Run['steps'] {
  const paused = eventAt(r.events, 'guest paused');
  const sent = eventAt(r.events, 'switch-over: last pages, vCPU state and digest sent');
  const ready = eventAt(r.events, 'switch-over: the destination verified the digest');
  const resumed = eventAt(r.events, 'guest resumed on the destination');
  if (paused === undefined || sent === undefined || ready === undefined || resumed === undefined)
    return undefined;
  const pausedAt = resumed - r.downtimeMs;
  return {
    pause: paused - pausedAt,
    lastPagesStateDigest: sent - paused,
    destinationCheck: ready - sent,
    goResumed: resumed - ready,
  };
}

async function migrateOnce(a: AgentClient, b: AgentClient, dst: ChildAgent, ramBytes: number, n: number) {
  const id = `downtime-${n}`;
  await a.startGuest({ ramBytes, seed: n, workload: { name: 'idle' } }, id);
  await new Promise((r) => setTimeout(r, 100));
  const started = await a.migrate(id, dst.address, { maxBandwidth: 0 });
  const report = await a.follow(started.id, undefined, 50);
  await (report.status === 'completed' ? b : a).stopGuest(id).catch(() => undefined);
  if (report.status !== 'completed' || !report.verified) {
    throw new Error(
      `migration ${n} ended ${report.status}, verified ${report.verified} (verify ${report.verify})` +
        (report.error ? `: ${report.error.code} ${report.error.message}` : ''),
    );
  }
  return report;
}

/** Two processes spinning on the CPU: the "loaded" machine of issue 17. */
function busyLoops(): ChildProcess[] {
  return [0, 1].map(() => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
}

async function stopAll(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((res) => {
          if (c.exitCode !== null || c.signalCode !== null) return res();
          c.once('exit', () => res());
          c.kill('SIGKILL');
        }),
    ),
  );
}

const median = (xs: number[]) =>
  percentile(
    [...xs].sort((x, y) => x - y),
    50,
  );
const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);

interface Phase {
  ramBytes: number;
  load: 'quiet' | 'loaded';
  loadBefore: number;
  loadAfter: number;
  downtimeMs: { median: number; p90: number; p99: number; max: number };
  stepsMedianMs: Record<Step, number>;
  stepsMeanMs: Record<Step, number>;
  runsWithoutSteps: number;
  verify: string[];
  runs: Run[];
}

async function phase(ramBytes: number, load: Phase['load'], a: AgentClient, b: AgentClient, dst: ChildAgent) {
  const busy = load === 'loaded' ? busyLoops() : [];
  const runs: Run[] = [];
  try {
    if (busy.length > 0) await new Promise((r) => setTimeout(r, 2000)); // let the load average start to rise
    const loadBefore = loadavg()[0]!;
    for (let n = 0; n < count; n++) {
      process.stderr.write(`\r${ramBytes / MiB} MiB, ${load}: ${n + 1}/${count}`);
      const r = await migrateOnce(a, b, dst, ramBytes, n);
      runs.push({
        downtimeMs: r.downtimeMs,
        status: r.status,
        verify: r.verify,
        verified: r.verified,
        steps: steps(r),
      });
    }
    process.stderr.write('\n');
    const loadAfter = loadavg()[0]!;
    const d = runs.map((r) => r.downtimeMs).sort((x, y) => x - y);
    const withSteps = runs.flatMap((r) => (r.steps ? [r.steps] : []));
    const per = (f: (xs: number[]) => number) =>
      Object.fromEntries(STEPS.map((k) => [k, f(withSteps.map((s) => s[k]))])) as Record<Step, number>;
    const result: Phase = {
      ramBytes,
      load,
      loadBefore,
      loadAfter,
      downtimeMs: {
        median: percentile(d, 50),
        p90: percentile(d, 90),
        p99: percentile(d, 99),
        max: d.at(-1)!,
      },
      stepsMedianMs: per(median),
      stepsMeanMs: per(mean),
      runsWithoutSteps: runs.length - withSteps.length,
      verify: [...new Set(runs.map((r) => `${r.verify}${r.verified ? ' (verified)' : ''}`))],
      runs,
    };
    return result;
  } finally {
    await stopAll(busy);
  }
}

async function main(): Promise<void> {
  const [src, dst] = await Promise.all([
    spawnAgent('127.0.0.1', ['--quiet']),
    spawnAgent('127.0.0.1', ['--quiet']),
  ]);
  const a = new AgentClient(src.address);
  const b = new AgentClient(dst.address);
  const phases: Phase[] = [];
  try {
    // The first migration into a fresh agent pays for its worker threads' start-up; it is not counted.
    await migrateOnce(a, b, dst, sizes[0]!, -1);
    for (const ram of sizes) {
      for (const load of ['quiet', 'loaded'] as const) phases.push(await phase(ram, load, a, b, dst));
    }
  } finally {
    await Promise.all([src.stop(), dst.stop()]);
  }

  const f = (x: number) => x.toFixed(2);
  const table = new Table({
    head: ['guest', 'machine', 'load avg (1 min)', 'downtime ms: median', 'p90', 'p99', 'max', 'verified'],
  });
  for (const p of phases) {
    table.push([
      `idle ${p.ramBytes / MiB} MiB`,
      p.load === 'quiet' ? 'no added load' : '+ 2 busy loops',
      `${p.loadBefore.toFixed(1)} → ${p.loadAfter.toFixed(1)}`,
      f(p.downtimeMs.median),
      f(p.downtimeMs.p90),
      f(p.downtimeMs.p99),
      f(p.downtimeMs.max),
      `${p.runs.filter((r) => r.verified).length}/${p.runs.length} ${p.verify.join(', ')}`,
    ]);
  }
  const stepTable = new Table({
    head: [
      'step (source report events, 1 ms resolution)',
      ...phases.map((p) => `${p.ramBytes / MiB} MiB ${p.load}`),
    ],
  });
  for (const k of STEPS) {
    stepTable.push([
      STEP_NAMES[k],
      ...phases.map((p) => `${f(p.stepsMedianMs[k])} (mean ${f(p.stepsMeanMs[k])})`),
    ]);
  }
  stepTable.push(['downtime (report, median)', ...phases.map((p) => f(p.downtimeMs.median))]);
  const missing = phases.reduce((s, p) => s + p.runsWithoutSteps, 0);
  mkdirSync('results', { recursive: true });
  writeFileSync(
    'results/bench-downtime.json',
    `${JSON.stringify({ date: new Date().toISOString(), count, full, phases }, null, 2)}\n`,
  );
  process.stdout.write(
    `${table.toString()}\nwhere the downtime goes, median ms (mean ms):\n${stepTable.toString()}\n` +
      (missing > 0
        ? `${missing} migration(s) lacked a switch-over event and are left out of the steps\n`
        : '') +
      `${count} migrations per row; written to results/bench-downtime.json\n`,
  );
}

await main();
