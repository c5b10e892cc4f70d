/**
 * The full fault matrix (`npm run faults`): every strategy × phase × fault of src/faults/matrix.ts, each cell a
 * real migration between two fresh agent processes through the fault proxy, checked (guest in exactly one place,
 * oracle, error code, retry). Prints a table per strategy and the counts by outcome, writes results/faults.json.
 *
 *   npm run faults                       # all cells (~15-20 min on 2 cores)
 *   npm run faults -- --only precopy/    # cells whose id contains the text (strategy/phase/fault)
 *   npm run faults -- --only /postcopy/ --merge   # rerun those cells, keep the others from results/faults.json
 *   npm run faults -- --only /go/ --repeat 5      # each cell 5 times; a table of every run's guest placement
 *
 * Every run counts towards two totals that must stay 0: guests running nowhere without a report saying where they
 * wait, and guests running on two hosts.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import Table from 'cli-table3';
import {
  allCells,
  type CellResult,
  cellId,
  FAULTS,
  MATRIX_GUEST,
  MATRIX_OPTIONS,
  MATRIX_STRATEGIES,
  outcomeLabel,
  phasesOf,
  runCell,
} from '../src/faults/index.js';

const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const only = opt('only');
const repeat = Number(opt('repeat') ?? 1);
if (!(Number.isInteger(repeat) && repeat >= 1 && repeat <= 1000)) {
  process.stderr.write(`--repeat: expected a whole number 1..1000, got "${opt('repeat')}"\n`);
  process.exit(2);
}
const cells = allCells().filter((c) => !only || cellId(c).includes(only));
const t0 = performance.now();
const results: CellResult[] = [];
/** Every run of every cell (with --repeat, `results` keeps the last run of each). */
const runs: CellResult[] = [];
const total = cells.length * repeat;
for (let n = 0; n < total; n++) {
  const c = cells[n % cells.length]!;
  process.stderr.write(`[${n + 1}/${total}] ${cellId(c)} ... `);
  const r = await runCell(c);
  runs.push(r);
  const old = results.findIndex((x) => x.id === r.id);
  if (old >= 0) results.splice(old, 1);
  results.push(r);
  process.stderr.write(
    `${r.ok ? 'ok' : 'FAIL'} ${outcomeLabel(r)} (${(r.ms / 1000).toFixed(1)} s)${
      [...r.problems, ...r.notes].length ? `: ${[...r.problems, ...r.notes].join('; ')}` : ''
    }\n`,
  );
}
const wallMs = performance.now() - t0;
if (argv.includes('--merge') && existsSync('results/faults.json')) {
  const old = JSON.parse(readFileSync('results/faults.json', 'utf8')) as { cells: CellResult[] };
  const fresh = new Set(results.map((r) => r.id));
  results.unshift(...old.cells.filter((r) => !fresh.has(r.id)).map((r) => ({ ...r, notes: r.notes ?? [] })));
  const order = allCells().map(cellId);
  results.sort((a, b) => order.indexOf(a.id) - order.indexOf(b.id));
}

// One table per strategy: phases down, faults across, each cell its outcome (✗ marks a failed check).
const short = (r: CellResult) => {
  const label = outcomeLabel(r)
    .replace('completed', 'ok')
    .replace('CONNECTION_LOST', 'CONN_LOST')
    .replace('POSTCOPY_LINK_LOST', 'PC_LINK_LOST');
  return r.ok ? label : `✗ ${label}`;
};
for (const s of MATRIX_STRATEGIES) {
  const rows = phasesOf(s)
    .map((p) => [p, ...FAULTS.map((f) => results.find((r) => r.id === `${s}/${p}/${f}`))] as const)
    .filter(([, ...rs]) => rs.some(Boolean));
  if (rows.length === 0) continue;
  const t = new Table({ head: [s, ...FAULTS] });
  for (const [p, ...rs] of rows) t.push([p, ...rs.map((r) => (r ? short(r) : '-'))]);
  process.stdout.write(`${t.toString()}\n`);
}
// Guest placement over every run: the two totals that must be 0, then each cell's outcomes.
// (A host that died with the guest on it — expected holder none — is a lost guest, reported as such, not this.)
const nowhere = (r: CellResult) => r.holder === 'none' && r.pausedOn === null && r.expected.holder !== 'none';
const twice = (r: CellResult) => r.holder === 'both' || r.problems.some((p) => p.includes('both hosts'));
if (repeat > 1 || runs.length !== results.length) {
  const pt = new Table({
    head: ['cell', 'runs', 'ok', 'outcomes (runs)', 'nowhere, unreported', 'on two hosts'],
  });
  for (const c of cells) {
    const rs = runs.filter((r) => r.id === cellId(c));
    const outcomes = new Map<string, number>();
    for (const r of rs) outcomes.set(outcomeLabel(r), (outcomes.get(outcomeLabel(r)) ?? 0) + 1);
    pt.push([
      cellId(c),
      rs.length,
      rs.filter((r) => r.ok).length,
      [...outcomes].map(([k, v]) => `${k} (${v})`).join('\n'),
      rs.filter(nowhere).length,
      rs.filter(twice).length,
    ]);
  }
  process.stdout.write(`${pt.toString()}\n`);
}
process.stdout.write(
  `${runs.length} runs: ${runs.filter(nowhere).length} guests running nowhere without a report saying so, ` +
    `${runs.filter(twice).length} running on two hosts, ${runs.filter((r) => !r.ok).length} runs with a failed check\n`,
);
const counts = new Map<string, number>();
for (const r of results) counts.set(outcomeLabel(r), (counts.get(outcomeLabel(r)) ?? 0) + 1);
const ct = new Table({ head: ['outcome', 'cells'] });
for (const [k, v] of [...counts].sort((a, b) => b[1] - a[1])) ct.push([k, v]);
const failed = results.filter((r) => !r.ok);
ct.push(['checks failed', failed.length], ['cells', results.length]);
process.stdout.write(`${ct.toString()}\n`);
process.stdout.write(`${results.length} cells in ${(wallMs / 1000).toFixed(0)} s\n`);
for (const r of failed) process.stdout.write(`FAIL ${r.id}: ${r.problems.join('; ')}\n`);
for (const r of results.filter((x) => x.notes.length > 0)) {
  process.stdout.write(`note ${r.id}: ${r.notes.join('; ')}\n`);
}

mkdirSync('results', { recursive: true });
writeFileSync(
  'results/faults.json',
  `${JSON.stringify(
    {
      command: `npm run faults${argv.length ? ` -- ${argv.join(' ')}` : ''}`,
      repeat,
      runs: runs.length,
      runsNowhereUnreported: runs.filter(nowhere).length,
      runsOnTwoHosts: runs.filter(twice).length,
      runsFailedChecks: runs.filter((r) => !r.ok).length,
      date: new Date().toISOString(),
      wallMs: Math.round(wallMs),
      guest: MATRIX_GUEST,
      options: MATRIX_OPTIONS,
      counts: Object.fromEntries(counts),
      checksFailed: failed.length,
      cells: results,
    },
    null,
    2,
  )}\n`,
);
process.stdout.write('wrote results/faults.json\n');
process.exitCode = runs.some((r) => !r.ok) ? 1 : 0;
