/**
 * Terminal output of migrations: the live progress bar and the final report table. Scripts use --json instead.
 */
import { SingleBar } from 'cli-progress';
import Table from 'cli-table3';
import { safeText } from '../log-safe.js';
import type { MigrationReport } from '../migration/index.js';
import { formatBytes, formatMs } from '../units.js';
import { powerRows } from './format-power.js';

/** A progress bar over the pages of the current round (or of post-copy), with the figures operators watch. */
export class MigrationProgress {
  private bar: SingleBar | undefined;
  private readonly enabled: boolean;
  constructor(stream: NodeJS.WriteStream = process.stderr) {
    this.enabled = stream.isTTY === true && process.env.CI !== 'true';
    if (this.enabled) {
      this.bar = new SingleBar({
        stream,
        format:
          '{phase} round {round} |{bar}| {sent}  dirty {dirty} pages  {mbps} Mbit/s  expected downtime {downtime}',
        barsize: 24,
        hideCursor: true,
        clearOnComplete: true,
      });
      this.bar.start(100, 0, fields(undefined));
    }
  }
  update(r: MigrationReport): void {
    if (!this.bar) return;
    const total = Math.max(1, r.ramBytes);
    const done = Math.max(0, Math.min(100, Math.round(100 * (1 - r.remainingBytes / total))));
    this.bar.update(done, fields(r));
  }
  stop(): void {
    this.bar?.stop();
  }
}

function fields(r: MigrationReport | undefined): Record<string, string> {
  if (!r) return { phase: 'setup', round: '-', sent: '0 B', dirty: '-', mbps: '-', downtime: '-' };
  return {
    phase: r.phase,
    round: String(r.rounds || '-'),
    sent: formatBytes(r.transferredBytes),
    dirty: String(r.dirtyPages),
    mbps: r.throughputMbps.toFixed(0),
    downtime: Number.isFinite(r.expectedDowntimeMs) ? formatMs(r.expectedDowntimeMs) : '∞',
  };
}

/** The final report as a two-column table, then the per-round table. */
export function reportTable(r: MigrationReport): string {
  const t = new Table({ head: ['migration', r.id.slice(0, 12)], style: { head: [], border: [] } });
  const pages = r.pages;
  const rows: [string, string][] = [
    ['status', r.error ? `${r.status}: ${safeText(r.error.code, 40)}` : r.status],
    ['strategy', r.strategy],
    ['verified', r.verified ? `yes (${r.verify} digest)` : 'no'],
    ['total time', formatMs(r.totalTimeMs)],
    ['setup time', formatMs(r.setupTimeMs)],
    [
      'downtime',
      `${formatMs(r.downtimeMs)} (expected ${fmtExpected(r.expectedDowntimeMs)}, limit ${formatMs(r.downtimeLimitMs)})`,
    ],
    ['rounds', `${r.rounds}${r.switchoverReason ? ` (${r.switchoverReason})` : ''}`],
    ['RAM', formatBytes(r.ramBytes)],
    [
      'transferred',
      `${formatBytes(r.transferredBytes)} (${(r.transferredBytes / Math.max(1, r.ramBytes)).toFixed(2)}× RAM)`,
    ],
    [
      'throughput',
      `${r.throughputMbps.toFixed(0)} Mbit/s${r.maxBandwidth ? ` (limit ${formatBytes(r.maxBandwidth)}/s)` : ''}`,
    ],
    ['dirty rate', `${r.dirtyRatePagesPerSec.toFixed(0)} pages/s (last round)`],
    [
      'pages',
      `zero ${pages.zero}, raw ${pages.raw}, xbzrle ${pages.xbzrle}, rle ${pages.rle}, compressed ${pages.compressed}, unchanged ${pages.skipped}`,
    ],
  ];
  if (r.xbzrle.enabled) {
    rows.push([
      'XBZRLE',
      `cache ${formatBytes(r.xbzrle.cacheBytes)} ${r.xbzrle.cacheWays}-way, hits ${r.xbzrle.cacheHits}, misses ${r.xbzrle.cacheMisses}, overflows ${r.xbzrle.overflows}, ${formatBytes(r.xbzrle.pageBytes)} sent as ${formatBytes(r.xbzrle.encodedBytes)}`,
    ]);
  }
  if (r.strategy === 'postcopy' || r.strategy === 'hybrid') {
    const p = r.postcopy;
    rows.push([
      'post-copy',
      `faults ${p.faults} (latency p50 ${formatMs(p.faultLatencyMs.p50)}, p99 ${formatMs(p.faultLatencyMs.p99)}), pushed ${p.pushedPages}, requested ${p.requestedPages}${p.preemptPages ? ` (${p.preemptPages} on the preempt channel)` : ''}`,
    ]);
  }
  if (r.cap.length > 0) {
    // Auto-converge and power capping both set the migrating VM's CAP.
    const caps = r.cap.length > 8 ? [...r.cap.slice(0, 4), ...r.cap.slice(-3)] : r.cap;
    const line = caps.map((c) => `CAP ${c.cap} (${c.reason.split(':')[0]})`);
    if (r.cap.length > 8) line.splice(4, 0, `… ${r.cap.length - 7} more …`);
    rows.push(['CAP', line.join(' → ')]);
  }
  if (r.energy) {
    const e = r.energy;
    const fig = (f: { joules: number; averageWatts: number; peakWatts: number; label: string }) =>
      `${f.joules.toFixed(0)} J, ${f.averageWatts.toFixed(1)} W average, ${f.peakWatts.toFixed(1)} W peak (${f.label})`;
    rows.push(['energy, source', `${fig(e.source)} [${e.model}]`]);
    if (e.sourceMeasured) rows.push(['energy, source RAPL', fig(e.sourceMeasured)]);
    rows.push(['energy, destination', e.destination ? fig(e.destination) : 'not available']);
    rows.push(...powerRows(r));
  }
  if (r.guest.stepsPerSecBefore > 0) {
    rows.push([
      'guest speed',
      `${r.guest.stepsPerSecBefore.toFixed(0)} steps/s before, ${r.guest.stepsPerSecDuring.toFixed(0)} during (${(100 * r.guest.slowdown).toFixed(0)}% slower)`,
    ]);
  }
  if (r.guest.readsPerSecBefore !== undefined && r.guest.readsPerSecBefore > 0) {
    const g = r.guest;
    rows.push([
      'guest reads',
      `${g.readsPerSecBefore!.toFixed(0)} reads/s before, ${(g.readsPerSecDuring ?? 0).toFixed(0)} during (${(100 * (g.readSlowdown ?? 0)).toFixed(0)}% slower)`,
    ]);
  }
  if (r.dirtyLimit) rows.push(['dirty-limit', dirtyLimitLine(r.dirtyLimit)]);
  if (r.downtimeRamp) {
    const raises = r.downtimeRamp.map((x) => `round ${x.round}: ${formatMs(x.fromMs)} → ${formatMs(x.toMs)}`);
    rows.push([
      'downtime ramp',
      raises.length > 0 ? raises.join(', ') : 'no raise (every round made progress)',
    ]);
  }
  // A report's error can quote the peer (ERROR frame) or come from a remote agent: escaped before the terminal.
  if (r.error) rows.push(['error', safeText(r.error.message)]);
  for (const row of rows) t.push(row);
  let out = t.toString();
  if (r.perRound.length > 0) {
    const rt = new Table({
      head: [
        'round',
        'pages sent',
        'bytes',
        'dirty after',
        'duration',
        'Mbit/s',
        'expected downtime',
        'throttle',
      ],
      style: { head: [], border: [] },
    });
    for (const x of r.perRound) {
      rt.push([
        x.round,
        x.pagesSent,
        formatBytes(x.bytes),
        x.dirtyPages,
        formatMs(x.durationMs),
        x.throughputMbps.toFixed(0),
        fmtExpected(x.expectedDowntimeMs),
        x.throttle ? `${x.throttle}%` : '-',
      ]);
    }
    out += `\n${rt.toString()}`;
  }
  return out;
}

function fmtExpected(ms: number): string {
  return Number.isFinite(ms) ? formatMs(ms) : '∞';
}

function dirtyLimitLine(d: NonNullable<MigrationReport['dirtyLimit']>): string {
  const head = `vcpu-dirty-limit ${d.vcpuDirtyLimit} MB/s, period ${d.dirtyLimitPeriodMs} ms`;
  if (d.appliedAtMs < 0) return `${head}: never triggered`;
  const per = d.throttleMs
    .map((ms, i) => `vCPU ${i} held ${formatMs(ms)}, dirtied ${d.dirtyRateMBps[i]!.toFixed(2)} MB/s`)
    .join('; ');
  return `${head}, applied after round ${d.appliedAfterRound}: ${per}`;
}
