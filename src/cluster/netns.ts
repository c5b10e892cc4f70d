/**
 * `livemig cluster --netns`: each host (agent) in a network namespace of its own, joined through a bridge in the
 * root namespace by a veth pair per host (a star, like hosts on one top-of-rack switch). Each host's link is shaped
 * with `tc tbf` in both directions (its uplink inside the namespace, its downlink on the bridge side), so migrations
 * between hosts share real, rate-limited links instead of the loopback. The manager stays in the root namespace and
 * reaches every agent through the bridge's address.
 *
 * Names carry the manager's pid and a sequence number, so parallel runs (and the two-host netns test) never collide;
 * everything is removed on the way out — at the end of the run, on an error, on SIGINT/SIGTERM, and on process exit —
 * and a run first removes what a killed run (its pid gone) left behind. Needs root (CAP_NET_ADMIN) and iproute2.
 */
import { execFileSync } from 'node:child_process';
import { type ChildAgent, spawnAgents } from '../agent/spawn.js';
import { UsageError } from '../errors.js';

/** Why `--netns` cannot be used here: not root, or no iproute2. Typed, one line, says what to do (exit code 2). */
export class NetnsError extends UsageError {
  override readonly name = 'NetnsError';
  constructor(
    message: string,
    readonly reason: 'not-root' | 'no-iproute2' | 'setup-failed',
  ) {
    super(`--netns: ${message}`, '--netns', 'BAD_ARGUMENT', { flag: '--netns', reason });
  }
}

export interface ClusterNetworkOptions {
  hosts: number;
  /** Each host's link rate, bytes per second, both directions (tc tbf). */
  rateBytesPerSec: number;
}

export interface NetnsHost {
  /** The host's network namespace. */
  ns: string;
  /** Its address on the cluster's network (the agent listens there). */
  ip: string;
  /** Its veth end on the bridge, in the root namespace (`ip link set LINK down` cuts the host off). */
  link: string;
}

const NS_PREFIX = 'livemig-c';
let sequence = 0;

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
}

function quietly(cmd: string, args: string[]): void {
  try {
    run(cmd, args);
  } catch {
    // already gone
  }
}

/** Why network namespaces cannot be made here, or undefined when they can (root, `ip` and `tc` present). */
export function netnsUnavailable(): NetnsError | undefined {
  if (process.getuid?.() !== 0) {
    return new NetnsError(
      'network namespaces need root (CAP_NET_ADMIN); run as root (e.g. sudo) or drop --netns to run the hosts on the loopback',
      'not-root',
    );
  }
  for (const tool of ['ip', 'tc']) {
    try {
      run(tool, ['-V']);
    } catch {
      return new NetnsError(
        `\`${tool}\` (iproute2) is not installed; install it (apt-get install iproute2) or drop --netns`,
        'no-iproute2',
      );
    }
  }
  return undefined;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Removes the namespaces and bridges of earlier runs whose manager is gone (killed before it could clean up). */
export function sweepStaleNetworks(): string[] {
  const removed: string[] = [];
  let list = '';
  try {
    list = run('ip', ['netns', 'list']);
  } catch {
    return removed;
  }
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = /^livemig-c(\d+)-([0-9a-z]+)-h\d+$/.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    quietly('ip', ['netns', 'del', name]);
    quietly('ip', ['link', 'del', bridgeName(Number(m[1]), m[2]!)]);
    removed.push(name);
  }
  return removed;
}

const bridgeName = (pid: number, seq: string): string => `lm${pid.toString(36)}${seq}br`;

/** A free 10.A.B.0/24 for this run: derived from the pid, skipping any the root namespace already uses. */
function pickSubnet(): string {
  let used = '';
  try {
    used = run('ip', ['-4', '-o', 'addr', 'show']) + run('ip', ['-4', 'route', 'show']);
  } catch {
    // no listing: take the first candidate
  }
  const base = (process.pid * 7 + sequence * 131) % 25_600;
  for (let i = 0; i < 256; i++) {
    const idx = (base + i) % 25_600;
    const net = `10.${100 + Math.floor(idx / 256)}.${idx % 256}`;
    if (!used.includes(`${net}.`)) return net;
  }
  throw new NetnsError('no free 10.100-199.x.0/24 subnet for the cluster network', 'setup-failed');
}

/**
 * The cluster's network: N namespaces, a bridge, N shaped veth pairs. `teardown()` is synchronous and idempotent, so
 * it can run from a signal or 'exit' handler.
 */
export class ClusterNetwork {
  readonly hosts: NetnsHost[] = [];
  /** The root namespace's (the manager's) address on the bridge. */
  readonly managerIp: string;
  readonly bridge: string;
  private readonly links: string[] = [];
  private down = false;
  private readonly onExit = (): void => this.teardown();

  private constructor(
    readonly opts: ClusterNetworkOptions,
    private readonly id: string,
    readonly subnet: string,
  ) {
    this.bridge = bridgeName(process.pid, id);
    this.managerIp = `${subnet}.254`;
  }

  /** Builds the network; on any failure removes what was made and throws a NetnsError naming the step. */
  static create(opts: ClusterNetworkOptions): ClusterNetwork {
    const why = netnsUnavailable();
    if (why) throw why;
    if (!(opts.hosts >= 1 && opts.hosts <= 200)) throw new NetnsError('use 1..200 hosts', 'setup-failed');
    sweepStaleNetworks();
    const id = (sequence++).toString(36);
    const net = new ClusterNetwork(opts, id, pickSubnet());
    process.once('exit', net.onExit);
    try {
      net.build();
    } catch (err) {
      net.teardown();
      const msg = ((err as { stderr?: string }).stderr || (err as Error).message).trim().split('\n')[0];
      throw new NetnsError(`cannot build the cluster network (${msg})`, 'setup-failed');
    }
    return net;
  }

  private build(): void {
    const { hosts, rateBytesPerSec } = this.opts;
    const ip = (...args: string[]): string => run('ip', args);
    ip('link', 'add', 'name', this.bridge, 'type', 'bridge');
    this.links.push(this.bridge);
    ip('addr', 'add', `${this.managerIp}/24`, 'dev', this.bridge);
    ip('link', 'set', this.bridge, 'up');
    // tbf needs a bucket of at least one timer tick of traffic: 10 ms of the rate, at least 64 KiB.
    const rate = `${Math.max(8, Math.round((rateBytesPerSec * 8) / 1000))}kbit`;
    const burst = `${Math.max(64 * 1024, Math.round(rateBytesPerSec / 100))}`;
    const tbf = (dev: string, ns?: string): void => {
      const args = [
        'qdisc',
        'add',
        'dev',
        dev,
        'root',
        'tbf',
        'rate',
        rate,
        'burst',
        burst,
        'latency',
        '50ms',
      ];
      if (ns) ip('netns', 'exec', ns, 'tc', ...args);
      else run('tc', args);
    };
    for (let h = 0; h < hosts; h++) {
      const ns = `${NS_PREFIX}${process.pid}-${this.id}-h${h}`;
      const outer = `lm${process.pid.toString(36)}${this.id}v${h}`;
      const inner = `lm${process.pid.toString(36)}${this.id}p${h}`;
      const addr = `${this.subnet}.${h + 1}`;
      ip('netns', 'add', ns);
      this.hosts.push({ ns, ip: addr, link: outer });
      ip('link', 'add', outer, 'type', 'veth', 'peer', 'name', inner);
      this.links.push(outer);
      ip('link', 'set', inner, 'netns', ns);
      ip('link', 'set', outer, 'master', this.bridge);
      ip('link', 'set', outer, 'up');
      ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${addr}/24`, 'dev', inner);
      ip('netns', 'exec', ns, 'ip', 'link', 'set', inner, 'up');
      ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
      tbf(inner, ns); // the host's uplink
      tbf(outer); // its downlink
    }
  }

  /** The command prefix that runs a program inside host h's namespace. */
  wrap(h: number): string[] {
    return ['ip', 'netns', 'exec', this.hosts[h]!.ns];
  }

  /** Namespaces and links of this run that still exist (for tests: empty after teardown). */
  leftovers(): string[] {
    const ns = run('ip', ['netns', 'list']);
    const links = run('ip', ['-o', 'link', 'show']);
    return [
      ...this.hosts.map((h) => h.ns).filter((n) => ns.split('\n').some((l) => l.split(' ')[0] === n)),
      ...this.links.filter((l) => links.includes(` ${l}:`) || links.includes(` ${l}@`)),
    ];
  }

  /** Removes the bridge, the links and the namespaces. Synchronous and idempotent. */
  teardown(): void {
    if (this.down) return;
    this.down = true;
    process.off('exit', this.onExit);
    // Deleting one end of a veth pair deletes both; deleting a namespace's name frees it once its processes exit.
    for (const l of [...this.links].reverse()) quietly('ip', ['link', 'del', l]);
    for (const h of this.hosts) quietly('ip', ['netns', 'del', h.ns]);
  }
}

/**
 * Starts one agent per host inside its namespace, listening on the host's address (plain TCP: `--insecure`, the
 * network is this run's own), and tears the network down if any fails to start. While the agents run, SIGINT and
 * SIGTERM kill them, remove the network and exit 130/143; `release()` takes those handlers off again.
 */
export async function spawnNetnsAgents(
  net: ClusterNetwork,
  args: string[],
): Promise<{ agents: ChildAgent[]; release: () => void }> {
  let agents: ChildAgent[] = [];
  const onSignal = (signal: NodeJS.Signals): void => {
    for (const a of agents) a.process.kill('SIGKILL');
    net.teardown();
    process.stderr.write(`livemig: ${signal}: the cluster's agents and network namespaces are removed\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  const release = (): void => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    agents = await spawnAgents(
      net.hosts.map((h, i) => ({ host: h.ip, args: ['--insecure', ...args], wrap: net.wrap(i) })),
    );
  } catch (err) {
    release();
    net.teardown();
    throw err;
  }
  return { agents, release };
}
