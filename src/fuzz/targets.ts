/**
 * Hostile-input targets for every parser a peer or a user can feed: the migration frame reader and each
 * payload decoder (src/migration/protocol/), the control-API bodies (src/agent/requests.ts) and the guest
 * configuration (src/guest/config.ts). Each input is either a mutation of a valid input (so the parser gets
 * past its first checks) or random bytes/values. The contract: a parser accepts, or throws its typed error
 * (MigrationError, UsageError, CodecError) — anything else, or a slow input, is a failure.
 */
import { answerError } from '../agent/answer-error.js';
import { parseEvacuationRequest } from '../agent/evacuate.js';
import {
  parseEmptyRequest,
  parseGuestRequest,
  parseMigrationQuery,
  parseMigrationRequest,
  parsePowerQuery,
  parseResumeRequest,
  parseThrottleRequest,
} from '../agent/requests.js';
import { Rng } from '../codec/fuzz.js';
import { CodecError, LivemigError, MigrationError, UsageError } from '../errors.js';
import { resolveConfig } from '../guest/config.js';
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
import { parsePowerSeries } from '../power/series-schema.js';
import { parseQmpMessage } from '../qemu/qmp-messages.js';
import { SnapshotError } from '../snapshot/index.js';
import { TRACE_COMPRESSIONS, TraceReader } from '../trace/format.js';
import { resealTrace } from '../trace/reseal.js';
import { TraceWriter } from '../trace/writer.js';
import { answerTargets } from './answer-targets.js';
import { snapshotTarget } from './snapshot.js';

export interface TargetCounts {
  name: string;
  inputs: number;
  accepted: number;
  /** Inputs refused with the parser's typed error. */
  rejected: number;
  /** Slowest single input, ms (a hang shows here). */
  maxMs: number;
  failures: string[];
}

interface Target {
  name: string;
  /** Runs one input; returns normally if accepted, throws a typed error if refused. */
  run(rng: Rng): void;
}

/** Flips, inserts, deletes or overwrites a few bytes, or truncates/extends. */
export function mutate(rng: Rng, valid: Uint8Array): Buffer {
  let b = Buffer.from(valid);
  for (let n = 1 + rng.int(4); n > 0; n--) {
    const op = rng.int(6);
    const at = b.length === 0 ? 0 : rng.int(b.length);
    if (op === 0 && b.length) b[at] = b[at]! ^ (1 << rng.int(8));
    else if (op === 1 && b.length) b[at] = rng.int(256);
    else if (op === 2)
      b = Buffer.concat([b.subarray(0, at), Buffer.from(rng.bytes(1 + rng.int(8))), b.subarray(at)]);
    else if (op === 3) b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + rng.int(8))]);
    else if (op === 4) b = b.subarray(0, at);
    else if (b.length >= 4)
      b.writeUInt32BE([0, 1, 0xffffffff, 0x7fffffff, rng.next()][rng.int(5)]!, rng.int(b.length - 3));
  }
  return b;
}

function hex(rng: Rng, bytes: number): string {
  return Buffer.from(rng.bytes(bytes)).toString('hex');
}

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

const frameTarget: Target = {
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

const payloadTargets: Target[] = [
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

// ---- JSON bodies: structure-aware values for the control API and the guest configuration.

const ODD: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  Number.MAX_SAFE_INTEGER,
  2 ** 53 + 2,
  -0,
  1e308,
  '',
  'x',
  '1GiB',
  'gap',
  '__proto__',
  'constructor',
  [],
  {},
  [1, 2],
  { name: 'gap' },
  '127.0.0.1:7070',
  'a'.repeat(70),
];
/** Field names the control API and guest configuration parsers look for (and two that attack prototypes). */
export const JSON_FIELDS = [
  'id',
  'run',
  'config',
  'ramBytes',
  'pageSize',
  'vcpus',
  'seed',
  'workload',
  'name',
  'params',
  'guest',
  'destination',
  'preset',
  'options',
  'strategy',
  'xbzrle',
  'maxBandwidth',
  'downtimeLimitMs',
  'downtimeRamp',
  'startMs',
  'stepMs',
  'maxMs',
  'compress',
  'workingSetBytes',
  'writeRate',
  'blocks',
  'blockBytes',
  '__proto__',
  'constructor',
];

function value(rng: Rng, depth: number): unknown {
  const k = rng.int(depth > 2 ? 2 : 4);
  if (k === 0) return ODD[rng.int(ODD.length)];
  if (k === 1) return rng.int(2) ? rng.next() - 2 ** 31 : hex(rng, rng.int(6));
  if (k === 2) return Array.from({ length: rng.int(4) }, () => value(rng, depth + 1));
  const o: Record<string, unknown> = {};
  for (let n = rng.int(5); n > 0; n--) o[JSON_FIELDS[rng.int(JSON_FIELDS.length)]!] = value(rng, depth + 1);
  return o;
}

/** A valid body with a few fields replaced, removed or added. */
export function mutateBody(rng: Rng, valid: Record<string, unknown>, depth = 0): unknown {
  if (rng.int(12) === 0) return value(rng, 0);
  const o: Record<string, unknown> = { ...valid };
  for (const key of Object.keys(o)) {
    const v = o[key];
    const r = rng.int(6);
    if (r === 0) delete o[key];
    else if (r === 1) o[key] = value(rng, depth + 1);
    else if (v && typeof v === 'object' && !Array.isArray(v) && depth < 3)
      o[key] = mutateBody(rng, v as Record<string, unknown>, depth + 1);
  }
  if (rng.int(4) === 0) o[JSON_FIELDS[rng.int(JSON_FIELDS.length)]!] = value(rng, depth + 1);
  // Round-trip through JSON: the agent only ever sees what JSON.parse makes.
  return JSON.parse(JSON.stringify(o) ?? 'null');
}

const GUEST = { ramBytes: 1 << 20, seed: 3, vcpus: 1, workload: { name: 'gap', params: { writeRate: 100 } } };

const bodyTargets: Target[] = [
  {
    name: 'POST /v1/guests body',
    run: (rng) => void parseGuestRequest(mutateBody(rng, { id: 'g1', run: true, config: GUEST })),
  },
  {
    name: 'POST /v1/migrations body',
    run: (rng) =>
      void parseMigrationRequest(
        mutateBody(rng, {
          guest: 'g1',
          destination: '127.0.0.1:7071',
          preset: 'qemu',
          options: { strategy: 'precopy', xbzrle: true, maxBandwidth: 1 << 20 },
        }),
      ),
  },
  {
    name: 'POST /v1/evacuate body',
    run: (rng) =>
      void parseEvacuationRequest(
        mutateBody(rng, {
          to: ['127.0.0.1:7071'],
          maxParallel: 2,
          order: 'smart',
          options: { xbzrle: true },
        }),
      ),
  },
  {
    name: 'POST .../throttle, .../resume and parameterless bodies',
    run: (rng) => {
      const k = rng.int(3);
      if (k === 0) void parseThrottleRequest(mutateBody(rng, { cap: 50, frequency: 0.5 }));
      else if (k === 1) void parseResumeRequest(mutateBody(rng, { destination: '127.0.0.1:7071' }));
      else parseEmptyRequest(mutateBody(rng, {}), 'pause');
    },
  },
  {
    name: 'query strings (/v1/power, /v1/migrations/ID)',
    run: (rng) => {
      const q = new URLSearchParams();
      const v = () => (rng.int(3) ? String(rng.int(2 ** 20)) : hex(rng, 1 + rng.int(4)));
      for (const key of ['since', 'sample', 'model', 'wait', 'x']) if (rng.int(2)) q.append(key, v());
      if (rng.int(2)) q.set('model', rng.int(2) ? 'cubic' : 'linear');
      void parsePowerQuery(q);
      void parseMigrationQuery(q);
    },
  },
  {
    name: "an agent's error answer (AgentClient)",
    run: (rng) => {
      const valid = {
        error: { code: rng.int(2) ? 'GUEST_BUSY' : 'BAD_REQUEST', message: hex(rng, 4), flag: 'x' },
      };
      const body = rng.int(4)
        ? Buffer.from(JSON.stringify(mutateBody(rng, valid)))
        : Buffer.from(rng.bytes(rng.int(40)));
      const e = answerError(400 + rng.int(200), body, 'http://127.0.0.1:1');
      if (!(e instanceof LivemigError)) throw new Error(`answerError gave ${String(e)}`);
      // A body it could not believe is a refusal; a documented code kept is an acceptance.
      if (e.code === 'PROTOCOL') throw e;
    },
  },
  {
    name: "another agent's GET /v1/power body",
    run: (rng) =>
      void parsePowerSeries(
        mutateBody(rng, {
          model: 'cubic',
          capacityCores: 2,
          rapl: false,
          labels: { cpuMs: 'measured', utilisation: 'measured', watts: 'modelled', raplWatts: 'measured' },
          samples: [
            {
              at: 1,
              intervalMs: 100,
              vcpuCpuMs: 5,
              mainCpuMs: 1,
              otherCpuMs: 0,
              utilisation: 0.1,
              dvfsState: 0,
              ghz: null,
              watts: 90,
              raplWatts: null,
              guests: [],
            },
          ],
        }),
        '127.0.0.1:1',
      ),
  },
  {
    name: 'QMP message from QEMU (QmpClient)',
    run: (rng) => {
      const valid = [
        { QMP: { version: { qemu: { major: 10, minor: 0, micro: 2 }, package: '' }, capabilities: ['oob'] } },
        { event: 'STOP', data: { reason: 'x' }, timestamp: { seconds: 1, microseconds: 2 } },
        { return: { status: 'active' }, id: '1' },
        { error: { class: 'GenericError', desc: 'no' }, id: 2 },
      ][rng.int(4)]!;
      const m = parseQmpMessage(mutateBody(rng, valid));
      if (typeof m === 'string' || m.kind === 'malformed') throw new MigrationError('PROTOCOL', 'not QMP');
    },
  },
  {
    name: 'guest configuration (resolveConfig)',
    run: (rng) => void resolveConfig(mutateBody(rng, GUEST) as Parameters<typeof resolveConfig>[0]),
  },
];

/** A small valid trace (snapshot + two intervals) in each compression, built once. */
let traces: Uint8Array[] | undefined;
function validTraces(): Uint8Array[] {
  traces ??= TRACE_COMPRESSIONS.map((compression) => {
    const w = new TraceWriter({
      pageSize: 512,
      intervalMs: 10,
      method: 'page-compare',
      compression,
      chunkPages: 2,
      meta: { program: 'fuzz', command: [] },
    });
    const page = (n: number, b: number) => new Uint8Array(n * 512).fill(b);
    w.add(0, [0, 1, 3], page(3, 7));
    w.add(10, [1, 2], page(2, 1));
    w.add(20, [], page(0, 0));
    return w.finish(4).trace!;
  });
  return traces;
}

/** The trace reader (src/trace): open a mutated file and read every record's pages and deltas. */
const traceTarget: Target = {
  name: 'trace file (TraceReader)',
  run: (rng) => {
    const valid = validTraces()[rng.int(TRACE_COMPRESSIONS.length)]!;
    const k = rng.int(10);
    // Half the mutations get their checksums recomputed, to reach the bounds checks behind them.
    const input =
      k === 0
        ? Buffer.from(rng.bytes(rng.int(200)))
        : k < 5
          ? mutate(rng, valid)
          : resealTrace(mutate(rng, valid));
    const r = TraceReader.open(input);
    for (let i = 0; i < r.records.length; i++) r.forEachPage(i, () => {});
  },
};

export const TARGETS: readonly Target[] = [
  frameTarget,
  ...payloadTargets,
  ...bodyTargets,
  ...answerTargets(mutateBody),
  traceTarget,
  snapshotTarget(mutate),
];

function typed(err: unknown): boolean {
  return (
    err instanceof MigrationError ||
    err instanceof UsageError ||
    err instanceof CodecError ||
    err instanceof SnapshotError
  );
}

/** Runs `iterations` inputs against one target from `seed`; slow inputs (> slowMs) count as failures. */
export function fuzzTarget(target: Target, iterations: number, seed: number, slowMs = 1000): TargetCounts {
  const rng = new Rng(seed);
  const c: TargetCounts = { name: target.name, inputs: 0, accepted: 0, rejected: 0, maxMs: 0, failures: [] };
  for (let k = 0; k < iterations; k++) {
    const snapshot = new Rng(rng.next());
    const t0 = performance.now();
    c.inputs++;
    try {
      target.run(snapshot);
      c.accepted++;
    } catch (err) {
      if (typed(err)) c.rejected++;
      else if (c.failures.length < 20)
        c.failures.push(
          `${target.name} seed=${seed} input=${k}: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`,
        );
    }
    const ms = performance.now() - t0;
    if (ms > c.maxMs) c.maxMs = ms;
    if (ms > slowMs && c.failures.length < 20)
      c.failures.push(`${target.name} seed=${seed} input=${k}: took ${ms.toFixed(0)} ms`);
  }
  return c;
}
