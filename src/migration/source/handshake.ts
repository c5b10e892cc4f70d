/** HELLO → HELLO_ACK: capabilities, the guest's shape, frame binding; the XBZRLE cache is allocated meanwhile. */
import { MigrationError } from '../../errors.js';
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
import { HANDSHAKE_TIMEOUT_MS } from './run.js';
import type { SourceState } from './state.js';

const STRATEGY_CODES = {
  cold: StrategyCode.COLD,
  precopy: StrategyCode.PRECOPY,
  postcopy: StrategyCode.POSTCOPY,
  hybrid: StrategyCode.HYBRID,
} as const;

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
    (s.spec.redial ? Capability.OWNER_RECONCILE : 0) |
    (o.strategy === 'postcopy' || o.strategy === 'hybrid' || o.onNonConvergence === 'postcopy'
      ? Capability.POSTCOPY | (s.spec.recover ? Capability.POSTCOPY_RECOVER : 0)
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
        ...(caps & (Capability.POSTCOPY_RECOVER | Capability.OWNER_RECONCILE)
          ? { recoveryToken: s.recoveryToken }
          : {}),
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
  s.xbzrle.allocate();
  await hello;
  const ack = decodeHelloAck((await s.conn.expect(Command.HELLO_ACK, HANDSHAKE_TIMEOUT_MS)).payload);
  // The destination picks a version from the range HELLO offered: anything else is a peer we cannot understand.
  if (ack.version < MIN_PROTOCOL_VERSION || ack.version > PROTOCOL_VERSION) {
    throw new MigrationError(
      'VERSION',
      `the destination chose protocol version ${ack.version}, outside the ${MIN_PROTOCOL_VERSION}..${PROTOCOL_VERSION} this source offered`,
    );
  }
  // Ownership reconcile is optional: without it a fault after GO is reported as OWNER_UNKNOWN.
  s.ownership = (ack.capabilities & Capability.OWNER_RECONCILE) !== 0;
  const required = caps & ~Capability.OWNER_RECONCILE;
  if ((ack.capabilities & required) !== required) {
    throw new MigrationError(
      'CAPABILITY',
      `the destination does not support every requested capability (asked 0x${caps.toString(16)}, got 0x${ack.capabilities.toString(16)})`,
    );
  }
  s.framesBound = ack.nonce !== undefined;
  if (ack.maxFrame < s.o.framePayloadBytes) s.frames.newBuilder(ack.maxFrame);
  if (guest.trace) await sendTrace(s.conn, guest.trace);
}
