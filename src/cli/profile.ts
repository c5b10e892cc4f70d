/**
 * `livemig profile`: measures a guest's working-set curve W(t), hot set, zero pages and XBZRLE's compression on
 * resent pages (src/profile), for `livemig predict --profile`. The guest runs here (the guest flags of `run`), or is
 * one already running on an agent (`--agent ADDR --guest ID`: only its dirty log is synced). docs/model.md.
 */
import Table from 'cli-table3';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import {
  cacheRetention,
  type GuestProfile,
  measuredCacheHit,
  profileAgentGuest,
  profileGuest,
  workingSetAt,
  writeProfile,
  xbzrleAt,
} from '../profile/index.js';
import { formatBytes, formatMs } from '../units.js';
import {
  addGuestFlags,
  addTlsFlags,
  agentClient,
  type GuestFlagValues,
  guestConfigFromFlags,
  type TlsFlagValues,
} from './flags.js';
import { durationFlag, LIMITS } from './values.js';

export interface ProfileFlags extends GuestFlagValues, TlsFlagValues {
  agent?: string;
  guest?: string;
  duration: string;
  tick: string;
  warmup: string;
  out?: string;
  json?: boolean;
}

/** Measures the profile the flags ask for: of a guest run here, or of `--guest` on `--agent`. */
export async function profileFromFlags(f: ProfileFlags): Promise<GuestProfile> {
  const opts = {
    durationMs: durationFlag(f.duration, '--duration', 100, 600_000),
    tickMs: durationFlag(f.tick, '--tick', 1, 60_000),
    warmupMs: durationFlag(f.warmup, '--warmup', 0, LIMITS.duration),
  };
  if ((f.agent === undefined) !== (f.guest === undefined)) {
    throw new UsageError('give --agent and --guest together (a guest running on an agent)', '--guest');
  }
  if (f.agent !== undefined && f.guest !== undefined) {
    const client = agentClient(f.agent, '--agent', f);
    try {
      return await profileAgentGuest(client, f.guest, opts);
    } finally {
      client.close();
    }
  }
  const { config } = guestConfigFromFlags(f);
  return profileGuest(config, opts);
}

/** The profile as tables: W(t) at round-like durations, the hot set, zero pages, XBZRLE against cache sizes. */
export function profileTable(p: GuestProfile): string {
  const P = p.pageSize;
  const pages = (n: number) => `${Math.round(n)} pages (${formatBytes(n * P)})`;
  const t = new Table({ head: ['profile', ''], style: { head: [], border: [] } });
  t.push(
    [
      'workload',
      p.source.workload + (p.source.guest ? ` (guest ${p.source.guest} on ${p.source.agent})` : ''),
    ],
    ['RAM', pages(p.ramPages)],
    ['watched', `${formatMs(p.durationMs)}, dirty log synced every ${formatMs(p.tickMs)}`],
    ['pages written', pages(p.pagesWritten)],
    ['dirty pages/s', p.dirtyPagesPerSec.toFixed(0)],
    ...p.hotSet.map((h) => [`hot set: ${(h.share * 100).toFixed(0)} % of dirtying`, pages(h.pages)]),
    [
      'zero pages',
      p.zeroFraction === null ? 'not read (running guest)' : `${(p.zeroFraction * 100).toFixed(1)} %`,
    ],
  );
  const w = new Table({
    head: ['window t', 'W(t): distinct pages dirtied', 'W(t) / t'],
    style: { head: [], border: [] },
  });
  for (const ms of [5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 60000]) {
    if (ms < p.tickMs || ms > p.durationMs * 1.01) continue;
    const n = workingSetAt(p, ms);
    w.push([formatMs(ms), pages(n), `${formatBytes((n * P * 1000) / ms)}/s`]);
  }
  let out = `${t.toString()}\n${w.toString()}\n`;
  if (p.xbzrle.length > 0) {
    const x = new Table({
      head: ['XBZRLE, resent after', 'pages', 'unchanged', 'overflow', 'delta ÷ page'],
      style: { head: [], border: [] },
    });
    for (const d of p.xbzrle) {
      x.push([formatMs(d.lagMs), d.pages, pct(d.unchanged), pct(d.overflow), d.ratio.toFixed(3)]);
    }
    // The cache sizes that matter: around the non-zero RAM that round 1 puts through the cache.
    const nonZero = p.ramPages * (1 - (p.zeroFractionStart ?? p.zeroFraction ?? 0));
    const c = new Table({
      head: ['XBZRLE cache', 'hit rate, 1-way', '2-way', '4-way', 'wire ÷ page (2-way, resent after 500 ms)'],
      style: { head: [], border: [] },
    });
    const d = xbzrleAt(p, 500)!;
    for (const f of [1 / 16, 1 / 8, 1 / 4, 1 / 2, 1, 2]) {
      const bytes = 2 ** Math.round(Math.log2(Math.max(P * 4, nonZero * P * f)));
      // Measured on the guest's own pages when the profile has the geometry, else the random-placement estimate.
      const hit = (ways: number) => {
        const sets = 2 ** Math.floor(Math.log2(bytes / (P * ways)));
        return measuredCacheHit(p, sets, ways) ?? cacheRetention(nonZero, sets, ways);
      };
      const h2 = hit(2);
      const wire = h2 * (d.overflow + (1 - d.unchanged - d.overflow) * d.ratio) + (1 - h2);
      c.push([formatBytes(bytes), pct(hit(1)), pct(h2), pct(hit(4)), wire.toFixed(3)]);
    }
    out += `${x.toString()}\n${c.toString()}\n`;
  }
  return out;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)} %`;
}

export function registerProfile(program: Command): void {
  const cmd = program
    .command('profile')
    .description(
      "Measure a guest's working-set curve W(t), hot set, zero pages and XBZRLE compression on resent pages, " +
        'for `livemig predict --profile` (docs/model.md). Runs the guest here, or watches one on an agent.',
    )
    .option('--agent <host:port>', 'profile a guest already running on this agent (with --guest)')
    .option('--guest <id>', 'the guest on --agent (only its dirty log is synced: no pause, no RAM read)')
    .option('--duration <duration>', 'how long to watch (W(t) is measured up to this t)', '3s')
    .option('--tick <duration>', 'step between dirty-log syncs (the smallest t)', '5ms')
    .option('--warmup <duration>', 'a guest run here: how long it runs before the watch', '200ms')
    .option('--out <file>', 'write the profile (JSON) to FILE')
    .option('--json', 'print the profile as JSON');
  addGuestFlags(cmd);
  addTlsFlags(cmd);
  cmd.addHelpText(
    'after',
    '\nExamples:\n' +
      '  livemig profile --workload zipf --ram 256MiB --write-rate 4000 --out zipf.json\n' +
      '  livemig profile --workload trace:traces/redis.lmtrace --duration 10s --out redis.json\n' +
      '  livemig profile --agent 127.0.0.1:7070 --guest g1 --out g1.json\n',
  );
  cmd.action(async (f: ProfileFlags) => {
    const p = await profileFromFlags(f);
    if (f.out) await writeProfile(f.out, p);
    if (f.json) process.stdout.write(`${JSON.stringify(p, null, 2)}\n`);
    else process.stdout.write(profileTable(p) + (f.out ? `wrote ${f.out}\n` : ''));
  });
}
