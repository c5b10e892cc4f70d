/**
 * Migration options: one definition shared by the CLI flags, the control API and the report. Defaults follow
 * QEMU's so results are comparable; presets apply the stop rules other tools use (sources in docs/presets.md).
 */
import { z } from 'zod';
import { UsageError } from '../errors.js';
import { POWER_MODEL_NAMES } from '../power/models.js';
import { CAP_CONTROLS, CAPPING_MODES } from '../power/session-view.js';

export const STRATEGIES = ['cold', 'precopy', 'postcopy', 'hybrid'] as const;
export type Strategy = (typeof STRATEGIES)[number];
export const COMPRESS_METHODS = ['none', 'rle', 'deflate', 'zstd', 'lz4'] as const;
export type CompressMethod = (typeof COMPRESS_METHODS)[number];
/** What pre-copy does when the dirty rate outruns the link, or when rounds stop making progress. */
export const NON_CONVERGENCE_ACTIONS = ['continue', 'auto-converge', 'postcopy', 'abort'] as const;
export type NonConvergenceAction = (typeof NON_CONVERGENCE_ACTIONS)[number];
export const VERIFY_METHODS = ['ledger', 'full', 'none'] as const;
export type VerifyMethod = (typeof VERIFY_METHODS)[number];
export const PAGE_ORDERS = ['address', 'hot-last'] as const;
export type PageOrder = (typeof PAGE_ORDERS)[number];
// Power capping modes are power's (src/power/session-view.ts): the options re-export them.
export { CAP_CONTROLS, CAPPING_MODES, type CapControl, type CappingMode } from '../power/session-view.js';
export const PRESETS = ['qemu', 'libvirt', 'proxmox', 'nova', 'kubevirt', 'xen'] as const;
export type Preset = (typeof PRESETS)[number];

const MiB = 1024 * 1024;

/**
 * KubeVirt's downtime ramp (VEP 248/291): the downtime limit starts at `startMs` and, after each round that did not
 * shrink the dirty set, rises by `stepMs` up to `maxMs`, before any other stall action may act.
 */
export const downtimeRampSchema = z
  .strictObject({
    startMs: z.number().positive().max(3_600_000),
    stepMs: z.number().positive().max(3_600_000),
    maxMs: z.number().positive().max(3_600_000),
  })
  .refine((r) => r.startMs <= r.maxMs, { message: 'START must not exceed MAX' });
export type DowntimeRamp = z.infer<typeof downtimeRampSchema>;

export const migrationOptionsSchema = z.strictObject({
  strategy: z.enum(STRATEGIES),
  /** Switch over when the expected downtime is at most this (ms). QEMU: 300. */
  downtimeLimitMs: z.number().positive().max(3_600_000),
  /** Downtime ramp (KubeVirt VEP 248/291); null = off. Its start replaces downtimeLimitMs. */
  downtimeRamp: downtimeRampSchema.nullable(),
  /** Stop-and-copy after this many pre-copy rounds regardless of convergence (0 = no limit). */
  maxRounds: z.number().int().min(0).max(100_000),
  /** Switch over once fewer than this many pages are dirty (Xen: 50; 0 = off). */
  minDirtyPages: z.number().int().min(0),
  /** Token-bucket limit on the source, bytes per second (0 = unlimited). QEMU: 128 MiB/s. */
  maxBandwidth: z.number().min(0),
  /**
   * QEMU's avail-switchover-bandwidth: the rate the stop-and-copy may use, bytes/s; when set it replaces the measured
   * bandwidth in the convergence check, as in QEMU. 0 (default): the live rounds' measured rate decides convergence,
   * and once a round makes no progress, the engine's own estimate of its unlimited rate decides whether the set
   * fits the limit (policy.ts, switchoverBandwidth; round-decision.ts says where that rule applies).
   */
  availSwitchoverBandwidth: z.number().min(0),
  /**
   * Once a round converges, run more live rounds while each is expected to shrink the dirty set to 3/4 or less
   * (converge-tail.ts). Off: switch over at the first round whose set fits the downtime limit, as QEMU and classic
   * pre-copy (Xen, KVM) do: the baseline of Svärd et al.'s comparison.
   */
  convergeTail: z.boolean(),
  xbzrle: z.boolean(),
  xbzrleCacheBytes: z.number().int().min(0),
  /** static: the cache keeps xbzrleCacheBytes; dynamic: resized between rounds up to xbzrleCacheMaxBytes. */
  cacheSizing: z.enum(['static', 'dynamic']),
  xbzrleCacheMaxBytes: z.number().int().min(0),
  cacheWays: z.number().int().min(1).max(64),
  compress: z.enum(COMPRESS_METHODS),
  autoConverge: z.boolean(),
  /** QEMU's cpu-throttle-initial / -increment / max-cpu-throttle, percent of time the vCPU is held back. */
  throttleInitial: z.number().int().min(1).max(99),
  throttleIncrement: z.number().int().min(1).max(99),
  throttleMax: z.number().int().min(1).max(99),
  /** QEMU's dirty-limit capability: when dirtying outruns the link (the auto-converge trigger), cap what each vCPU
   *  may newly dirty instead of throttling its CPU (docs/dirty-limit.md). */
  dirtyLimit: z.boolean(),
  /** QEMU's vcpu-dirty-limit: MB/s (2^20 bytes) each vCPU may dirty once dirty-limit applies. QEMU: 1. */
  vcpuDirtyLimit: z.number().positive().max(1_000_000),
  /** QEMU's x-vcpu-dirty-limit-period: the period the quota is counted over, ms. QEMU: 1000. */
  dirtyLimitPeriodMs: z.number().int().min(1).max(1000),
  /** QEMU's throttle-trigger-threshold: throttle when dirtying exceeds this percent of what was sent. */
  throttleTriggerThreshold: z.number().int().min(1).max(100),
  /** Rounds in a row in which the dirty rate outruns the throughput before pre-copy is declared not converging. */
  nonConvergenceRounds: z.number().int().min(1).max(1000),
  onNonConvergence: z.enum(NON_CONVERGENCE_ACTIONS),
  /** Rounds without progress (remaining dirty pages not shrinking) before a stall is declared. */
  stallRounds: z.number().int().min(1).max(1000),
  onStall: z.enum([...NON_CONVERGENCE_ACTIONS, 'double-downtime'] as const),
  /** Hybrid: pre-copy rounds before switching to post-copy. */
  postcopyAfterRounds: z.number().int().min(1).max(100_000),
  /** Give up (guest stays on the source) after this long; 0 = never. KubeVirt: 150 s per GiB. */
  timeoutMs: z.number().min(0),
  /** Give up after this long without progress; 0 = never. KubeVirt: 150 s. */
  progressTimeoutMs: z.number().min(0),
  /**
   * Post-copy recovery: how long the source keeps reconnecting after the link broke during post-copy; 0 = until
   * cancelled (QEMU waits in postcopy-paused for the operator).
   */
  recoverTimeoutMs: z.number().min(0),
  /**
   * QEMU's postcopy-preempt: in post-copy, the answers to the destination's page faults travel on a second
   * connection of their own, unthrottled and never behind the background push (docs/postcopy-recovery.md).
   */
  postcopyPreempt: z.boolean(),
  /**
   * Switch-over: how long the source waits for RESUMED after GO (and the destination for GO after READY) before
   * the two sides settle who runs the guest over a new connection (RECONCILE, docs/protocol.md).
   */
  handoverTimeoutMs: z.number().min(1000).max(600_000),
  /**
   * How long the source keeps trying to reach the destination to settle ownership after a fault at switch-over;
   * then it reports OWNER_UNKNOWN ("paused on the source, destination unknown") and keeps the guest paused.
   */
  reconcileTimeoutMs: z.number().min(0).max(86_400_000),
  /**
   * Switch-over: send GO in the same write as the digest (when the destination can reconcile), so that the
   * destination resumes the guest as soon as its check passes — one round trip less of downtime. The source then
   * commits before READY: cancel and --timeout stop applying once the digest is sent, and a fault after it is
   * settled by RECONCILE as one after GO. On by default (it applies only when the destination grants
   * OWNER_RECONCILE and the source can redial it). Off: GO after READY (cancel and --timeout apply until then, and a
   * destination that dies or hangs before READY leaves the guest running on the source instead of paused there
   * until RECONCILE settles it).
   */
  goWithDigest: z.boolean(),
  /**
   * Post-copy and hybrid: send GO in the same write as the vCPU state and POSTCOPY_START (when the destination can
   * reconcile and the source can redial it), as QEMU commits when it sends its post-copy package: the destination
   * starts the guest as soon as it has taken the start, one round trip less of downtime. The point of no return is
   * then that write (docs/protocol.md, "GO with the post-copy start"). Off: GO after READY.
   */
  postcopyGoWithStart: z.boolean(),
  verify: z.enum(VERIFY_METHODS),
  pageOrder: z.enum(PAGE_ORDERS),
  /** hot-last: a page dirty at this many syncs in a row is held back until the stop-and-copy. */
  hotStreak: z.number().int().min(1).max(255),
  /** Source host power budget in watts (modelled, or measured where RAPL exists); 0 = none. */
  powerCap: z.number().min(0).max(1_000_000),
  /** The budget holds for the average over this window (Intel RAPL's PL1 time window), ms. */
  powerWindowMs: z.number().min(100).max(3_600_000),
  capping: z.enum(CAPPING_MODES),
  /** fixed: choose the CAP / DVFS state once when the transfer starts; adaptive: re-choose it after every round. */
  capControl: z.enum(CAP_CONTROLS),
  /** CAP for the migrating VM (percent of one CPU per vCPU); 0 = derive it from powerCap. The seed used 15. */
  migrationCap: z.number().int().min(0).max(100),
  /** DVFS frequency for every core during the migration, GHz; 0 = derive it from powerCap. The seed used 1.7. */
  dvfsGhz: z.number().min(0).max(10),
  /** adaptive CAP: pre-copy should end within this long (bounds the completion time); 0 = only keep converging. */
  completionTargetMs: z.number().min(0),
  /** Host power model for modelled watts and capping decisions. */
  powerModel: z.enum(POWER_MODEL_NAMES),
  /**
   * QEMU's multifd-channels: 1 = every page on the migration's one connection; N ≥ 2 = pages sharded across N extra
   * connections, each encoded and applied on its own thread, the main one keeping the control stream (docs/multifd.md).
   */
  multifdChannels: z.number().int().min(1).max(16),
  /** Largest PAGES frame payload the source builds. */
  framePayloadBytes: z
    .number()
    .int()
    .min(64 * 1024)
    .max(16 * MiB),
});

export type MigrationOptions = z.infer<typeof migrationOptionsSchema>;

export const DEFAULT_OPTIONS: MigrationOptions = {
  strategy: 'precopy',
  downtimeLimitMs: 300,
  downtimeRamp: null,
  maxRounds: 30,
  minDirtyPages: 0,
  maxBandwidth: 128 * MiB,
  availSwitchoverBandwidth: 0,
  convergeTail: true,
  xbzrle: false,
  xbzrleCacheBytes: 64 * MiB,
  cacheSizing: 'static',
  xbzrleCacheMaxBytes: 256 * MiB,
  cacheWays: 2,
  compress: 'none',
  autoConverge: false,
  throttleInitial: 20,
  throttleIncrement: 10,
  throttleMax: 99,
  throttleTriggerThreshold: 50,
  dirtyLimit: false,
  vcpuDirtyLimit: 1,
  dirtyLimitPeriodMs: 1000,
  nonConvergenceRounds: 3,
  onNonConvergence: 'continue',
  stallRounds: 5,
  onStall: 'continue',
  postcopyAfterRounds: 2,
  timeoutMs: 0,
  progressTimeoutMs: 0,
  recoverTimeoutMs: 0,
  postcopyPreempt: false,
  handoverTimeoutMs: 15_000,
  reconcileTimeoutMs: 60_000,
  goWithDigest: false,
  postcopyGoWithStart: false,
  verify: 'ledger',
  pageOrder: 'address',
  hotStreak: 2,
  multifdChannels: 1,
  framePayloadBytes: 1 * MiB,
  powerCap: 0,
  powerWindowMs: 1000,
  capping: 'none',
  capControl: 'fixed',
  migrationCap: 0,
  dvfsGhz: 0,
  completionTargetMs: 0,
  powerModel: 'i7-920',
};

/**
 * The defaults and stop rules of common tools, as far as livemig's options can express them.
 * Each entry's source is cited in docs/presets.md.
 */
export function presetOptions(preset: Preset, ramBytes: number): Partial<MigrationOptions> {
  const gib = ramBytes / 1024 ** 3;
  switch (preset) {
    case 'qemu':
      return {};
    case 'libvirt':
      // libvirt leaves QEMU's downtime limit but lifts the bandwidth cap (unlimited unless --bandwidth).
      return { maxBandwidth: 0 };
    case 'proxmox':
      // qemu-server: 100 ms downtime, XBZRLE cache = RAM / 10, downtime doubled when a round makes no progress.
      return {
        downtimeLimitMs: 100,
        maxBandwidth: 0,
        xbzrle: true,
        xbzrleCacheBytes: Math.max(1, Math.floor(ramBytes / 10)),
        onStall: 'double-downtime',
        stallRounds: 1,
      };
    case 'nova':
      // nova.conf [libvirt]: live_migration_downtime 500 ms, completion timeout 800 s per GiB, no post-copy
      // or auto-converge unless permitted.
      return { downtimeLimitMs: 500, maxBandwidth: 0, timeoutMs: Math.max(800_000 * gib, 800_000) };
    case 'kubevirt':
      // KubeVirt MigrationConfiguration (current defaults): completionTimeoutPerGiB 150 s, progressTimeout 150 s,
      // bandwidthPerMigration 0 = unlimited (older releases: 800 s per GiB and 64Mi).
      return {
        maxBandwidth: 0,
        timeoutMs: Math.max(150_000 * gib, 150_000),
        progressTimeoutMs: 150_000,
      };
    case 'xen':
      // libxc migration v2: at most 5 iterations, stop when fewer than 50 pages are dirty.
      return { maxRounds: 5, minDirtyPages: 50, maxBandwidth: 0 };
  }
}

/** Merges defaults, a preset and explicit values, and validates the result with messages that name the option. */
export function resolveOptions(
  explicit: Partial<MigrationOptions>,
  preset: Preset | undefined,
  ramBytes: number,
): MigrationOptions {
  const merged = { ...DEFAULT_OPTIONS, ...(preset ? presetOptions(preset, ramBytes) : {}), ...explicit };
  const parsed = migrationOptionsSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new UsageError(
      `migration option ${issue.path.join('.')}: ${issue.message}`,
      String(issue.path[0] ?? ''),
    );
  }
  const o = parsed.data;
  if (o.downtimeRamp) {
    // The ramp's START is the downtime limit; a different explicit limit is a contradiction, not a preference.
    if (explicit.downtimeLimitMs !== undefined && explicit.downtimeLimitMs !== o.downtimeRamp.startMs) {
      throw new UsageError(
        `downtimeLimitMs (${explicit.downtimeLimitMs}) and downtimeRamp (starting at ${o.downtimeRamp.startMs}) both set ` +
          'the first downtime limit: drop --downtime-limit, the ramp starts at its START',
        'downtimeRamp',
      );
    }
    o.downtimeLimitMs = o.downtimeRamp.startMs;
  }
  if (o.throttleInitial > o.throttleMax) {
    throw new UsageError(
      `throttleInitial (${o.throttleInitial}) exceeds throttleMax (${o.throttleMax})`,
      'throttleInitial',
    );
  }
  if (
    o.postcopyPreempt &&
    o.strategy !== 'postcopy' &&
    o.strategy !== 'hybrid' &&
    o.onNonConvergence !== 'postcopy'
  ) {
    // QEMU refuses postcopy-preempt without postcopy-ram too.
    throw new UsageError(
      'postcopyPreempt speeds up the answers to post-copy page faults: it needs --strategy postcopy or hybrid ' +
        '(or --on-non-convergence postcopy)',
      'postcopyPreempt',
    );
  }
  if (
    o.dirtyLimit &&
    (o.autoConverge || o.onNonConvergence === 'auto-converge' || o.onStall === 'auto-converge')
  ) {
    throw new UsageError(
      'dirty-limit and auto-converge are alternatives (QEMU refuses both): choose one',
      'dirtyLimit',
    );
  }
  if (
    o.multifdChannels > 1 &&
    (o.strategy === 'postcopy' ||
      o.strategy === 'hybrid' ||
      o.onNonConvergence === 'postcopy' ||
      o.onStall === 'postcopy')
  ) {
    throw new UsageError(
      'multifd channels carry pre-copy and cold migrations only: post-copy pages travel on the main connection ' +
        '(use --multifd-channels 1 with post-copy)',
      'multifdChannels',
    );
  }
  return o;
}
