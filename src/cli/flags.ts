/**
 * Flags shared by several commands: the guest's (`run`, `guest start`) and the migration's (`run`, `migrate`).
 * One place turns them into GuestConfig and MigrationOptions, with errors that name the flag.
 */
import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { AgentClient, clientApiToken, loadTls } from '../agent/index.js';
import { UsageError } from '../errors.js';
import {
  DISTRIBUTIONS,
  type GuestConfig,
  resolveConfig,
  TRACE_PACINGS,
  WORKLOAD_NAMES,
  type WorkloadParams,
} from '../guest/index.js';
import {
  CAPPING_MODES,
  COMPRESS_METHODS,
  type MigrationOptions,
  NON_CONVERGENCE_ACTIONS,
  PAGE_ORDERS,
  PRESETS,
  type Preset,
  STRATEGIES,
  VERIFY_METHODS,
} from '../migration/index.js';
import { POWER_MODEL_NAMES } from '../power/index.js';
import { withDefaultGuest } from './default-guest.js';
import { downtimeRampFlag, durationFlag, intFlag, LIMITS, numberFlag, rateFlag, sizeFlag } from './values.js';

export { durationFlag, intFlag, LIMITS, numberFlag, rateFlag, sizeFlag } from './values.js';

const int = intFlag;
const num = numberFlag;
const size = (value: string, flag: string, min = 1) => sizeFlag(value, flag, min, LIMITS.size);
/** 0 is accepted where it means "none" / "never" (timeouts, targets). */
const duration = (value: string, flag: string, min = 0) => durationFlag(value, flag, min, LIMITS.duration);

export function addGuestFlags(cmd: Command): Command {
  return cmd
    .option('--ram <size>', 'guest RAM (e.g. 256MiB, 1GiB, 8GiB)', '256MiB')
    .option('--vcpus <n>', 'vCPUs (worker threads)', '1')
    .addOption(
      new Option(
        '--workload <name>',
        `what the guest runs: ${WORKLOAD_NAMES.join(', ')}, or trace:FILE (a recorded program, docs/traces.md); ` +
          "default: the demo's guest, gap at 20000 pages/s over 64MiB (a named workload has its own defaults)",
      ),
    )
    .option(
      '--trace-speed <x>',
      'trace:FILE replay speed: 1 = as recorded, 2 = twice as fast, 0 = as fast as it can',
    )
    .addOption(
      new Option(
        '--trace-pacing <p>',
        "trace:FILE: 'recorded' follows the recording's bursts and quiet spells, 'mean' writes evenly at its mean rate",
      ).choices([...TRACE_PACINGS]),
    )
    .option('--working-set <size>', "bytes of RAM the workload touches (default: the workload's own)")
    .option('--write-rate <pages/s>', 'pages written per second per vCPU, 0 = as fast as it can')
    .option('--bytes-per-write <n>', 'bytes changed by a small write (what XBZRLE thrives on)')
    .option('--whole-page-fraction <f>', 'fraction 0..1 of writes that rewrite a whole page')
    .addOption(new Option('--distribution <d>', 'how pages are picked').choices([...DISTRIBUTIONS]))
    .option('--zipf-exponent <s>', 'Zipf exponent of the hot set (zipf distribution)')
    .option('--record-bytes <n>', 'kv: bytes per record')
    .option('--page-size <size>', 'page size, a power of two', '4KiB')
    .option('--seed <n>', 'seed of the deterministic workload', '1')
    .option('--cap <percent>', 'guest CPU cap, Xen credit-scheduler semantics (0 = uncapped)', '0');
}

export interface GuestFlagValues {
  ram: string;
  vcpus: string;
  /** Absent: the default guest (default-guest.ts). */
  workload?: string;
  workingSet?: string;
  writeRate?: string;
  bytesPerWrite?: string;
  wholePageFraction?: string;
  distribution?: string;
  zipfExponent?: string;
  recordBytes?: string;
  traceSpeed?: string;
  tracePacing?: string;
  pageSize: string;
  seed: string;
  cap: string;
}

export function guestConfigFromFlags(flags: GuestFlagValues): { config: GuestConfig; cap: number } {
  const f = withDefaultGuest(flags);
  const params: Partial<WorkloadParams> = {};
  if (f.workingSet !== undefined) params.workingSetBytes = size(f.workingSet, '--working-set');
  if (f.writeRate !== undefined) params.writeRate = num(f.writeRate, '--write-rate', 0, 1e9);
  if (f.bytesPerWrite !== undefined)
    params.bytesPerWrite = int(f.bytesPerWrite, '--bytes-per-write', 1, 65536);
  if (f.wholePageFraction !== undefined) {
    params.wholePageFraction = num(f.wholePageFraction, '--whole-page-fraction', 0, 1);
  }
  if (f.distribution !== undefined) params.distribution = f.distribution as WorkloadParams['distribution'];
  if (f.zipfExponent !== undefined) params.zipfExponent = num(f.zipfExponent, '--zipf-exponent', 0.01, 10);
  if (f.recordBytes !== undefined) params.recordBytes = int(f.recordBytes, '--record-bytes', 1, 65536);
  let workload = f.workload as GuestConfig['workload']['name'];
  if (f.workload.startsWith('trace:')) {
    // Absolute, so agents started elsewhere open the same file.
    workload = 'trace';
    params.traceFile = resolve(f.workload.slice('trace:'.length));
  } else if (!(WORKLOAD_NAMES as readonly string[]).includes(f.workload)) {
    throw new UsageError(
      `--workload: "${f.workload}" is not a workload; use one of ${WORKLOAD_NAMES.join(', ')}, or trace:FILE`,
      '--workload',
    );
  }
  if (f.traceSpeed !== undefined) {
    if (workload !== 'trace')
      throw new UsageError('--trace-speed: only with --workload trace:FILE', '--trace-speed');
    params.traceSpeed = num(f.traceSpeed, '--trace-speed', 0, 1e6);
  }
  if (f.tracePacing !== undefined) {
    if (workload !== 'trace')
      throw new UsageError('--trace-pacing: only with --workload trace:FILE', '--trace-pacing');
    if (f.tracePacing === 'recorded' && f.writeRate !== undefined) {
      throw new UsageError(
        '--write-rate sets a mean rate: use it with --trace-pacing mean, or drop it to follow the recording',
        '--write-rate',
      );
    }
    params.tracePacing = f.tracePacing as WorkloadParams['tracePacing'];
  }
  const config: GuestConfig = {
    ramBytes: size(f.ram, '--ram', 512),
    pageSize: sizeFlag(f.pageSize, '--page-size', 512, 65536),
    vcpus: int(f.vcpus, '--vcpus', 1, 64),
    seed: int(f.seed, '--seed', 0, 2 ** 31 - 1),
    workload: { name: workload, params },
  };
  // Fail here, before any agent starts, on what the guest would refuse (a missing trace file, a working set too
  // small for the vCPUs); the agents resolve the same config again.
  resolveConfig(config);
  return { config, cap: int(f.cap, '--cap', 0, 100) };
}

export function addMigrationFlags(cmd: Command): Command {
  return cmd
    .addOption(new Option('--strategy <s>', 'how to migrate').choices([...STRATEGIES]).default('precopy'))
    .addOption(
      new Option('--preset <tool>', "apply another tool's defaults and stop rules").choices([...PRESETS]),
    )
    .option('--downtime-limit <ms>', 'switch over when the expected downtime is below this (QEMU: 300ms)')
    .option(
      '--downtime-ramp <START:STEP:MAX>',
      "start the downtime limit at START and raise it by STEP after each round that did not shrink the dirty set, up to MAX, before any other stall action (KubeVirt's ramp; e.g. 150ms:150ms:1050ms)",
    )
    .option('--max-rounds <n>', 'stop-and-copy after this many pre-copy rounds (0 = no limit; default 30)')
    .option('--max-bandwidth <rate>', 'bandwidth limit, e.g. 128MiB, 1Gbit, 0 = unlimited (QEMU: 128MiB/s)')
    .option(
      '--avail-switchover-bandwidth <rate>',
      "QEMU's: the rate the stop-and-copy may use, in place of the measured one in the convergence check " +
        "(default 0: measured; a round without progress switches over if its set fits at the engine's unlimited rate)",
    )
    .option(
      '--no-converge-tail',
      'switch over at the first round whose dirty set fits the downtime limit, as QEMU and classic pre-copy do ' +
        '(default: live rounds run on while each is expected to shrink the set to 3/4 or less)',
    )
    .option('--xbzrle', 'send resent pages as XBZRLE deltas against a cache of what was sent')
    .option('--xbzrle-cache <size>', 'XBZRLE cache size (QEMU: 64MiB)')
    .option('--cache-ways <n>', 'cache associativity: 1 = direct-mapped, 2 = Svärd et al.')
    .addOption(
      new Option(
        '--cache-sizing <mode>',
        'static: keep --xbzrle-cache; dynamic: resize between rounds',
      ).choices(['static', 'dynamic']),
    )
    .option('--xbzrle-cache-max <size>', 'dynamic sizing: memory budget of the cache (default 256MiB)')
    .addOption(new Option('--compress <method>', 'compress whole pages').choices([...COMPRESS_METHODS]))
    .option(
      '--multifd-channels <n>',
      "QEMU's multifd: shard pages across N extra connections, one thread each (1 = one connection; default 1)",
    )
    .option('--auto-converge', 'throttle the guest step by step when it dirties faster than the link sends')
    .option('--throttle-initial <percent>', 'auto-converge: first throttle (QEMU: 20)')
    .option('--throttle-increment <percent>', 'auto-converge: step (QEMU: 10)')
    .option('--throttle-max <percent>', 'auto-converge: maximum (QEMU: 99)')
    .option(
      '--dirty-limit <MB/s>',
      "instead of auto-converge: cap each vCPU's new dirty pages at this MB/s; readers are not slowed (QEMU's dirty-limit)",
    )
    .option(
      '--dirty-limit-period <ms>',
      'dirty-limit: the period the quota is counted over, 1..1000 ms (QEMU: 1000)',
    )
    .addOption(
      new Option(
        '--on-non-convergence <action>',
        'when dirtying outruns the link for several rounds',
      ).choices([...NON_CONVERGENCE_ACTIONS]),
    )
    .addOption(
      new Option('--on-stall <action>', 'when rounds stop making progress').choices([
        ...NON_CONVERGENCE_ACTIONS,
        'double-downtime',
      ]),
    )
    .option('--postcopy-after-rounds <n>', 'hybrid: pre-copy rounds before post-copy (default 2)')
    .option('--timeout <duration>', 'give up after this long, the guest stays on the source (e.g. 60s)')
    .option(
      '--recover-timeout <duration>',
      'post-copy: keep reconnecting this long after the link breaks (0 = until cancelled; default 0)',
    )
    .option(
      '--postcopy-preempt',
      "post-copy: send the answers to the destination's page faults on a second connection of their own, never behind the background push (QEMU's postcopy-preempt)",
    )
    .addOption(new Option('--verify <method>', 'switch-over digest').choices([...VERIFY_METHODS]))
    .addOption(
      new Option(
        '--page-order <order>',
        'address, or hot-last: cold pages first, hot pages held to the end',
      ).choices([...PAGE_ORDERS]),
    )
    .option('--hot-streak <n>', 'hot-last: a page dirty at this many syncs in a row is held back (default 2)')
    .option('--power-cap <watts>', 'keep the source host under this power while migrating (docs/power.md)')
    .option('--power-window <duration>', 'the budget holds for the average over this window (default 1s)')
    .addOption(
      new Option(
        '--capping <mode>',
        'dvfs: lower every core; cap: CAP the migrating VM; hybrid: CAP, then DVFS',
      ).choices([...CAPPING_MODES]),
    )
    .addOption(
      new Option(
        '--cap-control <c>',
        'with --power-cap the budget is always held closed-loop; adaptive: also bound the CAP by completion',
      ).choices(['fixed', 'adaptive']),
    )
    .option('--migration-cap <percent>', 'CAP the migrating VM at this (instead of from --power-cap)')
    .option('--dvfs-ghz <GHz>', 'run every core at this frequency (instead of from --power-cap)')
    .option('--completion-target <duration>', 'adaptive CAP: pre-copy should end within this (e.g. 20s)')
    .addOption(
      new Option('--power-model <name>', 'host power model (default i7-920)').choices([...POWER_MODEL_NAMES]),
    );
}

export interface MigrationFlagValues {
  strategy?: string;
  preset?: string;
  downtimeLimit?: string;
  downtimeRamp?: string;
  maxRounds?: string;
  maxBandwidth?: string;
  availSwitchoverBandwidth?: string;
  /** false with --no-converge-tail (commander's negated option). */
  convergeTail?: boolean;
  xbzrle?: boolean;
  xbzrleCache?: string;
  cacheWays?: string;
  cacheSizing?: string;
  xbzrleCacheMax?: string;
  hotStreak?: string;
  compress?: string;
  multifdChannels?: string;
  autoConverge?: boolean;
  throttleInitial?: string;
  throttleIncrement?: string;
  throttleMax?: string;
  dirtyLimit?: string;
  dirtyLimitPeriod?: string;
  onNonConvergence?: string;
  onStall?: string;
  postcopyAfterRounds?: string;
  postcopyPreempt?: boolean;
  timeout?: string;
  recoverTimeout?: string;
  verify?: string;
  pageOrder?: string;
  powerCap?: string;
  powerWindow?: string;
  capping?: string;
  capControl?: string;
  migrationCap?: string;
  dvfsGhz?: string;
  completionTarget?: string;
  powerModel?: string;
}

export function migrationOptionsFromFlags(f: MigrationFlagValues): {
  options: Partial<MigrationOptions>;
  preset?: Preset;
} {
  const o: Partial<MigrationOptions> = {};
  if (f.strategy) o.strategy = f.strategy as MigrationOptions['strategy'];
  if (f.downtimeLimit !== undefined)
    o.downtimeLimitMs = durationFlag(f.downtimeLimit, '--downtime-limit', 1, 3_600_000);
  if (f.downtimeRamp !== undefined) o.downtimeRamp = downtimeRampFlag(f.downtimeRamp, '--downtime-ramp');
  if (f.maxRounds !== undefined) o.maxRounds = int(f.maxRounds, '--max-rounds', 0, 100_000);
  if (f.maxBandwidth !== undefined)
    o.maxBandwidth = rateFlag(f.maxBandwidth, '--max-bandwidth', 0, LIMITS.rate);
  if (f.convergeTail === false) o.convergeTail = false;
  if (f.availSwitchoverBandwidth !== undefined) {
    o.availSwitchoverBandwidth = rateFlag(
      f.availSwitchoverBandwidth,
      '--avail-switchover-bandwidth',
      0,
      LIMITS.rate,
    );
  }
  if (f.xbzrle) o.xbzrle = true;
  if (f.xbzrleCache !== undefined) {
    o.xbzrleCacheBytes = size(f.xbzrleCache, '--xbzrle-cache', 4096);
    o.xbzrle = true;
  }
  if (f.cacheWays !== undefined) o.cacheWays = int(f.cacheWays, '--cache-ways', 1, 64);
  if (f.cacheSizing) {
    o.cacheSizing = f.cacheSizing as MigrationOptions['cacheSizing'];
    if (o.cacheSizing === 'dynamic') o.xbzrle = true;
  }
  if (f.xbzrleCacheMax !== undefined)
    o.xbzrleCacheMaxBytes = size(f.xbzrleCacheMax, '--xbzrle-cache-max', 4096);
  if (f.hotStreak !== undefined) o.hotStreak = int(f.hotStreak, '--hot-streak', 1, 255);
  if (f.compress) o.compress = f.compress as MigrationOptions['compress'];
  if (f.multifdChannels !== undefined)
    o.multifdChannels = int(f.multifdChannels, '--multifd-channels', 1, 16);
  if (f.autoConverge) o.autoConverge = true;
  if (f.throttleInitial !== undefined)
    o.throttleInitial = int(f.throttleInitial, '--throttle-initial', 1, 99);
  if (f.throttleIncrement !== undefined)
    o.throttleIncrement = int(f.throttleIncrement, '--throttle-increment', 1, 99);
  if (f.throttleMax !== undefined) o.throttleMax = int(f.throttleMax, '--throttle-max', 1, 99);
  if (f.dirtyLimit !== undefined) {
    o.dirtyLimit = true;
    o.vcpuDirtyLimit = num(f.dirtyLimit, '--dirty-limit', 0.001, 1_000_000);
  }
  if (f.dirtyLimitPeriod !== undefined) {
    o.dirtyLimitPeriodMs = Math.round(durationFlag(f.dirtyLimitPeriod, '--dirty-limit-period', 1, 1000));
  }
  if (f.onNonConvergence) o.onNonConvergence = f.onNonConvergence as MigrationOptions['onNonConvergence'];
  if (f.onStall) o.onStall = f.onStall as MigrationOptions['onStall'];
  if (f.postcopyAfterRounds !== undefined) {
    o.postcopyAfterRounds = int(f.postcopyAfterRounds, '--postcopy-after-rounds', 1, 100_000);
  }
  if (f.postcopyPreempt) o.postcopyPreempt = true;
  if (f.timeout !== undefined) o.timeoutMs = duration(f.timeout, '--timeout');
  if (f.recoverTimeout !== undefined) o.recoverTimeoutMs = duration(f.recoverTimeout, '--recover-timeout');
  if (f.verify) o.verify = f.verify as MigrationOptions['verify'];
  if (f.pageOrder) o.pageOrder = f.pageOrder as MigrationOptions['pageOrder'];
  if (f.powerCap !== undefined) o.powerCap = num(f.powerCap, '--power-cap', 0, 1_000_000);
  // RAPL's PL1 window is about a second; below 100 ms a window holds about one meter sample.
  if (f.powerWindow !== undefined)
    o.powerWindowMs = durationFlag(f.powerWindow, '--power-window', 100, 3_600_000);
  if (f.capping) o.capping = f.capping as MigrationOptions['capping'];
  if (f.capControl) o.capControl = f.capControl as MigrationOptions['capControl'];
  if (f.migrationCap !== undefined) o.migrationCap = int(f.migrationCap, '--migration-cap', 0, 100);
  if (f.dvfsGhz !== undefined) o.dvfsGhz = num(f.dvfsGhz, '--dvfs-ghz', 0, 10);
  if (f.completionTarget !== undefined) {
    o.completionTargetMs = duration(f.completionTarget, '--completion-target');
  }
  if (f.powerModel) o.powerModel = f.powerModel as MigrationOptions['powerModel'];
  // A budget or a fixed setting alone implies the mode that uses it.
  if (!o.capping && (o.powerCap || o.migrationCap || o.dvfsGhz)) {
    o.capping = o.dvfsGhz && o.migrationCap ? 'hybrid' : o.dvfsGhz ? 'dvfs' : 'cap';
  }
  return { options: o, preset: f.preset as Preset | undefined };
}

/** `--tls-cert --tls-key --tls-ca --api-token-file` for commands that talk to agents (docs/security.md). */
export function addTlsFlags(cmd: Command): Command {
  return cmd
    .option('--tls-cert <file>', 'client certificate (PEM) for agents that run with mutual TLS')
    .option('--tls-key <file>', 'the private key of --tls-cert (PEM)')
    .option('--tls-ca <file>', 'CA certificate (PEM) that signed the agents')
    .option(
      '--api-token-file <file>',
      "the agent's API token (its --api-token-file); default $LIVEMIG_API_TOKEN_FILE if that file exists",
    );
}

export interface TlsFlagValues {
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  apiTokenFile?: string;
}

/** HOST:PORT of an agent (IPv6 in brackets), or an http(s):// URL. */
export function agentAddress(value: string, flag: string): string {
  const m = /^(?:https?:\/\/)?(\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):(\d{1,5})\/?$/.exec(value);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port < 1 || port > 65535) {
    throw new UsageError(
      `${flag}: "${value}" is not HOST:PORT of an agent (e.g. 127.0.0.1:7070, [::1]:7070, agent-a:7070)`,
      flag,
    );
  }
  return value;
}

/** A control-API client for the agent at `address` (checked, named by `flag`), over mutual TLS when the flags say so. */
export function agentClient(address: string, flag: string, f: TlsFlagValues): AgentClient {
  const tls = loadTls({ cert: f.tlsCert, key: f.tlsKey, ca: f.tlsCa });
  return new AgentClient(agentAddress(address, flag), { tls, token: clientApiToken(f.apiTokenFile) });
}
