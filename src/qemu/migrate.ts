/**
 * Drive one QEMU live migration over QMP with livemig's options and policies, and report it as livemig's
 * `MigrationReport` (report.ts): set capabilities and parameters on both sides here, then `migrate`, poll
 * `query-migrate` until it ends, and between rounds (each `dirty-sync-count` step) apply livemig's per-round decision
 * (migration/round-decision.ts, shared with the engine) to the real VM (drive.ts):
 *
 * - strategies: precopy (QEMU's default), postcopy (`postcopy-ram` on both sides, `migrate-start-postcopy` as soon as
 *   the migration is active), hybrid (post-copy after `postcopyAfterRounds` rounds), cold (`stop`, migrate, `cont`);
 * - stop rules QEMU lacks: `maxRounds` and `minDirtyPages` force the switch-over by raising `downtime-limit`;
 * - non-convergence and stall actions (`isNotConverging`, `isStalled`): post-copy, abort (`migrate_cancel`); Proxmox's
 *   double-downtime rule round by round; the downtime ramp (`downtime-limit` raised by its step); auto-converge is
 *   QEMU's own capability (same trigger rule as livemig's);
 * - dynamic XBZRLE cache sizing: `nextCacheSize` fed from the `xbzrle-cache` counters of each round, applied with
 *   `migrate-set-parameters xbzrle-cache-size` (QEMU empties the cache on every resize: a new one is allocated);
 * - power: a CAP of the source's vCPU threads through the cgroup CPU controller, fixed (`migrationCap`) or chosen
 *   for a power budget after every round; DVFS through cpufreq where the host has it; energy modelled from the
 *   source QEMU's measured CPU time with livemig's power models (RAPL where present), labelled as such (power.ts).
 */
import { readFile } from 'node:fs/promises';
import { MigrationError, UsageError } from '../errors.js';
import {
  initialCacheSize,
  type MigrationOptions,
  type Preset,
  resolveOptions,
  usesAutoConverge,
} from '../migration/index.js';
import { isDvfsModel } from '../power/index.js';
import { watchBlackout } from './blackout.js';
import { type CpuCap, capQemu } from './cgroup.js';
import { type CpufreqControl, setCpufreq } from './cpufreq.js';
import { drive } from './drive.js';
import {
  capEvent,
  finishPower,
  nearestState,
  type Power,
  processCpuOrUndefined,
  startPower,
} from './power.js';
import type { QmpClient } from './qmp.js';
import { emptyQemuReport, type QemuMigrationReport } from './report.js';
import { qemuCacheBytes } from './xbzrle-sizing.js';

export type { QemuExtras, QemuMigrationReport } from './report.js';

export interface QemuMigrateOptions extends Partial<MigrationOptions> {
  /** The destination's `-incoming` address, e.g. `tcp:127.0.0.1:4444`. */
  uri: string;
  /** Another tool's defaults and stop rules, as for `livemig migrate`. */
  preset?: Preset;
  /**
   * The destination was started with `-incoming defer`: once its capabilities are set, `migrate-incoming` makes it
   * listen on `uri` (QEMU takes `postcopy-preempt` only before its incoming migration starts).
   */
  listen?: boolean;
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

export async function migrateQemu(
  source: QmpClient,
  dest: QmpClient,
  o: QemuMigrateOptions,
): Promise<QemuMigrationReport> {
  const {
    uri,
    listen,
    preset,
    pollMs,
    onProgress,
    sourceName,
    guestId,
    cgroupRoot,
    raplRoot,
    cpufreqRoot,
    ...rest
  } = o;
  const explicit = Object.fromEntries(
    Object.entries(rest).filter(([, v]) => v !== undefined),
  ) as Partial<MigrationOptions>;
  const ramBytes = await guestRamBytes(source);
  const opts = resolveOptions(explicit, preset, ramBytes);
  const r = emptyQemuReport({ options: opts, source: sourceName ?? 'qemu', destination: uri, guestId });
  r.qemu.notApplied = notApplied(opts, explicit);
  const pid = await qemuPid(source, r);
  await configure(source, dest, r, opts, ramBytes);
  // (with multifd, configure has already started the listener)
  if (listen && opts.multifdChannels <= 1) await dest.execute('migrate-incoming', { uri });
  const power = pid ? startPower(pid, r.qemu.vcpuThreads, opts, raplRoot) : undefined;
  const destPid = await qemuPid(dest, undefined);
  const destCpuBefore = destPid ? processCpuOrUndefined(destPid) : undefined;
  const held: Capping = {};
  // Both QEMUs on this host: their event stamps share one clock, so the guest's blackout can be read from them.
  const blackout = pid && destPid ? watchBlackout(source, dest) : undefined;
  try {
    await startCapping(held, pid, r, opts, power, { cgroupRoot, cpufreqRoot });
    const { cap, dvfs } = held;
    await drive(source, dest, r, opts, { pollMs: pollMs ?? 50, onProgress, power, cap });
    const blackoutMs = r.status === 'completed' ? await blackout?.finish(2000) : undefined;
    if (blackoutMs !== undefined) r.qemu.blackoutMs = blackoutMs;
    if (r.qemu.switchedToPostcopy) await readBlocktime(dest, r);
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
        const after = processCpuOrUndefined(destPid);
        if (after !== undefined) r.qemu.cpu.destination = { totalMs: after - destCpuBefore };
      }
    }
    return r;
  } finally {
    await blackout?.finish(0);
    await held.cap?.release();
    await held.dvfs?.restore();
  }
}

/** Capabilities on both sides (post-copy must be agreed before the stream starts) and the source's parameters. */
async function configure(
  source: QmpClient,
  dest: QmpClient,
  r: QemuMigrationReport,
  opts: MigrationOptions,
  ramBytes: number,
): Promise<void> {
  const postcopy =
    opts.strategy === 'postcopy' ||
    opts.strategy === 'hybrid' ||
    opts.onStall === 'postcopy' ||
    opts.onNonConvergence === 'postcopy';
  const autoConverge = usesAutoConverge(opts);
  const multifd = opts.multifdChannels > 1;
  const capabilities: Record<string, boolean> = {
    xbzrle: opts.xbzrle,
    'auto-converge': autoConverge,
    'postcopy-ram': postcopy,
    // Said either way too: a QEMU that arrived by a multifd migration keeps multifd on, and QEMU refuses post-copy
    // with it ("Postcopy is not yet compatible with multifd") and a destination without it breaks the stream.
    multifd,
    // QEMU's postcopy-preempt: a second channel for the pages the destination faults on (both sides). Said either
    // way: a QEMU that arrived by a migration with it keeps it on otherwise, and its peer would not expect it.
    ...(postcopy ? { 'postcopy-preempt': opts.postcopyPreempt } : {}),
  };
  try {
    await source.execute('migrate-set-capabilities', {
      capabilities: Object.entries(capabilities).map(([capability, state]) => ({ capability, state })),
    });
  } catch (err) {
    if (postcopy && !opts.postcopyPreempt && err instanceof Error && /preempt/i.test(err.message)) {
      throw new UsageError(
        `the source QEMU cannot turn postcopy-preempt off (${err.message}): it arrived by a migration with it on; ` +
          'migrate it with --postcopy-preempt',
        'postcopy-preempt',
      );
    }
    throw err;
  }
  // The destination must agree on post-copy before the stream starts.
  // postcopy-blocktime: the destination then reports how long vCPUs waited on faults (report.ts).
  if (postcopy) {
    try {
      await dest.execute('migrate-set-capabilities', {
        capabilities: [
          { capability: 'postcopy-ram', state: true },
          { capability: 'postcopy-blocktime', state: true },
          ...(opts.postcopyPreempt ? [{ capability: 'postcopy-preempt', state: true }] : []),
        ],
      });
    } catch (err) {
      if (opts.postcopyPreempt && err instanceof Error && /before incoming/i.test(err.message)) {
        throw new UsageError(
          'QEMU takes postcopy-preempt only before its incoming migration starts: start the destination with ' +
            '-incoming defer (livemig qemu testvm --incoming defer) and give --uri tcp:HOST:PORT to listen on',
          'postcopy-preempt',
        );
      }
      throw err;
    }
  }
  // QEMU's multifd: both sides need the capability and the same channel count (and compression) before the
  // stream starts, and the destination before it listens: it must be started with `-incoming defer`; the bridge
  // then starts its listener (migrate-incoming) on the migration's address, after every capability above.
  if (multifd) {
    const mf = multifdParameters(opts);
    await dest
      .execute('migrate-set-capabilities', { capabilities: [{ capability: 'multifd', state: true }] })
      .catch((err: unknown) => {
        throw new UsageError(
          `--multifd-channels: the destination QEMU refused multifd (${(err as Error).message}): QEMU sets multifd ` +
            'before the destination listens, so start it with `-incoming defer` and pass --uri; the bridge then ' +
            'starts the listener (migrate-incoming)',
          'multifd-channels',
        );
      });
    await dest.execute('migrate-set-parameters', mf);
    await dest.execute('migrate-incoming', { uri: r.destination });
    await source.execute('migrate-set-parameters', mf);
  }
  r.qemu.capabilities = capabilities;
  const params: Record<string, number> = {
    // With a downtime ramp, its START (resolveOptions makes it the limit); drive.ts raises it.
    'downtime-limit': Math.round(opts.downtimeLimitMs),
    // 0 is "no limit" for both (QEMU ≥ 8.1); post-copy gets the same limit so that strategies compare fairly.
    'max-bandwidth': Math.round(opts.maxBandwidth),
  };
  if (postcopy) params['max-postcopy-bandwidth'] = Math.round(opts.maxBandwidth);
  // The same option, the same meaning (QEMU ≥ 8.2); 0 = unset, QEMU's own default.
  if (opts.availSwitchoverBandwidth > 0)
    params['avail-switchover-bandwidth'] = Math.round(opts.availSwitchoverBandwidth);
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
}

/** The destination's postcopy-blocktime figures (capability set in configure), when it reports them. */
async function readBlocktime(dest: QmpClient, r: QemuMigrationReport): Promise<void> {
  try {
    const info = (await dest.execute('query-migrate')) as {
      'postcopy-blocktime'?: unknown;
      'postcopy-vcpu-blocktime'?: unknown;
    };
    const total = info['postcopy-blocktime'];
    const vcpu = info['postcopy-vcpu-blocktime'];
    if (typeof total === 'number') {
      r.qemu.postcopyBlocktime = {
        totalMs: total,
        vcpuMs: Array.isArray(vcpu) ? vcpu.filter((v): v is number => typeof v === 'number') : [],
      };
    }
  } catch {
    // A destination that already quit: the figures are simply absent from the report.
  }
}

/** The CAP and DVFS in force during the migration; released by the caller whatever happens. */
interface Capping {
  cap?: CpuCap;
  dvfs?: CpufreqControl;
}

/** A fixed CAP of the source's vCPU threads (cgroup) and DVFS (cpufreq), as the options ask; filled into `held`. */
async function startCapping(
  held: Capping,
  pid: number | null,
  r: QemuMigrationReport,
  opts: MigrationOptions,
  power: Power | undefined,
  roots: { cgroupRoot: string | undefined; cpufreqRoot: string | undefined },
): Promise<void> {
  if (opts.capping === 'none' && opts.migrationCap <= 0) return;
  if (!pid)
    throw new MigrationError('GUEST_NOT_FOUND', 'power capping needs the source QEMU on this host (/proc)');
  if (opts.capping === 'cap' || opts.capping === 'hybrid' || opts.migrationCap > 0) {
    held.cap = await capQemu({ pid, threadIds: r.qemu.vcpuThreads }, opts.migrationCap, {
      name: `qemu-${pid}`,
      ...(roots.cgroupRoot ? { root: roots.cgroupRoot } : {}),
    });
    if (opts.migrationCap > 0) capEvent(r, opts.migrationCap, 'migration-cap: fixed, cgroup CPU controller');
  }
  if (opts.capping === 'dvfs' || opts.capping === 'hybrid') {
    if (opts.dvfsGhz <= 0)
      throw new UsageError(
        'DVFS on a QEMU host needs --dvfs-ghz (budget-driven DVFS is engine-only)',
        'dvfs-ghz',
      );
    held.dvfs = await setCpufreq(opts.dvfsGhz, roots.cpufreqRoot);
    const dvfs = held.dvfs;
    r.events.push(`0.000s power: DVFS ${(dvfs.khz / 1e6).toFixed(3)} GHz on every core (cpufreq)`);
    if (power && isDvfsModel(power.model))
      power.meter.setDvfsState(nearestState(power.model, dvfs.khz / 1e6));
  }
}

/** QEMU's multifd parameters for livemig's options: the channel count and, for zstd or deflate, the compression. */
function multifdParameters(o: MigrationOptions): Record<string, number | string> {
  const compression = o.compress === 'zstd' ? 'zstd' : o.compress === 'deflate' ? 'zlib' : 'none';
  return { 'multifd-channels': o.multifdChannels, 'multifd-compression': compression };
}

/** livemig options with no QEMU equivalent: said in the report rather than silently dropped. */
function notApplied(o: MigrationOptions, explicit: Partial<MigrationOptions>): string[] {
  const out: string[] = [];
  const multifdCompression = o.multifdChannels > 1 && (o.compress === 'zstd' || o.compress === 'deflate');
  if (o.compress !== 'none' && !multifdCompression)
    throw new UsageError(
      o.multifdChannels > 1
        ? `--compress ${o.compress}: QEMU's multifd compresses with zstd or zlib (--compress zstd or deflate) only`
        : `--compress ${o.compress}: QEMU compresses pages only on multifd channels (QEMU's multifd-zstd, multifd-zlib): add --multifd-channels 2 or more`,
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
  if (o.downtimeRamp && usesAutoConverge(o))
    out.push(
      "downtimeRamp with auto-converge: QEMU's throttle runs from the start (a capability cannot be turned on " +
        'mid-migration), so the ramp does not hold it back as the engine does',
    );
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
