/** HELLO → HELLO_ACK: capabilities, the guest's shape, frame binding; the XBZRLE cache is allocated meanwhile. */
import { MigrationError } from '../../errors.js';
import { MultifdSource } from '../multifd/source-channels.js';
import {
  Capability,
  Command,
  decodeHelloAck,
  encodeHello,
  MIN_PROTOCOL_VERSION,
  PREAMBLE,
  PROTOCOL_VERSION,
  StrategyCode,
} from '../protocol/index.js';
import { sendTrace } from '../trace-transfer.js';
import { openPreempt } from './preempt.js';
import { HANDSHAKE_TIMEOUT_MS } from './run.js';
import type { SourceState } from './state.js';

const STRATEGY_CODES = {
  cold: StrategyCode.COLD,
  precopy: StrategyCode.PRECOPY,
  postcopy: StrategyCode.POSTCOPY,
  hybrid: StrategyCode.HYBRID,
} as const;

/** This migration may go into post-copy (by strategy, or as its answer to non-convergence). */
function usesPostcopy(s: SourceState): boolean {
  const o = s.o;
  return o.strategy === 'postcopy' || o.strategy === 'hybrid' || o.onNonConvergence === 'postcopy';
}

/** The capabilities this migration asks for. */
function requestedCapabilities(s: SourceState): number {
  const o = s.o;
  return (
    (s.xbzrle.bytesAtStart > 0 ? Capability.XBZRLE : 0) |
    (o.compress === 'rle' ? Capability.RLE : 0) |
    (o.compress === 'deflate' ? Capability.DEFLATE : 0) |
    (o.compress === 'zstd' ? Capability.ZSTD : 0) |
    (o.compress === 'lz4' ? Capability.LZ4 : 0) |
    Capability.FRAME_BINDING |
    Capability.SWITCHOVER_ACK |
    Capability.APPLIED_ACK |
    (s.spec.redial ? Capability.OWNER_RECONCILE : 0) |
    (o.multifdChannels > 1 ? Capability.MULTIFD : 0) |
    (usesPostcopy(s)
      ? Capability.POSTCOPY |
        (s.spec.recover ? Capability.POSTCOPY_RECOVER : 0) |
        (o.postcopyPreempt ? Capability.POSTCOPY_PREEMPT : 0)
      : 0)
  );
}

export async function handshake(s: SourceState): Promise<void> {
  const caps = requestedCapabilities(s);
  const guest = s.guest;
  const blocks = guest.ram.blocks.map((b) => b.pageCount);
  s.conn.writeRaw(PREAMBLE);
  s.conn.bindFramesAfterReceiving(Command.HELLO_ACK, (p) => decodeHelloAck(p).nonce);
  const hello = s.conn.sendFrame(
    Command.HELLO,
    encodeHello({
      versionMin: MIN_PROTOCOL_VERSION,
      versionMax: PROTOCOL_VERSION,
      migrationId: s.r.id,
      strategy: STRATEGY_CODES[s.o.strategy],
      pageSize: s.pageSize,
      capabilities: caps,
      blocks,
      vcpus: guest.config.vcpus ?? 1,
      guest: {
        id: s.spec.guestId,
        config: guest.config,
        ...(caps &
        (Capability.POSTCOPY_RECOVER |
          Capability.OWNER_RECONCILE |
          Capability.MULTIFD |
          Capability.POSTCOPY_PREEMPT)
          ? { recoveryToken: s.recoveryToken }
          : {}),
        ...(caps & Capability.MULTIFD ? { multifd: { channels: s.o.multifdChannels } } : {}),
        handoverTimeoutMs: s.o.handoverTimeoutMs,
        // A trace guest carries its recording (TRACE frames after HELLO_ACK, trace-transfer.ts).
        ...(guest.trace ? { trace: { bytes: guest.trace.length } } : {}),
      },
    }),
  );
  hello.catch(() => undefined); // awaited below, unless the allocation throws first
  // Allocating the cache (tens of MiB, and the garbage collection the allocation triggers: 5-80 ms here) overlaps
  // HELLO's round trip and the destination's checks instead of preceding them. One turn of the event loop first:
  // the send passes the rate limiter (an await) before it reaches the socket.
  await new Promise<void>((resolve) => setImmediate(resolve));
  // With parallel channels each channel's thread keeps its own cache: none here.
  if (!(caps & Capability.MULTIFD)) s.xbzrle.allocate();
  await hello;
  const ack = decodeHelloAck((await expectAck(s, caps)).payload);
  // The destination picks a version from the range HELLO offered: anything else is a peer we cannot understand.
  if (ack.version < MIN_PROTOCOL_VERSION || ack.version > PROTOCOL_VERSION) {
    throw new MigrationError(
      'VERSION',
      `the destination chose protocol version ${ack.version}, outside the ${MIN_PROTOCOL_VERSION}..${PROTOCOL_VERSION} this source offered`,
    );
  }
  // Ownership reconcile is optional: without it a fault after GO is reported as OWNER_UNKNOWN.
  s.ownership = (ack.capabilities & Capability.OWNER_RECONCILE) !== 0;
  // Optional too: an older destination never says it is ready, and the source then does not wait for it.
  s.switchoverAck = (ack.capabilities & Capability.SWITCHOVER_ACK) !== 0;
  // Optional: without it the source pauses without waiting for the destination to apply the last pages.
  s.appliedAck = (ack.capabilities & Capability.APPLIED_ACK) !== 0;
  const required = caps & ~(Capability.OWNER_RECONCILE | Capability.SWITCHOVER_ACK | Capability.APPLIED_ACK);
  if (caps & Capability.POSTCOPY_PREEMPT && !(ack.capabilities & Capability.POSTCOPY_PREEMPT)) {
    throw new MigrationError(
      'CAPABILITY',
      'the destination does not support postcopy-preempt (a second connection for the answers to page faults): ' +
        'run without --postcopy-preempt, or upgrade the destination agent',
    );
  }
  if (caps & Capability.MULTIFD && !(ack.capabilities & Capability.MULTIFD)) {
    throw new MigrationError(
      'CAPABILITY',
      `the destination does not accept parallel channels (multifd): migrate with --multifd-channels 1`,
    );
  }
  if ((ack.capabilities & required) !== required) {
    throw new MigrationError(
      'CAPABILITY',
      `the destination does not support every requested capability (asked 0x${caps.toString(16)}, got 0x${ack.capabilities.toString(16)})`,
    );
  }
  s.framesBound = ack.nonce !== undefined;
  if (ack.maxFrame < s.o.framePayloadBytes) s.frames.newBuilder(ack.maxFrame);
  if (caps & Capability.MULTIFD) await openChannels(s, Math.min(ack.maxFrame, s.o.framePayloadBytes));
  if (guest.trace) await sendTrace(s.conn, guest.trace);
  // The preempt channel opens now, as QEMU's does at setup: not inside the downtime of a later switch-over.
  if (caps & Capability.POSTCOPY_PREEMPT) {
    s.preempt = await openPreempt(s);
    s.event('postcopy-preempt: fault answers travel on their own connection');
  }
}

/** Parallel channels: each dialled and presented to the destination (CHANNEL), each with its encoding thread. */
async function openChannels(s: SourceState, maxPayload: number): Promise<void> {
  const dial = s.spec.openChannel;
  if (!dial) {
    throw new MigrationError(
      'CAPABILITY',
      'this source cannot open parallel channels (no channel dialer): use --multifd-channels 1',
    );
  }
  const ram = s.guest.ram;
  s.multifd = await MultifdSource.open({
    migrationId: s.r.id,
    token: s.recoveryToken,
    channels: s.o.multifdChannels,
    bound: s.framesBound,
    blocks: ram.blocks.map((b) => b.buffer),
    pagesPerBlock: ram.pagesPerBlock,
    pageSize: s.pageSize,
    ledger: s.ledger.crcs,
    ledgerSums: s.ledger.sums,
    options: s.o,
    maxPayload,
    report: s.r,
    dial,
    handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
  });
  // The main connection failing (cancel, --timeout, the peer gone) ends the channels too.
  s.conn.onClose((e) => s.multifd?.fail(e));
  s.event(`multifd: ${s.o.multifdChannels} channels open`);
}

/** HELLO_ACK; an older destination refuses the MULTIFD bit as unknown: say what to do about it. */
async function expectAck(s: SourceState, caps: number) {
  try {
    return await s.conn.expect(Command.HELLO_ACK, HANDSHAKE_TIMEOUT_MS);
  } catch (err) {
    if (err instanceof MigrationError && err.code === 'CAPABILITY' && caps & Capability.MULTIFD) {
      throw new MigrationError(
        'CAPABILITY',
        `${err.message}; this destination may not know parallel channels (multifd): migrate with --multifd-channels 1`,
        err.context,
      );
    }
    throw err;
  }
}
