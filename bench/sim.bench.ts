/**
 * Simulator benchmark (`npm run bench:sim`):
 *  1. speed — reading one bundled PlanetLab day and all ten (data/planetlab, Brotli trace packs), then every policy
 *     combination on one day (20110303, 1052 VMs, 800 hosts) in CloudSim-compatible mode; target < 1.5 s per
 *     policy-day (CloudSim 3.0.3 takes 15–55 s on this machine kind);
 *  2. scale — 100 000 VMs on 50 000 hosts for 24 h, synthetic traces, in a fresh process; target < 5 min, < 4 GiB.
 * Flags: --skip-scale, --scale-only, --vms N --hosts N (scale size), --candidates N (PABFD sample, default 64).
 * Writes results/sim-bench.json.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Table from 'cli-table3';
import {
  loadPlanetlabDay,
  PLANETLAB_DAYS,
  parsePolicy,
  planetlabDatacenter,
  type SimResult,
  simulate,
  syntheticWorkload,
} from '../src/sim/index.js';

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const value = (name: string, def: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};

function scaleRun(vms: number, hosts: number, candidates: number) {
  const t0 = performance.now();
  const w = syntheticWorkload({ vms, seed: 1 });
  const genMs = performance.now() - t0;
  const r = simulate(w, {
    mode: 'livemig',
    policy: parsePolicy('lr-mmt'),
    datacenter: planetlabDatacenter(hosts),
    placementCandidates: candidates,
    series: false,
  });
  const { series: _s, ...rest } = r;
  return { ...rest, genMs, maxRssMiB: process.resourceUsage().maxRSS / 1024 };
}

if (flag('--scale-child')) {
  const out = scaleRun(value('--vms', 100_000), value('--hosts', 50_000), value('--candidates', 64));
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}

const OUT = new URL('../results/sim-bench.json', import.meta.url);
// A partial run (--skip-scale / --scale-only) keeps the other part of the previous results.
const previous = existsSync(OUT) ? (JSON.parse(readFileSync(OUT, 'utf8')) as Record<string, unknown>) : {};
const report: Record<string, unknown> = {
  ...previous,
  date: new Date().toISOString(),
  node: process.version,
};

if (!flag('--scale-only')) {
  const loadStart = (await import('node:os')).loadavg()[0]!;
  let t0 = performance.now();
  const w = await loadPlanetlabDay('20110303');
  const oneDayMs = performance.now() - t0;
  t0 = performance.now();
  for (const day of PLANETLAB_DAYS) await loadPlanetlabDay(day);
  const tenDaysMs = performance.now() - t0;
  console.log(
    `load: 20110303 ${oneDayMs.toFixed(1)} ms (first, cold), all ten days ${tenDaysMs.toFixed(1)} ms ` +
      `(load average ${loadStart.toFixed(2)})`,
  );
  report.load = { oneDayMs, tenDaysMs, loadAverage: loadStart };
  const names = ['npa', 'dvfs'];
  for (const o of ['thr', 'iqr', 'mad', 'lr', 'lrr'])
    for (const s of ['mmt', 'rs', 'mc']) names.push(`${o}-${s}`);
  names.push('thr-mmt-1.0');
  const rows: { policy: string; ms: number; energyKWh: number; migrations: number }[] = [];
  const load = (await import('node:os')).loadavg()[0]!;
  const table = new Table({
    head: ['policy (cloudsim mode, 20110303)', 'best of 2, ms', 'kWh', 'migrations'],
  });
  for (const name of names) {
    let best: SimResult | undefined;
    for (let i = 0; i < 2; i++) {
      const r = simulate(w, { mode: 'cloudsim', policy: parsePolicy(name), series: false, seed: 1 });
      if (!best || r.wallMs < best.wallMs) best = r;
    }
    rows.push({
      policy: best!.policy,
      ms: best!.wallMs,
      energyKWh: best!.energyKWh,
      migrations: best!.migrations,
    });
    table.push([best!.policy, best!.wallMs.toFixed(0), best!.energyKWh.toFixed(2), best!.migrations]);
  }
  const worst = Math.max(...rows.map((r) => r.ms));
  console.log(table.toString());
  console.log(
    `slowest policy-day: ${worst.toFixed(0)} ms (target < 1500 ms) → ${worst < 1500 ? 'PASS' : 'FAIL'}`,
  );
  report.speed = {
    day: '20110303',
    rows,
    slowestMs: worst,
    targetMs: 1500,
    pass: worst < 1500,
    loadAverage: load,
  };
  console.log(
    `(1-min load average at start: ${load.toFixed(2)} on ${(await import('node:os')).cpus().length} cores)`,
  );
}

if (!flag('--skip-scale')) {
  const vms = value('--vms', 100_000);
  const hosts = value('--hosts', 50_000);
  const candidates = value('--candidates', 64);
  console.log(
    `scale: ${vms} VMs on ${hosts} hosts, 24 h, livemig LR-MMT-1.2, PABFD sample ${candidates} (fresh process)…`,
  );
  const t0 = performance.now();
  const out = execFileSync(
    process.execPath,
    [
      '--import',
      'tsx',
      fileURLToPath(import.meta.url),
      '--scale-child',
      '--vms',
      String(vms),
      '--hosts',
      String(hosts),
      '--candidates',
      String(candidates),
    ],
    { encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  const wallS = (performance.now() - t0) / 1000;
  const r = JSON.parse(out.trim().split('\n').pop()!) as ReturnType<typeof scaleRun>;
  const pass = wallS < 300 && r.maxRssMiB < 4096;
  const t = new Table({
    head: ['VMs', 'hosts', 'wall s (process)', 'sim s', 'max RSS MiB', 'kWh', 'migrations', 'verdict'],
  });
  t.push([
    vms,
    hosts,
    wallS.toFixed(1),
    (r.wallMs / 1000).toFixed(1),
    r.maxRssMiB.toFixed(0),
    r.energyKWh.toFixed(0),
    r.migrations,
    pass ? 'PASS' : 'FAIL',
  ]);
  console.log(t.toString());
  report.scale = { vms, hosts, candidates, wallS, targetS: 300, targetMiB: 4096, pass, result: r };
}

mkdirSync(new URL('../results/', import.meta.url), { recursive: true });
writeFileSync(OUT, `${JSON.stringify(report, null, 2)}\n`);
console.log('wrote results/sim-bench.json');
