/**
 * Drive one QEMU live migration over QMP with livemig's options and policies, and report it as livemig's
 * `MigrationReport` (report.ts): set capabilities and parameters on both sides, `migrate`, poll `query-migrate` until
 * it ends, and between rounds (each `dirty-sync-count` step) apply livemig's policies to the real VM:
 *
 * - strategies: precopy (QEMU's default), postcopy (`postcopy-ram` on both sides, `migrate-start-postcopy` as soon as
 *   the migration is active), hybrid (post-copy after `postcopyAfterRounds` rounds), cold (`stop`, migrate, `cont`);
 * - stop rules QEMU lacks: `maxRounds` and `minDirtyPages` force the switch-over by raising `downtime-limit`;
 * - non-convergence and stall actions (`isNotConverging`, `isStalled`): post-copy, abort (`migrate_cancel`); Proxmox's
 *   double-downtime rule round by round; auto-converge is QEMU's own capability (same trigger rule as livemig's);
 * - dynamic XBZRLE cache sizing: `nextCacheSize` fed from the `xbzrle-cache` counters of each round, applied with
 *   `migrate-set-parameters xbzrle-cache-size` (QEMU empties the cache on every resize: a new one is allocated);
 * - power: a CAP of the source's vCPU threads through the cgroup CPU controller, fixed (`migrationCap`) or chosen
 *   for a power budget after every round; DVFS through cpufreq where the host has it; energy modelled from the
 *   source QEMU's measured CPU time with livemig's power models (RAPL where present), labelled as such.
 */
import { readFile } from 'node:fs/promises';
import { MigrationError, UsageError } from '../errors.js';
import {
  type CacheRoundSample,
  initialCacheSize,
  isNotConverging,
  isStalled,
  type MigrationOptions,
  type Preset,
  type RoundSample,
  resolveOptions,
  throttleToCap,
} from '../migration/index.js';
import {
  capForBudget,
  controllerStep,
  energyOver,
  hostPowerModel,
  isDvfsModel,
  PowerMeter,
  type PowerModel,
  processCpuTimeMs,
  windowOver,
} from '../power/index.js';
import { type CpuCap, capQemu } from './cgroup.js';
import { type CpufreqControl, setCpufreq } from './cpufreq.js';
import type { QmpClient, QmpMigrationInfo } from './qmp.js';
import {
  applyQueryMigrate,
  emptyQemuReport,
  isFinalStatus,
  type QemuMigrationReport,
  stamp,
} from './report.js';
import { nextQemuCacheSize, qemuCacheBytes } from './xbzrle-sizing.js';

export type { QemuExtras, QemuMigrationReport } from './report.js';

export interface QemuMigrateOptions extends Partial<MigrationOptions> {
  /** The destination's `-incoming` address, e.g. `tcp:127.0.0.1:4444`. */
  uri: string;
  /** Another tool's defaults and stop rules, as for `livemig migrate`. */
  preset?: Preset;
  /** How often `query-migrate` is polled, ms (default 50): rounds shorter than this are merged. */
  pollMs?: number;
  /** Called after every poll with the report so far (the CLI's progress bar). */
  onProgress?: (r: QemuMigrationReport) => void;
  /** Names for the report. */
  sourceName?: string;
  guestId?: string;
  /** For tests: cgroup, powercap and cpufreq roots. */
  cgroupRoot?: string;
  raplRoot?: string | null;
  cpufreqRoot?: string;
}

/** QEMU's largest downtime-limit (MAX_MIGRATE_DOWNTIME, 2000 s): setting it makes the next check switch over. */
const FORCE_SWITCHOVER_MS = 2_000_000;

export async function migrateQemu(
  source: QmpClient,
  dest: QmpClient,
  o: QemuMigrateOptions,
): Promise<QemuMigrationReport> {
  const { uri, preset, pollMs, onProgress, sourceName, guestId, cgroupRoot, raplRoot, cpufreqRoot, ...rest } =
    o;
  const explicit = Object.fromEntries(
    Object.entries(rest).filter(([, v]) => v !== undefined),
  ) as Partial<MigrationOptions>;
  const ramBytes = await guestRamBytes(source);
  const opts = resolveOptions(explicit, preset, ramBytes);
  const r = emptyQemuReport({ options: opts, source: sourceName ?? 'qemu', destination: uri, guestId });
  r.qemu.notApplied = notApplied(opts, explicit);
  const pid = await qemuPid(source, r);
  const postcopy =
    opts.strategy === 'postcopy' ||
    opts.strategy === 'hybrid' ||
    opts.onStall === 'postcopy' ||
    opts.onNonConvergence === 'postcopy';
  const autoConverge =
    opts.autoConverge || opts.onNonConvergence === 'auto-converge' || opts.onStall === 'auto-converge';
  const capabilities: Record<string, boolean> = {
    xbzrle: opts.xbzrle,
    'auto-converge': autoConverge,
    'postcopy-ram': postcopy,
  };
  await source.execute('migrate-set-capabilities', {
    capabilities: Object.entries(capabilities).map(([capability, state]) => ({ capability, state })),
  });
  // The destination must agree on post-copy before the stream starts.
  if (postcopy)
    await dest.execute('migrate-set-capabilities', {
      capabilities: [{ capability: 'postcopy-ram', state: true }],
    });
  r.qemu.capabilities = capabilities;
  const params: Record<string, number> = {
    'downtime-limit': Math.round(opts.downtimeLimitMs),
    // 0 is "no limit" for both (QEMU ≥ 8.1); post-copy gets the same limit so that strategies compare fairly.
    'max-bandwidth': Math.round(opts.maxBandwidth),
  };
  if (postcopy) params['max-postcopy-bandwidth'] = Math.round(opts.maxBandwidth);
  let cacheBytes = opts.xbzrleCacheBytes;
  if (opts.xbzrle && opts.cacheSizing === 'dynamic')
    cacheBytes = initialCacheSize({
      pageSize: 4096,
      ways: 1,
      ramBytes: ramBytes || opts.xbzrleCacheMaxBytes,
      maxBytes: opts.xbzrleCacheMaxBytes,
    });
  if (opts.xbzrle) params['xbzrle-cache-size'] = qemuCacheBytes(cacheBytes, 4096);
  if (autoConverge) {
    params['cpu-throttle-initial'] = opts.throttleInitial;
    params['cpu-throttle-increment'] = opts.throttleIncrement;
    params['max-cpu-throttle'] = opts.throttleMax;
    params['throttle-trigger-threshold'] = opts.throttleTriggerThreshold;
  }
  await source.execute('migrate-set-parameters', params);
  r.qemu.parameters = await source.execute('query-migrate-parameters');
  r.xbzrle.cacheBytes = opts.xbzrle ? Number(r.qemu.parameters['xbzrle-cache-size'] ?? cacheBytes) : 0;

  const power = pid ? startPower(pid, r.qemu.vcpuThreads, opts, raplRoot) : undefined;
  const destPid = await qemuPid(dest, undefined);
  const destCpuBefore = destPid ? safeCpuMs(destPid) : undefined;
  let cap: CpuCap | undefined;
  let dvfs: CpufreqControl | undefined;
  try {
    if (opts.capping !== 'none' || opts.migrationCap > 0) {
      if (!pid)
        throw new MigrationError(
          'GUEST_NOT_FOUND',
          'power capping needs the source QEMU on this host (/proc)',
        );
      if (opts.capping === 'cap' || opts.capping === 'hybrid' || opts.migrationCap > 0) {
        cap = await capQemu({ pid, threadIds: r.qemu.vcpuThreads }, opts.migrationCap, {
          name: `qemu-${pid}`,
          ...(cgroupRoot ? { root: cgroupRoot } : {}),
        });
        if (opts.migrationCap > 0)
          capEvent(r, opts.migrationCap, 'migration-cap: fixed, cgroup CPU controller');
      }
      if (opts.capping === 'dvfs' || opts.capping === 'hybrid') {
        if (opts.dvfsGhz <= 0)
          throw new UsageError(
            'DVFS on a QEMU host needs --dvfs-ghz (budget-driven DVFS is engine-only)',
            'dvfs-ghz',
          );
        dvfs = await setCpufreq(opts.dvfsGhz, cpufreqRoot);
        r.events.push(`0.000s power: DVFS ${(dvfs.khz / 1e6).toFixed(3)} GHz on every core (cpufreq)`);
        if (power && isDvfsModel(power.model))
          power.meter.setDvfsState(nearestState(power.model, dvfs.khz / 1e6));
      }
    }
    await run(source, dest, r, opts, { pollMs: pollMs ?? 50, onProgress, power, cap });
    if (cap) {
      const st = await cap.stat();
      r.qemu.cgroupCap = {
        cgroup: cap.version,
        throttledPeriods: st.throttled,
        throttledMs: st.throttledNs / 1e6,
      };
    }
    if (power) {
      finishPower(r, power, opts, cap, dvfs);
      if (destPid && destCpuBefore !== undefined) {
        const after = safeCpuMs(destPid);
        if (after !== undefined) r.qemu.cpu.destination = { totalMs: after - destCpuBefore };
      }
    }
    return r;
  } finally {
    await cap?.release();
    await dvfs?.restore();
  }
}

interface Power {
  meter: PowerMeter;
  model: PowerModel;
  from: number;
}

function startPower(
  pid: number,
  vcpus: number[],
  o: MigrationOptions,
  raplRoot: string | null | undefined,
): Power | undefined {
  const model = hostPowerModel(o.powerModel);
  try {
    const meter = new PowerMeter({
      host: { pid, guests: () => [{ id: 'qemu', tids: vcpus, steps: 0, cap: 0, frequency: 1 }] },
      model,
      ...(raplRoot !== undefined ? { raplRoot } : {}),
    });
    return { meter, model, from: Date.now() };
  } catch {
    return undefined; // QEMU not readable in /proc (another user's process): no CPU time, no power
  }
}

function finishPower(
  r: QemuMigrationReport,
  p: Power,
  o: MigrationOptions,
  cap: CpuCap | undefined,
  dvfs: CpufreqControl | undefined,
): void {
  sampleSafely(p.meter);
  const to = Date.now();
  const samples = p.meter.samples(p.from);
  let vcpuMs = 0;
  let mainMs = 0;
  let otherMs = 0;
  for (const s of samples) {
    vcpuMs += s.vcpuCpuMs;
    mainMs += s.mainCpuMs;
    otherMs += s.otherCpuMs;
  }
  r.qemu.cpu.source = { vcpuMs, mainMs, otherMs, totalMs: vcpuMs + mainMs + otherMs };
  const modelled = energyOver(samples, p.from, to, 'modelled');
  if (!modelled) return;
  r.energy = {
    model: p.model.name,
    source: modelled,
    // The destination QEMU's CPU time is in qemu.cpu.destination; only the source is metered over time.
    destination: null,
    sourceMeasured: energyOver(samples, p.from, to, 'measured'),
    capping: {
      mode: o.capping,
      control: o.capControl,
      powerCapWatts: o.powerCap,
      dvfsGhz: dvfs ? dvfs.khz / 1e6 : null,
      caps: r.cap.map((c) => c.cap).concat(cap && r.cap.length === 0 ? [cap.percent] : []),
    },
    vms: [],
  };
}

/** A sample of the QEMU's threads; none when the process has gone meanwhile (killed, quit after the migration). */
function sampleSafely(meter: PowerMeter): void {
  try {
    meter.sample();
  } catch {
    // keep the samples taken so far
  }
}

function nearestState(model: { states: readonly { ghz: number }[] }, ghz: number): number {
  let best = 0;
  for (let i = 0; i < model.states.length; i++)
    if (Math.abs(model.states[i]!.ghz - ghz) < Math.abs(model.states[best]!.ghz - ghz)) best = i;
  return best;
}

function capEvent(r: QemuMigrationReport, cap: number, reason: string): void {
  r.cap.push({ atMs: r.totalTimeMs, cap, throttle: cap === 0 ? 0 : 100 - cap, reason });
  r.events.push(`${stamp(r)} power: CAP ${cap} on the source's vCPU threads (${reason})`);
}

/** livemig options with no QEMU equivalent: said in the report rather than silently dropped. */
function notApplied(o: MigrationOptions, explicit: Partial<MigrationOptions>): string[] {
  const out: string[] = [];
  if (o.compress !== 'none')
    throw new UsageError(
      `--compress ${o.compress}: the QEMU bridge drives QEMU's single-stream migration, which has no page compression (multifd is not wired)`,
      'compress',
    );
  if (o.pageOrder !== 'address')
    throw new UsageError('--page-order hot-last: QEMU sends pages in address order only', 'page-order');
  if (o.dirtyLimit)
    throw new UsageError(
      "--dirty-limit: QEMU's dirty-limit needs KVM's dirty ring (-accel kvm,dirty-ring-size=N); the bridge runs " +
        'QEMU under TCG, where QEMU refuses it ("dirty-limit requires KVM with accelerator property ' +
        "'dirty-ring-size' set\"). Use --auto-converge with QEMU, or livemig's own engine for dirty-limit",
      'dirty-limit',
    );
  if (explicit.cacheWays !== undefined && explicit.cacheWays !== 1)
    out.push(`cacheWays ${explicit.cacheWays}: QEMU's XBZRLE cache is direct-mapped (1-way)`);
  if (explicit.verify !== undefined && explicit.verify !== 'none')
    out.push(`verify ${explicit.verify}: QEMU sends no RAM digest; check the guest itself`);
  if (o.progressTimeoutMs > 0) out.push('progressTimeoutMs: not applied to QEMU (use timeoutMs)');
  if (explicit.recoverTimeoutMs !== undefined)
    out.push(
      "recoverTimeoutMs: QEMU's post-copy recovery (migrate-recover, migrate resume) is not driven by the bridge",
    );
  if (o.capping !== 'none' && o.capControl === 'adaptive' && o.completionTargetMs > 0 && o.powerCap === 0)
    out.push('completionTargetMs without a power budget: the adaptive CAP needs --power-cap here');
  return out;
}

/** The guest's RAM size (for presets that scale with it), or 0 when QEMU does not say. */
async function guestRamBytes(qmp: QmpClient): Promise<number> {
  const m = await qmp
    .execute<{ 'base-memory'?: number }>('query-memory-size-summary')
    .catch(() => ({}) as { 'base-memory'?: number });
  return m['base-memory'] ?? 0;
}

/** The QEMU process on this host (from its vCPU threads), or null when it is elsewhere. */
async function qemuPid(qmp: QmpClient, r: QemuMigrationReport | undefined): Promise<number | null> {
  const cpus = await qmp.execute<{ 'thread-id'?: number }[]>('query-cpus-fast').catch(() => []);
  const threads = (Array.isArray(cpus) ? cpus : []).map((c) => c['thread-id'] ?? 0).filter((t) => t > 0);
  if (r) r.qemu.vcpuThreads = threads;
  if (threads.length === 0) return null;
  const status = await readFile(`/proc/${threads[0]}/status`, 'utf8').catch(() => '');
  const tgid = Number(/^Tgid:\s+(\d+)$/m.exec(status)?.[1] ?? 0);
  if (r) r.qemu.pid = tgid || null;
  return tgid || null;
}

function safeCpuMs(pid: number): number | undefined {
  try {
    return processCpuTimeMs(pid);
  } catch {
    return undefined;
  }
}

async function run(
  source: QmpClient,
  dest: QmpClient,
  r: QemuMigrationReport,
  o: MigrationOptions,
  ctl: {
    pollMs: number;
    onProgress: ((r: QemuMigrationReport) => void) | undefined;
    power: Power | undefined;
    cap: CpuCap | undefined;
  },
): Promise<void> {
  const t0 = Date.now();
  if (o.strategy === 'cold') {
    // Cold migration: the guest stops first and is resumed on the destination after the copy.
    await source.execute('stop');
    r.events.push('0.000s cold: source stopped before the copy');
  }
  await source.execute('migrate', { uri: r.destination });
  const samples: RoundSample[] = [];
  let sync = 0;
  let roundStart = t0;
  let sentAtSync = 0;
  let pagesAtSync = 0;
  let cacheAtSync = { pages: 0, misses: 0, bytes: 0, overflows: 0 };
  let throttle = 0;
  let downtimeLimit = o.downtimeLimitMs;
  let forced = '';
  let stallDone = false;
  let divergenceDone = false;
  let powerFrom = t0;
  const deadline = o.timeoutMs > 0 ? t0 + o.timeoutMs : Number.POSITIVE_INFINITY;
  const setParam = (p: Record<string, number>) => source.execute('migrate-set-parameters', p);
  const startPostcopy = async (reason: NonNullable<QemuMigrationReport['qemu']['postcopyReason']>) => {
    await source.execute('migrate-start-postcopy');
    r.qemu.switchedToPostcopy = true;
    r.qemu.postcopyReason = reason;
    r.switchoverReason = `postcopy: ${reason}`;
    r.events.push(`${stamp(r)} switching to post-copy: ${reason}`);
  };
  for (;;) {
    const info: QmpMigrationInfo = await source.execute('query-migrate');
    applyQueryMigrate(r, info, Date.now() - t0);
    if (ctl.power) sampleSafely(ctl.power.meter);
    const t = info['cpu-throttle-percentage'] ?? 0;
    if (t !== throttle && info.status === 'active') {
      throttle = t;
      capEvent(r, throttleToCap(t), `auto-converge: QEMU cpu-throttle ${t}%`);
    }
    const ram = info.ram;
    const syncs = ram?.['dirty-sync-count'] ?? 0;
    const live = info.status === 'active';
    if (ram && syncs > sync) {
      const now = Date.now();
      const pages = ram.normal + ram.duplicate;
      const x = info['xbzrle-cache'];
      const cacheNow = {
        pages: x?.pages ?? 0,
        misses: x?.['cache-miss'] ?? 0,
        bytes: x?.bytes ?? 0,
        overflows: x?.overflow ?? 0,
      };
      const dirtyPages = Math.round(ram.remaining / (ram['page-size'] || 4096));
      if (
        sync > 0 &&
        info.status === 'completed' &&
        syncs - 2 > samples.length &&
        ram.transferred > sentAtSync
      ) {
        // Live rounds that ended between the last poll and the end: one merged row, the stop-and-copy's bytes
        // (`downtime-bytes`) taken out; the dirty set they left is what the stop-and-copy sent.
        const pageSize = ram['page-size'] || 4096;
        const downtimeBytes = ram['downtime-bytes'] ?? 0;
        const bytes = Math.max(0, (ram['precopy-bytes'] ?? ram.transferred - downtimeBytes) - sentAtSync);
        if (bytes > 0) {
          const durationMs = Math.max(
            0,
            (info['total-time'] ?? now - t0) - (roundStart - t0) - (info.downtime ?? 0),
          );
          const merged: RoundSample = {
            round: samples.length + 1,
            pagesSent: Math.max(0, pages - pagesAtSync - Math.round(downtimeBytes / pageSize)),
            bytesSent: bytes,
            durationMs,
            dirtyPages: Math.round(downtimeBytes / pageSize),
          };
          samples.push(merged);
          r.perRound.push({
            round: merged.round,
            pagesSent: merged.pagesSent,
            bytes,
            dirtyPages: merged.dirtyPages,
            durationMs,
            throughputMbps: durationMs > 0 ? (bytes * 8) / 1000 / durationMs : 0,
            expectedDowntimeMs: info['expected-downtime'] ?? 0,
            throttle,
            heldPages: 0,
          });
        }
      }
      // A sync ended a round (not the stop-and-copy's sync, seen with the final status).
      if (sync > 0 && !isFinalStatus(info.status)) {
        const s: RoundSample = {
          round: samples.length + 1,
          pagesSent: pages - pagesAtSync,
          bytesSent: ram.transferred - sentAtSync,
          durationMs: now - roundStart,
          dirtyPages,
        };
        samples.push(s);
        r.perRound.push({
          round: s.round,
          pagesSent: s.pagesSent,
          bytes: s.bytesSent,
          dirtyPages,
          durationMs: s.durationMs,
          throughputMbps: s.durationMs > 0 ? (s.bytesSent * 8) / 1000 / s.durationMs : 0,
          expectedDowntimeMs: info['expected-downtime'] ?? 0,
          throttle,
          heldPages: 0,
        });
        if (live && o.xbzrle && o.cacheSizing === 'dynamic') {
          const cs: CacheRoundSample = {
            hits: cacheNow.pages - cacheAtSync.pages + (cacheNow.overflows - cacheAtSync.overflows),
            misses: cacheNow.misses - cacheAtSync.misses,
            xbzrlePageBytes: (cacheNow.pages - cacheAtSync.pages) * (ram['page-size'] || 4096),
            xbzrleEncodedBytes: cacheNow.bytes - cacheAtSync.bytes,
            overflows: cacheNow.overflows - cacheAtSync.overflows,
            // QMP says nothing per page: the hot set is unknown, the resend set is the whole dirty set.
            hotPages: 0,
            dirtyPages,
          };
          const next = nextQemuCacheSize(r.xbzrle.cacheBytes, cs, {
            pageSize: ram['page-size'] || 4096,
            maxBytes: o.xbzrleCacheMaxBytes,
          });
          if (next !== r.xbzrle.cacheBytes) {
            await setParam({ 'xbzrle-cache-size': next });
            r.xbzrle.cacheResizes.push({ round: s.round, bytes: next });
            r.events.push(
              `${stamp(r)} XBZRLE cache ${r.xbzrle.cacheBytes / 2 ** 20} → ${next / 2 ** 20} MiB (dynamic sizing; QEMU starts the new cache empty)`,
            );
            r.xbzrle.cacheBytes = next;
            r.xbzrle.cacheBytesPeak = Math.max(r.xbzrle.cacheBytesPeak, next);
          }
        }
        if (live && !r.qemu.switchedToPostcopy && !forced) {
          // Stop rules QEMU does not have: force its switch-over with the largest downtime limit it accepts.
          if (o.maxRounds > 0 && s.round >= o.maxRounds) forced = 'max-rounds';
          else if (o.minDirtyPages > 0 && dirtyPages < o.minDirtyPages) forced = 'min-dirty-pages';
          if (forced) {
            await setParam({ 'downtime-limit': FORCE_SWITCHOVER_MS });
            r.switchoverReason = forced;
            r.events.push(`${stamp(r)} switch-over forced: ${forced} (downtime-limit raised)`);
          }
        }
        if (live && !r.qemu.switchedToPostcopy && !forced) {
          if (o.strategy === 'hybrid' && s.round >= o.postcopyAfterRounds)
            await startPostcopy('hybrid-rounds');
          else if (!divergenceDone && isNotConverging(samples, o.nonConvergenceRounds)) {
            divergenceDone = true;
            r.events.push(
              `${stamp(r)} not converging for ${o.nonConvergenceRounds} rounds (action: ${o.onNonConvergence})`,
            );
            await act(o.onNonConvergence, 'not-converging');
          }
          if (!r.qemu.switchedToPostcopy && !stallDone && isStalled(samples, o.stallRounds)) {
            stallDone = true;
            r.stalled = true;
            r.events.push(
              `${stamp(r)} stalled: no progress for ${o.stallRounds} rounds (action: ${o.onStall})`,
            );
            await act(o.onStall, 'stalled');
          }
        }
        // Proxmox's rule, as livemig's engine applies it: every round that did not shrink the dirty set doubles the
        // downtime limit.
        const prev = samples.at(-2);
        if (live && o.onStall === 'double-downtime' && !forced && prev && s.dirtyPages >= prev.dirtyPages) {
          downtimeLimit *= 2;
          await setParam({ 'downtime-limit': Math.round(Math.min(downtimeLimit, FORCE_SWITCHOVER_MS)) });
          r.downtimeLimitMs = downtimeLimit;
          r.events.push(
            `${stamp(r)} no progress in round ${s.round}: downtime limit doubled to ${downtimeLimit} ms`,
          );
        }
        if (live && ctl.power && ctl.cap && o.powerCap > 0) {
          const decided = budgetCap(ctl.power, o, r, s, powerFrom);
          powerFrom = now;
          if (decided && decided.cap !== ctl.cap.percent) {
            await ctl.cap.set(decided.cap);
            capEvent(r, decided.cap, decided.reason);
          }
        }
      }
      sync = syncs;
      roundStart = now;
      sentAtSync = ram.transferred;
      pagesAtSync = pages;
      cacheAtSync = cacheNow;
    }
    ctl.onProgress?.(r);
    if (isFinalStatus(info.status)) break;
    if (o.strategy === 'postcopy' && !r.qemu.switchedToPostcopy && live) await startPostcopy('strategy');
    if (Date.now() > deadline) {
      // Before switch-over the source is still authoritative: cancelling leaves the guest running there.
      if (!r.qemu.switchedToPostcopy) await cancel();
      throw new MigrationError('TIMEOUT', `QEMU migration not complete after ${o.timeoutMs} ms`, {
        status: info.status,
        rounds: r.rounds,
      });
    }
    await new Promise((res) => setTimeout(res, ctl.pollMs));
  }
  // Live rounds as seen (rounds shorter than a poll are merged into one row).
  if (samples.length > 0) r.rounds = samples.length;
  if (r.status === 'completed') {
    if (!r.switchoverReason) r.switchoverReason = o.strategy === 'cold' ? 'cold' : 'converged';
    if (o.strategy === 'cold') {
      // The source was stopped, so the destination stays paused until told to run: the whole copy was downtime.
      await dest.execute('cont').catch(() => undefined);
      r.downtimeMs = Math.max(Date.now() - t0, r.totalTimeMs);
    }
  } else if (!r.error) {
    r.error = { code: 'INTERNAL', message: `QEMU migration ${r.status}` };
  }
  if (r.status !== 'completed' && o.strategy === 'cold') await source.execute('cont').catch(() => undefined); // the guest goes on where it was

  async function cancel(): Promise<void> {
    await source.execute('migrate_cancel').catch(() => undefined);
    if (o.strategy === 'cold') await source.execute('cont').catch(() => undefined);
  }

  async function act(
    action: MigrationOptions['onStall'],
    reason: 'stalled' | 'not-converging',
  ): Promise<void> {
    if (action === 'postcopy') await startPostcopy(reason);
    else if (action === 'abort') {
      await cancel();
      throw new MigrationError(
        reason === 'stalled' ? 'STALLED' : 'NOT_CONVERGED',
        `QEMU pre-copy gave up (${reason}) after ${samples.length} rounds: ${samples.at(-1)?.dirtyPages ?? 0} pages ` +
          'still dirty; cancelled, the source keeps the guest',
        { rounds: samples.length, dirtyPages: samples.at(-1)?.dirtyPages },
      );
    }
    // continue: nothing; auto-converge: QEMU's capability is on from the start, as livemig's engine runs its rule
    // from the start for this action; double-downtime: applied round by round below.
  }
}

/** The CAP a power budget allows now (fixed: once, after round 1; adaptive: after every round). */
function budgetCap(
  p: Power,
  o: MigrationOptions,
  r: QemuMigrationReport,
  s: RoundSample,
  from: number,
): { cap: number; reason: string } | undefined {
  if (o.capControl === 'fixed' && r.cap.some((c) => c.reason.startsWith('power budget'))) return undefined;
  const now = Date.now();
  const w = windowOver(p.meter.samples(from - 1000), Math.min(from, now - 500), now);
  const load = {
    cpus: w.cpus,
    vmCpus: w.guests.get('qemu')?.cpus ?? 0,
    vmVcpus: Math.max(1, r.qemu.vcpuThreads.length),
    capacity: p.meter.capacityCores,
  };
  const state = p.meter.dvfsState;
  const current = r.cap.at(-1)?.cap ?? 0;
  if (o.capControl === 'adaptive') {
    const d = controllerStep({
      model: p.model,
      state,
      load,
      watts: w.watts,
      budget: o.powerCap,
      currentCap: current,
      round: {
        dirtyPagesPerSec: s.durationMs > 0 ? (s.dirtyPages * 1000) / s.durationMs : 0,
        sendPagesPerSec: s.durationMs > 0 ? (s.bytesSent / r.pageSize / s.durationMs) * 1000 : 0,
        remainingPages: s.dirtyPages,
        elapsedMs: r.totalTimeMs,
        targetMs: o.completionTargetMs,
      },
    });
    return { cap: d.cap, reason: `power budget, adaptive: ${d.reason}` };
  }
  const c = capForBudget(p.model, state, load, current, o.powerCap);
  return {
    cap: c.cap >= 100 ? 0 : c.cap,
    reason: `power budget ${o.powerCap} W${c.met ? '' : ' (not met at CAP 1)'}`,
  };
}

/** Wait until the destination runs the guest (after `completed`, or during post-copy). */
export async function waitRunning(dest: QmpClient, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await dest.execute('query-status');
    if (st.running) return;
    if (Date.now() > deadline)
      throw new MigrationError(
        'TIMEOUT',
        `destination QEMU not running after ${timeoutMs} ms (status ${st.status})`,
      );
    await new Promise((res) => setTimeout(res, 100));
  }
}
