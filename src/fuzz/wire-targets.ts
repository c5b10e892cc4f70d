/**
 * Fuzz targets for the migration stream: the frame reader fed in random chunks, and each payload decoder
 * (src/migration/protocol/) on mutated valid payloads or random bytes.
 */
import type { Rng } from '../codec/fuzz.js';
import { Crc32cShifter } from '../migration/crc.js';
import {
  Command,
  decodeChannelAck,
  decodeChannelHello,
  decodeCompleteBody,
  decodeDigest,
  decodeErrorBody,
  decodeHello,
  decodeHelloAck,
  decodeJson,
  decodeOwner,
  decodePageRequest,
  decodePostcopyStart,
  decodeReconcile,
  decodeRecover,
  decodeRound,
  decodeSync,
  decodeVcpuState,
  encodeChannelAck,
  encodeChannelHello,
  encodeDigest,
  encodeFrame,
  encodeHello,
  encodeHelloAck,
  encodeJson,
  encodeOwner,
  encodePageRequest,
  encodePostcopyStart,
  encodeReconcile,
  encodeRecover,
  encodeRound,
  encodeSync,
  FrameReader,
  forEachPageEntry,
  PageEncoding,
  PREAMBLE,
  StrategyCode,
  verifyPagesFrame,
} from '../migration/protocol/index.js';

import { hex, mutate, type Target } from './mutate.js';

function validHello(rng: Rng): Buffer {
  return encodeHello({
    versionMin: 1,
    versionMax: 1,
    migrationId: hex(rng, 16),
    strategy: [StrategyCode.PRECOPY, StrategyCode.POSTCOPY][rng.int(2)] ?? StrategyCode.PRECOPY,
    pageSize: 4096,
    capabilities: rng.int(16),
    blocks: [1 + rng.int(1000), 1 + rng.int(1000)].slice(0, 1 + rng.int(2)),
    vcpus: 1 + rng.int(4),
    guest: {
      id: `g${rng.int(9)}`,
      config: { ramBytes: 4096 * 16, seed: rng.int(100), workload: { name: 'gap' } },
    },
  });
}

function validPages(rng: Rng, pageCount: number, pageSize: number): Buffer {
  const entries: Buffer[] = [];
  const n = rng.int(4);
  for (let i = 0; i < n; i++) {
    const enc = [PageEncoding.ZERO, PageEncoding.RAW][rng.int(2)]!;
    const data = enc === PageEncoding.RAW ? Buffer.from(rng.bytes(pageSize)) : Buffer.alloc(0);
    const h = Buffer.alloc(9);
    h.writeUInt32BE(rng.int(pageCount), 0);
    h[4] = enc;
    h.writeUInt32BE(data.length, 5);
    entries.push(h, data);
  }
  const c = Buffer.alloc(4);
  c.writeUInt32BE(n, 0);
  return Buffer.concat([c, ...entries]);
}

function randomPayload(rng: Rng): Buffer {
  return Buffer.from(rng.bytes(rng.int(96)));
}

/** A payload: a mutated valid one most of the time, random bytes otherwise. */
function payload(rng: Rng, valid: () => Buffer): Buffer {
  const k = rng.int(8);
  if (k === 0) return randomPayload(rng);
  if (k === 1) return valid();
  return mutate(rng, valid());
}

const COMMANDS = Object.values(Command).filter((v): v is Command => typeof v === 'number');

export const frameTarget: Target = {
  name: 'frames (FrameReader)',
  run(rng) {
    const frames: Buffer[] = [rng.int(2) ? PREAMBLE : Buffer.alloc(0)];
    for (let n = rng.int(4); n >= 0; n--) {
      frames.push(encodeFrame(COMMANDS[rng.int(COMMANDS.length)]!, Buffer.from(rng.bytes(rng.int(64)))));
    }
    const valid = Buffer.concat(frames);
    const stream = rng.int(10) === 0 ? Buffer.from(rng.bytes(rng.int(256))) : mutate(rng, valid);
    const reader = new FrameReader(64 * 1024, { expectPreamble: frames[0]!.length > 0 });
    // Delivered in random chunks, as a socket would.
    for (let at = 0; at < stream.length; ) {
      const n = 1 + rng.int(stream.length - at);
      reader.push(stream.subarray(at, at + n));
      at += n;
    }
    if (reader.pending > 64 * 1024 + 16) throw new Error(`reader holds ${reader.pending} bytes`);
  },
};

export const payloadTargets: Target[] = [
  { name: 'HELLO', run: (rng) => void decodeHello(payload(rng, () => validHello(rng))) },
  {
    name: 'HELLO_ACK',
    run: (rng) =>
      void decodeHelloAck(
        payload(rng, () => encodeHelloAck({ version: 1, capabilities: rng.int(16), maxFrame: 4 << 20 })),
      ),
  },
  {
    name: 'ROUND',
    run: (rng) =>
      void decodeRound(
        payload(rng, () =>
          encodeRound({ round: rng.int(30), pagesSent: rng.next(), dirtyPages: rng.next() }),
        ),
      ),
  },
  {
    name: 'DIGEST',
    run: (rng) =>
      void decodeDigest(
        payload(rng, () => encodeDigest({ method: 'ledger', ram: hex(rng, 8), vcpu: hex(rng, 32) })),
      ),
  },
  {
    name: 'PAGE_REQUEST',
    run: (rng) =>
      void decodePageRequest(
        payload(rng, () => encodePageRequest([rng.int(1000), rng.int(1000)])),
        1 + rng.int(1000),
      ),
  },
  {
    name: 'POSTCOPY_START',
    run: (rng) => {
      const pages = 1 + rng.int(512);
      decodePostcopyStart(
        payload(rng, () => encodePostcopyStart(rng.bytes(Math.ceil(pages / 8)))),
        pages,
      );
    },
  },
  {
    name: 'JSON payload',
    run: (rng) =>
      void decodeJson(
        payload(rng, () => encodeJson({ a: rng.int(9), b: [hex(rng, 4)] })),
        'DEVICE',
      ),
  },
  {
    name: 'PAGES entries',
    run: (rng) => {
      const pageSize = 512;
      const pages = 1 + rng.int(64);
      let n = 0;
      forEachPageEntry(
        payload(rng, () => validPages(rng, pages, pageSize)),
        pages,
        pageSize,
        (page, _e, data) => {
          if (page >= pages || data.length > pageSize + 64)
            throw new Error(`entry out of bounds: page ${page}`);
          n++;
        },
      );
      void n;
    },
  },
  {
    name: 'RECOVER',
    run: (rng) =>
      void decodeRecover(
        payload(rng, () => encodeRecover({ migrationId: hex(rng, 16), token: hex(rng, 16) })),
      ),
  },
  {
    name: 'CHANNEL',
    run: (rng) =>
      void decodeChannelHello(
        payload(rng, () =>
          encodeChannelHello({ migrationId: hex(rng, 16), token: hex(rng, 16), channel: rng.int(16) }),
        ),
      ),
  },
  {
    name: 'CHANNEL_ACK',
    run: (rng) =>
      void decodeChannelAck(
        payload(rng, () => encodeChannelAck(rng.bytes(16))),
        rng.int(2) === 1,
      ),
  },
  { name: 'SYNC', run: (rng) => void decodeSync(payload(rng, () => encodeSync(rng.next()))) },
  {
    name: 'RECONCILE',
    run: (rng) =>
      void decodeReconcile(
        payload(rng, () =>
          encodeReconcile({
            migrationId: hex(rng, 16),
            token: hex(rng, 16),
            action: rng.int(2) ? 'query' : 'abort',
          }),
        ),
      ),
  },
  {
    name: 'OWNER',
    run: (rng) => void decodeOwner(payload(rng, () => encodeOwner(rng.int(2) ? 'held' : 'resumed'))),
  },
  {
    name: 'ERROR body',
    run: (rng) =>
      void decodeErrorBody(
        payload(rng, () => encodeJson({ code: rng.int(2) ? 'VERSION' : 'TIMEOUT', message: hex(rng, 4) })),
      ),
  },
  {
    name: 'COMPLETE body',
    run: (rng) =>
      void decodeCompleteBody(
        payload(rng, () =>
          encodeJson({ verified: true, faults: rng.int(9), faultLatencyMs: [rng.int(50)], missing: 0 }),
        ),
      ),
  },
  {
    name: 'VCPU_STATE body',
    run: (rng) =>
      void decodeVcpuState(
        payload(rng, () =>
          encodeJson({
            config: { workload: 'idle', ramMiB: 1 + rng.int(8) },
            vcpus: [{ index: 0, step: rng.int(1000), rng: [1, 2, 3, 4], registers: { a: rng.int(9) } }],
          }),
        ),
      ),
  },
  {
    // The destination's path: the reader leaves PAGES checksums to verifyPagesFrame (one pass for the CRC and
    // the bounds). Whatever arrives, it is refused with a typed error or every entry is in bounds and the CRC holds.
    name: 'PAGES frames, deferred checksum',
    run: (rng) => {
      const pageSize = 512;
      const pages = 1 + rng.int(64);
      const valid = Buffer.concat([PREAMBLE, encodeFrame(Command.PAGES, validPages(rng, pages, pageSize))]);
      const stream = mutate(rng, valid);
      const reader = new FrameReader(64 * 1024, { expectPreamble: true });
      reader.deferChecksum(Command.PAGES);
      for (const f of reader.push(stream)) {
        if (f.command !== Command.PAGES) continue;
        verifyPagesFrame(f, pages, pageSize, SHIFTER_512, new Uint32Array(1));
      }
    },
  },
];
const SHIFTER_512 = new Crc32cShifter(512);
