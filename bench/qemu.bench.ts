/**
 * QEMU migration figures: `node --import tsx bench/qemu.bench.ts [--rate 2000] [--bandwidth 32MiB] [--repeat 1]`.
 *
 * Boots the test VM (256 MiB, guest program dirtying 64 MiB at --rate pages/s: uniform whole-page writes, or 64-byte
 * writes with 90% of them on a --hot-page hot set) under TCG once per scenario, migrates it over loopback to a QEMU started with
 * -incoming, and checks the destination guest over one whole sweep after the switch-over (corrupt=0). Scenarios:
 * pre-copy with and without XBZRLE on both workloads, post-copy. Prints a table and writes results/qemu.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import Table from 'cli-table3';
import {
  buildTestVm,
  findQemu,
  migrateQemu,
  type QemuMigrateOptions,
  type QemuMigrationReport,
  qemuUnfitReason,
  startTestVm,
  waitForConsole,
  waitRunning,
} from '../src/qemu/index.js';
import { formatBytes, formatMs, parseRate } from '../src/units.js';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
};
const RATE = Number(arg('--rate', '2000'));
const BANDWIDTH = parseRate(arg('--bandwidth', '32MiB'), '--bandwidth');
const REPEAT = Number(arg('--repeat', '1'));
/** Hot set for the XBZRLE comparison: 4 MiB taking 90% of the writes. */
const HOT = Number(arg('--hot', '1024'));
/** QEMU's default is 300 ms; a tighter limit forces the extra rounds in which XBZRLE can hit its cache. */
const DOWNTIME_LIMIT_MS = Number(arg('--downtime-limit', '300'));

const qemu = await findQemu();
const unfit = qemuUnfitReason(qemu);
if (unfit) {
  console.error(`bench/qemu: ${unfit}`);
  process.exit(1);
}
const image = await buildTestVm({ log: (l) => console.error(l) });

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const a = s.address();
  await new Promise((r) => s.close(r));
  if (a === null || typeof a === 'string') throw new Error('no port');
  return a.port;
}

interface Row {
  name: string;
  bytesPerWrite: number;
  hotPages: number;
  report: QemuMigrationReport;
  destCorrupt: number;
  destSweeps: number;
}

async function scenario(
  name: string,
  bytes: number,
  hot: number,
  o: Omit<QemuMigrateOptions, 'uri'>,
): Promise<Row> {
  const src = await startTestVm({ image, mib: 64, rate: RATE, bytes, hot });
  const port = await freePort();
  const uri = `tcp:127.0.0.1:${port}`;
  const dst = await startTestVm({ image, mib: 64, rate: RATE, bytes, hot, incoming: uri });
  const sq = await src.connect();
  const dq = await dst.connect();
  try {
    await waitForConsole(src.consolePath, (c) => c.sweeps.length >= 1, 60_000);
    const report = await migrateQemu(sq, dq, {
      uri,
      maxBandwidth: BANDWIDTH,
      downtimeLimitMs: DOWNTIME_LIMIT_MS,
      timeoutMs: 90_000,
      ...o,
    });
    if (report.status === 'completed') await waitRunning(dq, 10_000);
    const after = await waitForConsole(dst.consolePath, (c) => c.sweeps.length >= 2, 30_000).catch(
      () => undefined,
    );
    return {
      name,
      bytesPerWrite: bytes,
      hotPages: hot,
      report,
      destCorrupt: after ? after.corruptPages.length + (after.sweeps.at(-1)?.corrupt ?? 0) : -1,
      destSweeps: after?.sweeps.length ?? 0,
    };
  } finally {
    await sq.close();
    await dq.close();
    await src.stop();
    await dst.stop();
  }
}

const rows: Row[] = [];
for (let i = 0; i < REPEAT; i++) {
  rows.push(await scenario('pre-copy', 4096, 0, { strategy: 'precopy' }));
  rows.push(
    await scenario('pre-copy + XBZRLE', 4096, 0, {
      strategy: 'precopy',
      xbzrle: true,
      xbzrleCacheBytes: 64 * 2 ** 20,
    }),
  );
  rows.push(await scenario('pre-copy, hot set, 64 B writes', 64, HOT, { strategy: 'precopy' }));
  rows.push(
    await scenario('pre-copy + XBZRLE, hot set, 64 B writes', 64, HOT, {
      strategy: 'precopy',
      xbzrle: true,
      xbzrleCacheBytes: 64 * 2 ** 20,
    }),
  );
  rows.push(await scenario('post-copy', 4096, 0, { strategy: 'postcopy' }));
}

const t = new Table({
  head: [
    'scenario',
    'status',
    'total',
    'downtime',
    'rounds',
    'sent',
    'XBZRLE pages / misses',
    'dest corrupt',
  ],
});
for (const r of rows)
  t.push([
    r.name,
    r.report.status,
    formatMs(r.report.totalTimeMs),
    formatMs(r.report.downtimeMs),
    r.report.rounds,
    formatBytes(r.report.transferredBytes),
    r.report.xbzrle.enabled ? `${r.report.pages.xbzrle} / ${r.report.xbzrle.cacheMisses}` : '-',
    r.destCorrupt,
  ]);
console.log(
  `QEMU ${qemu?.version.major}.${qemu?.version.minor}.${qemu?.version.micro}, TCG, 256 MiB guest, ` +
    `64 MiB dirtied at ${RATE} pages/s (hot set ${HOT} pages), bandwidth ${formatBytes(BANDWIDTH)}/s, ` +
    `downtime limit ${DOWNTIME_LIMIT_MS} ms, loopback`,
);
console.log(t.toString());
mkdirSync('results', { recursive: true });
writeFileSync(
  'results/qemu.json',
  JSON.stringify(
    {
      qemu: qemu?.version,
      kernel: image.kernelPackage,
      ratePagesPerSec: RATE,
      bandwidth: BANDWIDTH,
      hotPages: HOT,
      downtimeLimitMs: DOWNTIME_LIMIT_MS,
      rows: rows.map((r) => ({
        ...r,
        report: { ...r.report, qemu: { ...r.report.qemu, samples: undefined } },
      })),
    },
    null,
    2,
  ),
);
