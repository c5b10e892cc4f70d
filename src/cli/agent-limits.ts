/**
 * The agent's resource-limit flags (docs/agent.md, docs/security.md "Resource limits"): declared and read here,
 * each validated with a message that names the flag.
 */
import type { Command } from 'commander';
import type { AdmissionLimits } from '../agent/admission.js';
import { durationFlag, intFlag, LIMITS, numberFlag, sizeFlag } from './values.js';

export interface LimitFlagValues {
  maxRamTotal?: string;
  maxVcpus?: string;
  maxConnections?: string;
  maxConnectionsPerPeer?: string;
  maxBuffered?: string;
  firstByteTimeout: string;
  helloTimeout: string;
  connectRate: string;
  connectBurst: string;
  history: string;
}

export function addLimitFlags(cmd: Command): Command {
  return cmd
    .option(
      '--max-ram-total <size>',
      'guest RAM this agent holds in all, running guests plus incoming ones (default: the host memory, or --max-ram if larger)',
    )
    .option(
      '--max-vcpus <n>',
      'vCPU threads this agent runs in all (default: 8 per CPU core, at least 16); a guest also has at most one per MiB of RAM',
    )
    .option('--max-connections <n>', 'connections open at once on the port, of any kind', '128')
    .option('--max-connections-per-peer <n>', 'of those, from one address', '32')
    .option(
      '--max-buffered <size>',
      'bytes of migration frames being received, all connections together',
      '64MiB',
    )
    .option(
      '--first-byte-timeout <duration>',
      'close a connection that sends nothing (or no TLS handshake) within this',
      '10s',
    )
    .option(
      '--hello-timeout <duration>',
      'refuse a migration without HELLO, or an HTTP request not received, within this',
      '30s',
    )
    .option('--connect-rate <n>', 'new connections per second accepted from one address (token bucket)', '50')
    .option('--connect-burst <n>', 'new connections one address may open at once', '100')
    .option('--history <n>', 'finished migrations kept for /v1/migrations and /v1/status', '100');
}

export function limitsFromFlags(f: LimitFlagValues): Partial<AdmissionLimits> {
  const count = (v: string, flag: string) => intFlag(v, flag, 1, 1_000_000);
  const time = (v: string, flag: string) => durationFlag(v, flag, 1, LIMITS.duration);
  return {
    ...(f.maxRamTotal !== undefined
      ? { maxRamTotalBytes: sizeFlag(f.maxRamTotal, '--max-ram-total', 1 << 20, LIMITS.size) }
      : {}),
    ...(f.maxVcpus !== undefined ? { maxVcpus: count(f.maxVcpus, '--max-vcpus') } : {}),
    ...(f.maxConnections !== undefined
      ? { maxConnections: count(f.maxConnections, '--max-connections') }
      : {}),
    ...(f.maxConnectionsPerPeer !== undefined
      ? { maxConnectionsPerPeer: count(f.maxConnectionsPerPeer, '--max-connections-per-peer') }
      : {}),
    ...(f.maxBuffered !== undefined
      ? { maxBufferedBytes: sizeFlag(f.maxBuffered, '--max-buffered', 1 << 20, LIMITS.size) }
      : {}),
    firstByteTimeoutMs: time(f.firstByteTimeout, '--first-byte-timeout'),
    helloTimeoutMs: time(f.helloTimeout, '--hello-timeout'),
    connectRate: numberFlag(f.connectRate, '--connect-rate', 0.001, 1e9),
    connectBurst: count(f.connectBurst, '--connect-burst'),
    historySize: count(f.history, '--history'),
  };
}
