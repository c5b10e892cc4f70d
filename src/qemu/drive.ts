/**
 * The QEMU migration loop, once capabilities and parameters are set (migrate.ts): start (`stop` first when cold,
 * `migrate`), poll `query-migrate` until it ends, act between rounds, and settle the report.
 *
 * A round ends when `dirty-sync-count` grows. After each live round the bridge: resizes the XBZRLE cache (dynamic
 * sizing), asks livemig's per-round decision (migration/round-decision.ts, the same as the engine's; QEMU checks
 * convergence itself) and acts on it — a switch-over QEMU has no rule for is forced by raising `downtime-limit`,
 * post-copy by `migrate-start-postcopy`, an abort by `migrate_cancel`, a raised limit (downtime ramp, double-downtime)
 * by `migrate-set-parameters downtime-limit` — then re-chooses the CAP for a power budget.
 */
import { MigrationError } from '../errors.js';
import {
  abortCode,
  type CacheRoundSample,
  type Decision,
  decideRound,
  initialRoundState,
  type MigrationOptions,
  type RoundOutcome,
  type RoundSample,
  type RoundState,
  throttleToCap,
} from '../migration/index.js';
import type { CpuCap } from './cgroup.js';
import { budgetCap, capEvent, type Power, sampleSafely } from './power.js';
import type { QmpClient, QmpMigrationInfo } from './qmp.js';
import { applyQueryMigrate, isFinalStatus, type QemuMigrationReport, stamp } from './report.js';
import { nextQemuCacheSize } from './xbzrle-sizing.js';

/** QEMU's largest downtime-limit (MAX_MIGRATE_DOWNTIME, 2000 s): setting it makes the next check switch over. */
export const FORCE_SWITCHOVER_MS = 2_000_000;

export interface DriveControl {
  pollMs: number;
  onProgress: ((r: QemuMigrationReport) => void) | undefined;
  power: Power | undefined;
  cap: CpuCap | undefined;
}

type Ram = NonNullable<QmpMigrationInfo['ram']>;
type PostcopyReason = NonNullable<QemuMigrationReport['qemu']['postcopyReason']>;
interface CacheCounters {
  pages: number;
  misses: number;
  bytes: number;
  overflows: number;
}

/** Drive one QEMU migration to its end; the report `r` is filled as it goes. */
export async function drive(
  source: QmpClient,
  dest: QmpClient,
  r: QemuMigrationReport,
  o: MigrationOptions,
  ctl: DriveControl,
): Promise<void> {
  const d = new QemuDrive(source, dest, r, o, ctl);
  await d.start();
  await d.poll();
  await d.finish();
}

class QemuDrive {
  private readonly t0 = Date.now();
  /** Live rounds as seen (rounds shorter than a poll are merged into one). */
  private readonly samples: RoundSample[] = [];
  private round: RoundState;
  /** What QEMU's counters said at the last sync: the start of the current round. */
  private sync = 0;
  private roundStart = this.t0;
  private sentAtSync = 0;
  private pagesAtSync = 0;
  private cacheAtSync: CacheCounters = { pages: 0, misses: 0, bytes: 0, overflows: 0 };
  private throttle = 0;
  /** The stop rule that forced the switch-over, once one did: no decision after it. */
  private forced = '';
  private powerFrom = this.t0;

  constructor(
    private readonly source: QmpClient,
    private readonly dest: QmpClient,
    private readonly r: QemuMigrationReport,
    private readonly o: MigrationOptions,
    private readonly ctl: DriveControl,
  ) {
    this.round = initialRoundState(o);
    if (o.downtimeRamp) r.downtimeRamp = [];
  }

  async start(): Promise<void> {
    if (this.o.strategy === 'cold') {
      // Cold migration: the guest stops first and is resumed on the destination after the copy.
      await this.source.execute('stop');
      this.r.events.push('0.000s cold: source stopped before the copy');
    }
    await this.source.execute('migrate', { uri: this.r.destination });
  }

  /** Poll `query-migrate` until QEMU says the migration ended. */
  async poll(): Promise<void> {
    const { r, o, ctl } = this;
    const deadline = o.timeoutMs > 0 ? this.t0 + o.timeoutMs : Number.POSITIVE_INFINITY;
    for (;;) {
      const info: QmpMigrationInfo = await this.source.execute('query-migrate');
      applyQueryMigrate(r, info, Date.now() - this.t0);
      if (ctl.power) sampleSafely(ctl.power.meter);
      this.observeThrottle(info);
      const syncs = info.ram?.['dirty-sync-count'] ?? 0;
      if (info.ram && syncs > this.sync) await this.onSync(info, info.ram, syncs);
      ctl.onProgress?.(r);
      if (isFinalStatus(info.status)) return;
      if (o.strategy === 'postcopy' && !r.qemu.switchedToPostcopy && info.status === 'active')
        await this.startPostcopy('strategy');
      if (Date.now() > deadline) {
        // Before switch-over the source is still authoritative: cancelling leaves the guest running there.
        if (!r.qemu.switchedToPostcopy) await this.cancel();
        throw new MigrationError('TIMEOUT', `QEMU migration not complete after ${o.timeoutMs} ms`, {
          status: info.status,
          rounds: r.rounds,
        });
      }
      await new Promise((res) => setTimeout(res, ctl.pollMs));
    }
  }

  /** The report once QEMU's migration ended: rounds, switch-over reason, cold's downtime, the guest resumed. */
  async finish(): Promise<void> {
    const { r, o } = this;
    if (this.samples.length > 0) r.rounds = this.samples.length;
    if (r.status === 'completed') {
      if (!r.switchoverReason) r.switchoverReason = o.strategy === 'cold' ? 'cold' : 'converged';
      if (o.strategy === 'cold') {
        // The source was stopped, so the destination stays paused until told to run: the whole copy was downtime.
        await this.dest.execute('cont').catch(() => undefined);
        r.downtimeMs = Math.max(Date.now() - this.t0, r.totalTimeMs);
      }
    } else if (!r.error) {
      r.error = { code: 'INTERNAL', message: `QEMU migration ${r.status}` };
    }
    // The guest goes on where it was.
    if (r.status !== 'completed' && o.strategy === 'cold')
      await this.source.execute('cont').catch(() => undefined);
  }

  /** QEMU's own auto-converge moved its throttle: the report shows it as a CAP change. */
  private observeThrottle(info: QmpMigrationInfo): void {
    const t = info['cpu-throttle-percentage'] ?? 0;
    if (t !== this.throttle && info.status === 'active') {
      this.throttle = t;
      capEvent(this.r, throttleToCap(t), `auto-converge: QEMU cpu-throttle ${t}%`);
    }
  }

  /** A sync ended a round (or several, merged, when the migration completed between two polls). */
  private async onSync(info: QmpMigrationInfo, ram: Ram, syncs: number): Promise<void> {
    const now = Date.now();
    const pages = ram.normal + ram.duplicate;
    const x = info['xbzrle-cache'];
    const cacheNow: CacheCounters = {
      pages: x?.pages ?? 0,
      misses: x?.['cache-miss'] ?? 0,
      bytes: x?.bytes ?? 0,
      overflows: x?.overflow ?? 0,
    };
    const live = info.status === 'active';
    if (
      this.sync > 0 &&
      info.status === 'completed' &&
      syncs - 2 > this.samples.length &&
      ram.transferred > this.sentAtSync
    )
      this.mergeLastRounds(info, ram, pages, now);
    // A sync ended a round (not the stop-and-copy's sync, seen with the final status).
    if (this.sync > 0 && !isFinalStatus(info.status)) {
      const s = this.liveRound(info, ram, pages, now);
      if (live) {
        if (this.o.xbzrle && this.o.cacheSizing === 'dynamic') await this.resizeCache(ram, cacheNow, s);
        if (!this.r.qemu.switchedToPostcopy && !this.forced) await this.decide();
        await this.applyPowerBudget(s, now);
      }
    }
    this.sync = syncs;
    this.roundStart = now;
    this.sentAtSync = ram.transferred;
    this.pagesAtSync = pages;
    this.cacheAtSync = cacheNow;
  }

  /** The round that the sync ended, as a sample and a report row. */
  private liveRound(info: QmpMigrationInfo, ram: Ram, pages: number, now: number): RoundSample {
    const s: RoundSample = {
      round: this.samples.length + 1,
      pagesSent: pages - this.pagesAtSync,
      bytesSent: ram.transferred - this.sentAtSync,
      durationMs: now - this.roundStart,
      dirtyPages: Math.round(ram.remaining / (ram['page-size'] || 4096)),
    };
    this.record(s, info);
    return s;
  }

  /**
   * Live rounds that ended between the last poll and the end: one merged row, the stop-and-copy's bytes
   * (`downtime-bytes`) taken out; the dirty set they left is what the stop-and-copy sent.
   */
  private mergeLastRounds(info: QmpMigrationInfo, ram: Ram, pages: number, now: number): void {
    const pageSize = ram['page-size'] || 4096;
    const downtimeBytes = ram['downtime-bytes'] ?? 0;
    const bytes = Math.max(0, (ram['precopy-bytes'] ?? ram.transferred - downtimeBytes) - this.sentAtSync);
    if (bytes <= 0) return;
    const durationMs = Math.max(
      0,
      (info['total-time'] ?? now - this.t0) - (this.roundStart - this.t0) - (info.downtime ?? 0),
    );
    this.record(
      {
        round: this.samples.length + 1,
        pagesSent: Math.max(0, pages - this.pagesAtSync - Math.round(downtimeBytes / pageSize)),
        bytesSent: bytes,
        durationMs,
        dirtyPages: Math.round(downtimeBytes / pageSize),
      },
      info,
    );
  }

  private record(s: RoundSample, info: QmpMigrationInfo): void {
    this.samples.push(s);
    this.r.perRound.push({
      round: s.round,
      pagesSent: s.pagesSent,
      bytes: s.bytesSent,
      dirtyPages: s.dirtyPages,
      durationMs: s.durationMs,
      throughputMbps: s.durationMs > 0 ? (s.bytesSent * 8) / 1000 / s.durationMs : 0,
      expectedDowntimeMs: info['expected-downtime'] ?? 0,
      throttle: this.throttle,
      heldPages: 0,
    });
  }

  /** Dynamic XBZRLE cache sizing: `nextCacheSize` on the round's cache counters, applied with xbzrle-cache-size. */
  private async resizeCache(ram: Ram, cacheNow: CacheCounters, s: RoundSample): Promise<void> {
    const { r } = this;
    const was = this.cacheAtSync;
    const pageSize = ram['page-size'] || 4096;
    const cs: CacheRoundSample = {
      hits: cacheNow.pages - was.pages + (cacheNow.overflows - was.overflows),
      misses: cacheNow.misses - was.misses,
      xbzrlePageBytes: (cacheNow.pages - was.pages) * pageSize,
      xbzrleEncodedBytes: cacheNow.bytes - was.bytes,
      overflows: cacheNow.overflows - was.overflows,
      // QMP says nothing per page: the hot set is unknown, the resend set is the whole dirty set.
      hotPages: 0,
      dirtyPages: s.dirtyPages,
    };
    const next = nextQemuCacheSize(r.xbzrle.cacheBytes, cs, {
      pageSize,
      maxBytes: this.o.xbzrleCacheMaxBytes,
    });
    if (next === r.xbzrle.cacheBytes) return;
    await this.setParam({ 'xbzrle-cache-size': next });
    r.xbzrle.cacheResizes.push({ round: s.round, bytes: next });
    r.events.push(
      `${stamp(r)} XBZRLE cache ${r.xbzrle.cacheBytes / 2 ** 20} → ${next / 2 ** 20} MiB (dynamic sizing; QEMU starts the new cache empty)`,
    );
    r.xbzrle.cacheBytes = next;
    r.xbzrle.cacheBytesPeak = Math.max(r.xbzrle.cacheBytesPeak, next);
  }

  /** livemig's per-round decision, acted on with QMP. */
  private async decide(): Promise<void> {
    const { r } = this;
    const outcome = decideRound(
      this.round,
      { samples: this.samples, pageSize: r.pageSize, autoConverge: 'hypervisor' },
      this.o,
    );
    this.round = outcome.state;
    if (outcome.stalled) r.stalled = true;
    for (const e of outcome.events) r.events.push(`${stamp(r)} ${e}`);
    await this.act(outcome.decision);
    await this.applyDowntime(outcome.downtime);
  }

  private async act(d: Decision): Promise<void> {
    if (d.action === 'switchover') {
      // Stop rules QEMU does not have: force its switch-over with the largest downtime limit it accepts.
      this.forced = d.reason;
      await this.setParam({ 'downtime-limit': FORCE_SWITCHOVER_MS });
      this.r.switchoverReason = d.reason;
      this.r.events.push(`${stamp(this.r)} switch-over forced: ${d.reason} (downtime-limit raised)`);
    } else if (d.action === 'postcopy') {
      await this.startPostcopy(d.reason);
    } else if (d.action === 'abort') {
      await this.cancel();
      const last = this.samples.at(-1);
      throw new MigrationError(
        abortCode(d.reason),
        `QEMU pre-copy gave up (${d.reason}) after ${this.samples.length} rounds: ${last?.dirtyPages ?? 0} pages ` +
          'still dirty; cancelled, the source keeps the guest',
        { rounds: this.samples.length, dirtyPages: last?.dirtyPages },
      );
    }
    // continue: nothing; auto-converge: QEMU's capability is on from the start, as livemig's engine runs its rule
    // from the start for this action.
  }

  /** A raised downtime limit (downtime ramp, double-downtime) goes to QEMU's downtime-limit at once. */
  private async applyDowntime(d: RoundOutcome['downtime']): Promise<void> {
    if (!d) return;
    await this.setParam({ 'downtime-limit': Math.round(Math.min(d.toMs, FORCE_SWITCHOVER_MS)) });
    this.r.downtimeLimitMs = d.toMs;
    if (d.cause === 'ramp') this.r.downtimeRamp?.push({ round: d.round, fromMs: d.fromMs, toMs: d.toMs });
  }

  private async applyPowerBudget(s: RoundSample, now: number): Promise<void> {
    const { ctl, o, r } = this;
    if (!ctl.power || !ctl.cap || o.powerCap <= 0) return;
    const decided = budgetCap(ctl.power, o, r, s, this.powerFrom);
    this.powerFrom = now;
    if (decided && decided.cap !== ctl.cap.percent) {
      await ctl.cap.set(decided.cap);
      capEvent(r, decided.cap, decided.reason);
    }
  }

  private async startPostcopy(reason: PostcopyReason): Promise<void> {
    await this.source.execute('migrate-start-postcopy');
    this.r.qemu.switchedToPostcopy = true;
    this.r.qemu.postcopyReason = reason;
    this.r.switchoverReason = `postcopy: ${reason}`;
    this.r.events.push(`${stamp(this.r)} switching to post-copy: ${reason}`);
  }

  private async cancel(): Promise<void> {
    await this.source.execute('migrate_cancel').catch(() => undefined);
    if (this.o.strategy === 'cold') await this.source.execute('cont').catch(() => undefined);
  }

  private setParam(p: Record<string, number>): Promise<unknown> {
    return this.source.execute('migrate-set-parameters', p);
  }
}
