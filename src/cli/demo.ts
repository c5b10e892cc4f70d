import Table from 'cli-table3';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { runScenario, startPair } from '../experiments/scenario.js';
import type { GuestConfig } from '../guest/index.js';
import type { MigrationOptions, MigrationReport } from '../migration/index.js';
import { formatBytes, formatMs } from '../units.js';
import { DEFAULT_GUEST_PARAMS } from './default-guest.js';
import { MigrationProgress } from './format.js';
import { LIMITS, sizeFlag } from './values.js';

const MiB = 1024 * 1024;

interface DemoCase {
  name: string;
  explain: string;
  options: Partial<MigrationOptions>;
}

const CASES: DemoCase[] = [
  {
    name: 'cold',
    explain: 'pause the guest, copy all of its memory, resume it on the destination',
    options: { strategy: 'cold' },
  },
  {
    name: 'pre-copy',
    explain: 'copy memory while the guest runs, then re-send what it dirtied, round after round',
    options: { strategy: 'precopy' },
  },
  {
    name: 'pre-copy + XBZRLE',
    explain: 're-sent pages travel as XOR deltas against a cache of what was sent (QEMU format)',
    options: { strategy: 'precopy', xbzrle: true, xbzrleCacheBytes: 64 * MiB },
  },
  {
    name: 'post-copy',
    explain: 'move the vCPU at once; the destination faults pages in on demand while the rest is pushed',
    options: { strategy: 'postcopy' },
  },
];

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'A short, explained demonstration (what `npm start` runs): one write-heavy guest migrated four ways under one ' +
        'bandwidth limit, with a comparison table.',
    )
    .option('--ram <size>', 'guest RAM', '256MiB')
    .option('--json', 'print the four reports as JSON')
    .action(async (o: { ram: string; json?: boolean }) => {
      const json = o.json === true;
      const say = (text: string) => {
        if (!json) process.stdout.write(`${text}\n`);
      };
      const ramBytes = sizeFlag(o.ram, '--ram', 96 * MiB, LIMITS.size);
      if (ramBytes < 96 * MiB)
        throw new UsageError('--ram: the demo needs at least 96MiB (its heap is 64 MiB)', '--ram');
      const bandwidth = 128 * MiB;
      const guest: GuestConfig = {
        ramBytes,
        vcpus: 1,
        seed: 7,
        // The same guest as a bare `livemig run` (default-guest.ts).
        workload: { name: 'gap', params: { ...DEFAULT_GUEST_PARAMS } },
      };
      say(
        'livemig demo — live migration of a running guest between two processes over real TCP.\n\n' +
          `The guest: ${formatBytes(ramBytes)} of RAM running a write-heavy, gap-like workload (a worker thread ` +
          'rewriting ~20,000 pages/s of a 64 MiB heap, 98% of the time only a few bytes of the page).\n' +
          `The link: loopback TCP limited to ${formatBytes(bandwidth)}/s (QEMU's default) by a token bucket on the source.\n` +
          'Every run starts a fresh guest with the same seed, lets it warm up for 1 s, migrates it, and checks a ' +
          'digest of RAM and vCPU state on the destination before the guest resumes there.\n',
      );
      const pair = await startPair();
      const reports: MigrationReport[] = [];
      try {
        for (const c of CASES) {
          say(`• ${c.name}: ${c.explain}`);
          const progress = json ? undefined : new MigrationProgress();
          try {
            const { report } = await runScenario(
              pair,
              { guest, warmupMs: 1000, options: { maxBandwidth: bandwidth, ...c.options } },
              (r) => progress?.update(r),
            );
            reports.push(report);
          } finally {
            progress?.stop();
          }
        }
      } finally {
        await pair.close();
      }
      if (json) {
        process.stdout.write(`${JSON.stringify(reports, null, 2)}\n`);
        return;
      }
      const t = new Table({
        head: [
          'strategy',
          'total time',
          'downtime',
          'bytes sent',
          'rounds',
          'verified',
          'guest slowdown while pre-copying',
        ],
        style: { head: [], border: [] },
      });
      CASES.forEach((c, i) => {
        const r = reports[i]!;
        t.push([
          c.name,
          formatMs(r.totalTimeMs),
          formatMs(r.downtimeMs),
          `${formatBytes(r.transferredBytes)} (${(r.transferredBytes / ramBytes).toFixed(2)}× RAM)`,
          r.rounds,
          r.status === 'completed' ? (r.verified ? 'yes' : 'no') : `FAILED ${r.error?.code ?? ''}`,
          // Only pre-copy runs the guest on the source while migrating; the others pause it at once.
          r.strategy === 'precopy' ? `${(100 * r.guest.slowdown).toFixed(0)}%` : '—',
        ]);
      });
      say(`\n${t.toString()}`);
      say(
        '\nHow to read it: cold migration stops the guest for the whole copy (downtime = the whole copy; total time adds the connection setup). Pre-copy keeps ' +
          'it running and pauses it only for the last dirty pages, at the price of sending some pages more than once. ' +
          'XBZRLE sends those re-sent pages as small deltas, so fewer bytes cross the link. Post-copy has the ' +
          'shortest pause, but the guest then waits on the network for every page it touches first (faults).\n' +
          'Try: npx livemig run --help, npx livemig run --workload gap --write-rate 0 --auto-converge, docs/README.md',
      );
    });
}
