/**
 * Migration setup time (`npm run bench:setup`): how long a migration takes from its start on the source to the end of
 * the handshake (the report's `setupTimeMs`, QEMU's "setup" in `query-migrate`), for the configurations of
 * docs/migration.md's "Setup time" section.
 *
 * Each repetition starts a fresh pair of agents (as `livemig run` does) and migrates two guests in a row into the same
 * destination agent: the first shows what a fresh agent costs, the second what a warm one does. Agents run from the
 * built dist/. Setup time depends on the machine's load far more than on anything here, so the table gives
 * min–median–max over the repetitions and the JSON records the load average at each run.
 *
 * Writes results/bench-setup.json and prints a table. Options: --reps N (default 3), --quick (idle guest only, 2 reps).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Table from 'cli-table3';
import { AgentClient, type CertFiles, loadTls, makeCerts } from '../src/agent/index.js';
import { spawnAgent } from '../src/agent/spawn.js';
import type { GuestConfig } from '../src/guest/index.js';
import type { MigrationOptions } from '../src/migration/index.js';

process.env.LIVEMIG_CLI ??= fileURLToPath(new URL('../dist/cli/bin.js', import.meta.url));

const MiB = 1024 * 1024;
const quick = process.argv.includes('--quick');
const repsAt = process.argv.indexOf('--reps');
const reps = repsAt > 0 ? Number(process.argv[repsAt + 1]) : quick ? 2 : 3;

interface Config {
  name: string;
  guest: GuestConfig;
  options: Partial<MigrationOptions>;
  tls: boolean;
}

const idle: GuestConfig = { ramBytes: 1024 * MiB, workload: { name: 'idle' } };
const zipf: GuestConfig = { ramBytes: 256 * MiB, workload: { name: 'zipf' } };
const CONFIGS: Config[] = [
  { name: 'idle 1 GiB', guest: idle, options: {}, tls: false },
  { name: 'idle 1 GiB, XBZRLE', guest: idle, options: { xbzrle: true }, tls: false },
  { name: 'zipf 256 MiB', guest: zipf, options: {}, tls: false },
  { name: 'zipf 256 MiB, XBZRLE', guest: zipf, options: { xbzrle: true }, tls: false },
  { name: 'idle 1 GiB, TLS', guest: idle, options: {}, tls: true },
  { name: 'zipf 256 MiB, XBZRLE, TLS', guest: zipf, options: { xbzrle: true }, tls: true },
].filter((c) => !quick || c.guest === idle);

interface Run {
  config: string;
  /** 1 = into a fresh destination agent, 2 = the next one into the same agent. */
  migration: number;
  status: string;
  verified: boolean;
  setupMs: number;
  totalMs: number;
  downtimeMs: number;
  load1: number;
}

async function pair(config: Config, certs: CertFiles | undefined, out: Run[]): Promise<void> {
  const flags = (name: string) => {
    const a = certs?.agents[name];
    return certs && a ? ['--tls-cert', a.cert, '--tls-key', a.key, '--tls-ca', certs.ca] : [];
  };
  const [src, dst] = await Promise.all([
    spawnAgent('127.0.0.1', ['--quiet', ...flags('a')]),
    spawnAgent('127.0.0.1', ['--quiet', ...flags('b')]),
  ]);
  const a = certs?.agents.a;
  const tls = certs && a ? loadTls({ cert: a.cert, key: a.key, ca: certs.ca }) : undefined;
  const source = new AgentClient(src.address, { tls });
  const destination = new AgentClient(dst.address, { tls });
  try {
    for (const migration of [1, 2]) {
      const id = `setup${migration}`;
      await source.startGuest(config.guest, id, true);
      await new Promise((r) => setTimeout(r, 500));
      const started = await source.migrate(id, dst.address, { ...config.options });
      const r = await source.follow(started.id, undefined, 100);
      out.push({
        config: config.name,
        migration,
        status: r.status,
        verified: r.verified,
        setupMs: r.setupTimeMs,
        totalMs: r.totalTimeMs,
        downtimeMs: r.downtimeMs,
        load1: loadavg()[0]!,
      });
      await (r.status === 'completed' ? destination : source).stopGuest(id).catch(() => undefined);
    }
  } finally {
    await Promise.all([src.stop(), dst.stop()]);
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const range = (xs: number[], digits = 0) =>
  `${Math.min(...xs).toFixed(digits)}–${median(xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;

const dir = mkdtempSync(join(tmpdir(), 'livemig-setup-'));
try {
  const certs = CONFIGS.some((c) => c.tls) ? makeCerts({ dir, names: ['a', 'b'] }) : undefined;
  const runs: Run[] = [];
  const loadBefore = loadavg()[0]!;
  for (let rep = 0; rep < reps; rep++) {
    for (const config of CONFIGS) {
      process.stderr.write(`rep ${rep + 1}/${reps}: ${config.name}\n`);
      await pair(config, config.tls ? certs : undefined, runs);
    }
  }
  const table = new Table({
    head: ['config', 'into', 'setup ms (min–median–max)', 'total s (median)', 'downtime ms (median)', 'ok'],
  });
  for (const config of CONFIGS) {
    for (const migration of [1, 2]) {
      const rs = runs.filter((r) => r.config === config.name && r.migration === migration);
      if (rs.length === 0) continue;
      table.push([
        config.name,
        migration === 1 ? 'fresh agent' : 'same agent',
        range(rs.map((r) => r.setupMs)),
        (median(rs.map((r) => r.totalMs)) / 1000).toFixed(2),
        median(rs.map((r) => r.downtimeMs)).toFixed(0),
        `${rs.filter((r) => r.status === 'completed' && r.verified).length}/${rs.length}`,
      ]);
    }
  }
  const loads = runs.map((r) => r.load1);
  process.stdout.write(
    `${table.toString()}\nload average (1 min) during the runs: ${range([loadBefore, ...loads], 1)}\n`,
  );
  mkdirSync('results', { recursive: true });
  writeFileSync(
    'results/bench-setup.json',
    `${JSON.stringify({ date: new Date().toISOString(), reps, quick, loadBefore, runs }, null, 2)}\n`,
  );
  process.stdout.write('wrote results/bench-setup.json\n');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
