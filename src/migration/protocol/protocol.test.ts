import { crc32c } from '@node-rs/crc32';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MigrationError } from '../../errors.js';
import { Crc32cShifter } from '../crc.js';
import {
  BINDING_NONCE_BYTES,
  bindFrame,
  bindTrailer,
  Capability,
  Command,
  decodeDigest,
  decodeHello,
  decodeHelloAck,
  decodePageRequest,
  decodePostcopyStart,
  decodeRecoverAck,
  encodeDigest,
  encodeFrame,
  encodeHello,
  encodeHelloAck,
  encodePageRequest,
  encodePostcopyStart,
  encodeRecoverAck,
  FRAME_HEADER_BYTES,
  FrameBinding,
  FrameReader,
  FrameSender,
  forEachPageEntry,
  PageEncoding,
  PagesFrameBuilder,
  PREAMBLE,
  StrategyCode,
  verifyPagesFrame,
} from './index.js';

const commands = Object.values(Command).filter((v): v is Command => typeof v === 'number');

/** Splits a byte string into random chunks, as TCP would. */
function chunked(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

/** What `fn` threw, or undefined: for a check that makes one assertion whichever way `fn` goes. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err;
  }
}

/** Nothing thrown, or an instance of `type`. */
const noneOr =
  (type: abstract new (...a: never[]) => Error) =>
  (err: unknown): boolean =>
    err === undefined || err instanceof type;

describe('frames', () => {
  it('round-trip any sequence of frames however TCP splits them', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ command: fc.constantFrom(...commands), payload: fc.uint8Array({ maxLength: 3000 }) }),
          {
            maxLength: 8,
          },
        ),
        fc.array(fc.nat(), { maxLength: 20 }),
        (frames, cuts) => {
          const stream = Buffer.concat([PREAMBLE, ...frames.map((f) => encodeFrame(f.command, f.payload))]);
          const reader = new FrameReader(1 << 16, { expectPreamble: true });
          const got = chunked(stream, cuts).flatMap((c) => reader.push(c));
          expect(got.map((f) => f.command)).toEqual(frames.map((f) => f.command));
          for (const [i, f] of got.entries()) {
            expect(Buffer.compare(f.payload, Buffer.from(frames[i]!.payload))).toBe(0);
          }
          expect(reader.pending).toBe(0);
        },
      ),
    );
  });

  it('assembles frames larger than its buffer in place, however TCP splits them', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 600_000 }), { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (sizes, cuts) => {
          const payloads = sizes.map((n, i) => Buffer.alloc(n, i + 1));
          const stream = Buffer.concat(payloads.map((p) => encodeFrame(Command.PAGES, p)));
          const reader = new FrameReader(1 << 20);
          // Each frame is checked, then its buffer handed back for reuse, as the destination does.
          const lengths: number[] = [];
          let i = 0;
          for (const c of chunked(Buffer.concat([stream, stream]), cuts)) {
            for (const f of reader.push(c)) {
              lengths.push(f.payload.length);
              expect(f.payload.equals(payloads[i++ % payloads.length]!)).toBe(true);
              reader.recycle(f.payload);
            }
          }
          expect(lengths).toEqual([...sizes, ...sizes]);
          expect(reader.pending).toBe(0);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('detects any single corrupted byte with a typed error', () => {
    // Two assertions per run, whichever way it goes.
    expect.assertions(2 * 500);
    fc.assert(
      fc.property(
        fc.constantFrom(...commands),
        fc.uint8Array({ minLength: 1, maxLength: 500 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (command, payload, pos, flip) => {
          const frame = encodeFrame(command, payload);
          const i = pos % frame.length;
          frame[i] = frame[i]! ^ flip;
          const reader = new FrameReader(1 << 16);
          try {
            const frames = reader.push(frame);
            // A corrupted length field may leave the reader waiting for more bytes: no frame, no error yet.
            expect(frames).toHaveLength(0);
            expect(i).toBeLessThan(4);
          } catch (err) {
            expect(err).toBeInstanceOf(MigrationError);
            expect(['PROTOCOL', 'CHECKSUM']).toContain((err as MigrationError).code);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses frames beyond the limit before buffering them', () => {
    const reader = new FrameReader(1024);
    const header = Buffer.alloc(FRAME_HEADER_BYTES);
    header.writeUInt32BE(1 << 30, 0);
    header[4] = Command.PAGES;
    expect(() => reader.push(header)).toThrow(/exceeds the limit/);
  });

  it('refuses a stream without the preamble', () => {
    const reader = new FrameReader(1024, { expectPreamble: true });
    expect(() => reader.push(Buffer.from('GET / HTTP/1.1\r\n'))).toThrow(/preamble/);
  });

  it('never throws anything but MigrationError on hostile bytes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 10 }),
        fc.boolean(),
        (chunks, pre) => {
          const reader = new FrameReader(4096, { expectPreamble: pre });
          expect(
            thrown(() => {
              for (const c of chunks) reader.push(c);
            }),
          ).toSatisfy(noneOr(MigrationError));
          expect(reader.pending).toBeLessThanOrEqual(4096 + 12 + 200 * 10);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('payloads', () => {
  it('HELLO round-trips and validates', () => {
    const h = {
      versionMin: 1,
      versionMax: 1,
      migrationId: 'ab'.repeat(16),
      strategy: StrategyCode.HYBRID,
      pageSize: 4096,
      capabilities: 5,
      blocks: [262144, 1000],
      vcpus: 2,
      guest: { id: 'g1', config: { ramBytes: 4096 * 263144 } },
    };
    expect(decodeHello(encodeHello(h))).toEqual(h);
    const bad = encodeHello(h);
    bad.writeUInt32BE(0, 0);
    expect(() => decodeHello(bad)).toThrow(/magic/);
    expect(() => decodeHello(encodeHello({ ...h, pageSize: 2 ** 20 }))).toThrow(/page size/);
    expect(() => decodeHello(encodeHello(h).subarray(0, 20))).toThrow(MigrationError);
    // The guest description is schema-checked as it is decoded: {id, config} at least, kept loose beyond that.
    const guests: unknown[] = [
      null,
      'g1',
      [],
      { id: 'g1' },
      { config: {} },
      { id: 7, config: {} },
      { id: 'g 1', config: {} },
      { id: 'x'.repeat(65), config: {} },
      { id: 'g1', config: 'gap' },
      { id: 'g1', config: null },
    ];
    for (const guest of guests) {
      expect(() => decodeHello(encodeHello({ ...h, guest })), JSON.stringify(guest)).toThrow(
        /HELLO: guest description must be \{id, config\}/,
      );
    }
    const extra = { id: 'g1', config: { ramBytes: 4096 }, recoveryToken: 'ab'.repeat(16), later: true };
    expect(decodeHello(encodeHello({ ...h, guest: extra })).guest).toEqual(extra);
  });

  it('HELLO decoding of arbitrary bytes only ever throws MigrationError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expect(thrown(() => decodeHello(Buffer.from(bytes)))).toSatisfy(noneOr(MigrationError));
      }),
      { numRuns: 3000 },
    );
  });

  it('HELLO_ACK, digest, page request and post-copy bitmap round-trip', () => {
    const ack = { version: 1, capabilities: 3, maxFrame: 1 << 20 };
    expect(decodeHelloAck(encodeHelloAck(ack))).toEqual(ack);
    const d = { method: 'ledger' as const, ram: '0123456789abcdef', vcpu: 'f'.repeat(64) };
    expect(decodeDigest(encodeDigest(d))).toEqual(d);
    expect(decodePageRequest(encodePageRequest([0, 5, 99]), 100)).toEqual([0, 5, 99]);
    expect(() => decodePageRequest(encodePageRequest([100]), 100)).toThrow(/beyond/);
    const bm = new Uint8Array([1, 2, 3]);
    expect(decodePostcopyStart(encodePostcopyStart(bm), 20)).toEqual(bm);
    expect(() => decodePostcopyStart(encodePostcopyStart(bm), 100)).toThrow(/bitmap/);
  });

  it('PAGES frames built in place parse back entry by entry', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            page: fc.nat({ max: 999 }),
            kind: fc.constantFrom(PageEncoding.ZERO, PageEncoding.RAW, PageEncoding.XBZRLE),
            len: fc.integer({ min: 1, max: 512 }),
            fill: fc.nat({ max: 255 }),
          }),
          { maxLength: 40 },
        ),
        (entries) => {
          const frames: Buffer[] = [];
          const b = new PagesFrameBuilder(64 * 1024, (f) => frames.push(f));
          for (const e of entries) {
            const len = e.kind === PageEncoding.ZERO ? 0 : e.kind === PageEncoding.RAW ? 512 : e.len;
            b.reserve(len).fill(e.fill, 0, len);
            b.commit(e.page, e.kind, len);
          }
          b.finishFrame();
          const seen: { page: number; kind: number; len: number }[] = [];
          const reader = new FrameReader(64 * 1024);
          for (const f of reader.push(Buffer.concat(frames))) {
            expect(f.command).toBe(Command.PAGES);
            forEachPageEntry(f.payload, 1000, 512, (page, kind, data) =>
              seen.push({ page, kind, len: data.length }),
            );
          }
          expect(seen).toEqual(
            entries.map((e) => ({
              page: e.page,
              kind: e.kind,
              len: e.kind === PageEncoding.ZERO ? 0 : e.kind === PageEncoding.RAW ? 512 : e.len,
            })),
          );
        },
      ),
    );
  });

  it('PAGES parsing rejects out-of-range pages, bad lengths and unknown encodings', () => {
    const entry = (page: number, enc: number, len: number) => {
      const p = Buffer.alloc(4 + 9 + len);
      p.writeUInt32BE(1, 0);
      p.writeUInt32BE(page, 4);
      p[8] = enc;
      p.writeUInt32BE(len, 9);
      return p;
    };
    const visit = () => undefined;
    expect(() => forEachPageEntry(entry(10, PageEncoding.RAW, 512), 10, 512, visit)).toThrow(/beyond/);
    expect(() => forEachPageEntry(entry(1, PageEncoding.RAW, 100), 10, 512, visit)).toThrow(/illegal length/);
    expect(() => forEachPageEntry(entry(1, PageEncoding.ZERO, 1), 10, 512, visit)).toThrow(/illegal length/);
    expect(() => forEachPageEntry(entry(1, 99, 1), 10, 512, visit)).toThrow(/unknown page encoding/);
    expect(() => forEachPageEntry(entry(1, PageEncoding.XBZRLE, 4096), 10, 512, visit)).toThrow(
      /illegal length/,
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        expect(thrown(() => forEachPageEntry(Buffer.from(bytes), 10, 512, visit))).toSatisfy(
          noneOr(MigrationError),
        );
      }),
      { numRuns: 3000 },
    );
  });

  it('deferred PAGES checksums: a built frame verifies, entry CRCs are the data CRCs, any flipped bit is refused', () => {
    const shifter = new Crc32cShifter(512);
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            page: fc.nat({ max: 999 }),
            kind: fc.constantFrom(PageEncoding.ZERO, PageEncoding.RAW, PageEncoding.XBZRLE),
            len: fc.integer({ min: 1, max: 512 }),
            seed: fc.nat(),
            withCrc: fc.boolean(),
          }),
          { minLength: 1, maxLength: 30 },
        ),
        fc.nat(),
        fc.nat({ max: 7 }),
        (entries, at, bit) => {
          const frames: Buffer[] = [];
          const b = new PagesFrameBuilder(64 * 1024, (f) => frames.push(Buffer.from(f)), 512);
          const datas: Buffer[] = [];
          for (const e of entries) {
            const len = e.kind === PageEncoding.ZERO ? 0 : e.kind === PageEncoding.RAW ? 512 : e.len;
            const view = b.reserve(len);
            for (let i = 0; i < len; i++) view[i] = (e.seed + i * 31) & 255;
            datas.push(Buffer.from(view.subarray(0, len)));
            // Callers pass the data CRC they already have (raw pages), or let the builder compute it.
            b.commit(e.page, e.kind, len, e.withCrc && len > 0 ? crc32c(view.subarray(0, len)) : undefined);
          }
          b.finishFrame();
          const wire = Buffer.concat(frames);
          // The frame checks as a whole-frame CRC32C too: the wire format did not change.
          expect(new FrameReader(64 * 1024).push(wire).length).toBe(1);
          const reader = new FrameReader(64 * 1024);
          reader.deferChecksum(Command.PAGES);
          const [f] = reader.push(wire);
          expect(f!.unverified).toBeDefined();
          const v = verifyPagesFrame(f!, 1000, 512, shifter, new Uint32Array(1));
          expect(v.count).toBe(entries.length);
          datas.forEach((d, i) => {
            expect(v.entryCrcs[i]).toBe(d.length === 0 ? 0 : crc32c(d));
          });
          // Flip one bit anywhere after the header's length field: always refused, never accepted.
          const bad = Buffer.from(wire);
          const pos = 4 + (at % (bad.length - 4));
          bad[pos]! ^= 1 << bit;
          const r2 = new FrameReader(64 * 1024);
          r2.deferChecksum(Command.PAGES);
          expect(() => {
            for (const g of r2.push(bad)) verifyPagesFrame(g, 1000, 512, shifter, new Uint32Array(1));
          }).toThrow(MigrationError);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('page views (commitView): the segments are byte for byte the frame built by copying, bound or not', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            page: fc.nat({ max: 999 }),
            kind: fc.constantFrom(PageEncoding.ZERO, PageEncoding.RAW, PageEncoding.XBZRLE),
            view: fc.boolean(),
            len: fc.integer({ min: 1, max: 512 }),
            seed: fc.nat(),
          }),
          { minLength: 1, maxLength: 60 },
        ),
        fc.integer({ min: 2 * 1024, max: 16 * 1024 }),
        fc.option(fc.uint8Array({ minLength: BINDING_NONCE_BYTES, maxLength: BINDING_NONCE_BYTES })),
        (entries, maxPayload, nonce) => {
          const copied: Buffer[] = [];
          const viewed: Buffer[] = [];
          const released: number[] = [];
          const a = new PagesFrameBuilder(maxPayload, (f) => copied.push(Buffer.from(f)), 512);
          const b = new PagesFrameBuilder(
            maxPayload,
            (f, release) => {
              viewed.push(Buffer.from(f));
              release();
            },
            512,
            (segments, length, release) => {
              // The frame's length is the segments' sum, and the pages are views (the caller's memory), not copies.
              expect(segments.reduce((n, x) => n + x.length, 0)).toBe(length);
              viewed.push(Buffer.concat(segments));
              released.push(length);
              release();
            },
          );
          expect(b.takesViews).toBe(true);
          expect(a.takesViews).toBe(false);
          for (const e of entries) {
            const len = e.kind === PageEncoding.ZERO ? 0 : e.kind === PageEncoding.RAW ? 512 : e.len;
            const data = Buffer.alloc(len);
            for (let i = 0; i < len; i++) data[i] = (e.seed + i * 31) & 255;
            a.reserve(len).set(data);
            a.commit(e.page, e.kind, len, e.kind === PageEncoding.RAW ? crc32c(data) : undefined);
            if (e.kind === PageEncoding.RAW && e.view) {
              b.commitView(e.page, data, crc32c(data));
            } else {
              b.reserve(len).set(data);
              b.commit(e.page, e.kind, len);
            }
          }
          a.finishFrame();
          b.finishFrame();
          expect(viewed).toEqual(copied);
          if (nonce === null) return;
          // Bound on the way out: the trailer of a segmented frame is rewritten in its last segment.
          const sendBinding = new FrameBinding(nonce, FrameSender.SOURCE);
          const wire = copied.map((f) => {
            const g = Buffer.from(f);
            if (g.length % 2 === 0) bindFrame(g, sendBinding.next());
            else {
              const tail = g.subarray(g.length - 9);
              bindTrailer(tail, g.length, sendBinding.next());
            }
            return g;
          });
          const reader = new FrameReader(maxPayload);
          reader.bindFrames(new FrameBinding(nonce, FrameSender.SOURCE));
          expect(reader.push(Buffer.concat(wire)).length).toBe(copied.length);
        },
      ),
      { numRuns: 300 },
    );
    const b = new PagesFrameBuilder(64 * 1024, () => undefined, 512);
    expect(() => b.commitView(1, new Uint8Array(512), 0)).toThrow(/page views/);
  });

  it('a PAGES frame with a good checksum but truncated entries is a PROTOCOL error, never a RangeError', () => {
    const raw = Buffer.alloc(4 + 9 + 512);
    raw.writeUInt32BE(2, 0); // claims two entries; only one is there
    raw.writeUInt32BE(3, 4);
    raw[8] = PageEncoding.RAW;
    raw.writeUInt32BE(512, 9);
    const reader = new FrameReader(64 * 1024);
    reader.deferChecksum(Command.PAGES);
    const [f] = reader.push(encodeFrame(Command.PAGES, raw));
    expect(() => verifyPagesFrame(f!, 10, 512, new Crc32cShifter(512), new Uint32Array(1))).toThrow(
      expect.objectContaining({ code: 'PROTOCOL' }),
    );
  });
});

describe('frame binding', () => {
  const nonceArb = fc.uint8Array({ minLength: BINDING_NONCE_BYTES, maxLength: BINDING_NONCE_BYTES });
  const frameArb = fc.record({
    command: fc.constantFrom(Command.PAGES, Command.ROUND, Command.VCPU_STATE, Command.PAGE_REQUEST),
    payload: fc.uint8Array({ maxLength: 600 }),
  });

  /** What a sender puts on the wire: frames bound in the order it writes them. */
  function wire(nonce: Uint8Array, frames: { command: Command; payload: Uint8Array }[]): Buffer[] {
    const b = new FrameBinding(nonce, FrameSender.SOURCE);
    return frames.map((f) => {
      const frame = encodeFrame(f.command, f.payload);
      bindFrame(frame, b.next());
      return frame;
    });
  }

  /** Reads frames as the destination does (PAGES deferred and verified by the consumer); the first error, if any. */
  function receive(nonce: Uint8Array, bytes: Buffer): { commands: Command[]; error?: MigrationError } {
    const reader = new FrameReader(1 << 16);
    reader.deferChecksum(Command.PAGES);
    reader.bindFrames(new FrameBinding(nonce, FrameSender.SOURCE));
    const commands: Command[] = [];
    try {
      for (const f of reader.push(bytes)) {
        if (f.unverified) {
          // Any payload: the frame check runs after the bound walk, so a PAGES payload that is not a valid entry
          // list is a PROTOCOL error unless the checksum fails first. Compare the trailer directly for those.
          try {
            verifyPagesFrame(f, 1 << 20, 4096, new Crc32cShifter(4096), new Uint32Array(1));
          } catch (e) {
            if (!(e instanceof MigrationError) || e.code === 'PROTOCOL') {
              commands.push(f.command);
              continue;
            }
            throw e;
          }
        }
        commands.push(f.command);
      }
    } catch (e) {
      if (!(e instanceof MigrationError)) throw e;
      return { commands, error: e };
    }
    return { commands };
  }

  it('a bound stream reads back whole however TCP splits it', () => {
    fc.assert(
      fc.property(
        nonceArb,
        fc.array(frameArb, { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (nonce, frames, cuts) => {
          const reader = new FrameReader(1 << 16);
          reader.bindFrames(new FrameBinding(nonce, FrameSender.SOURCE));
          const got = chunked(Buffer.concat(wire(nonce, frames)), cuts).flatMap((c) => reader.push(c));
          expect(got.map((f) => f.command)).toEqual(frames.map((f) => f.command));
        },
      ),
    );
  });

  it('refuses a dropped, repeated, swapped or foreign frame with FOREIGN_FRAME before the consumer sees it', () => {
    fc.assert(
      fc.property(
        nonceArb,
        nonceArb,
        fc.array(frameArb, { minLength: 2, maxLength: 6 }),
        fc.nat(),
        fc.constantFrom('drop', 'repeat', 'swap', 'foreign', 'unbound'),
        (nonce, other, frames, at, how) => {
          fc.pre(Buffer.compare(Buffer.from(nonce), Buffer.from(other)) !== 0);
          const good = wire(nonce, frames);
          const i = at % (good.length - 1);
          const bad = [...good];
          if (how === 'drop') bad.splice(i, 1);
          else if (how === 'repeat') bad.splice(i, 0, good[i]!);
          else if (how === 'swap') [bad[i], bad[i + 1]] = [good[i + 1]!, good[i]!];
          else if (how === 'foreign') bad.splice(i, 0, wire(other, frames)[i]!);
          else bad.splice(i, 0, encodeFrame(frames[i]!.command, frames[i]!.payload));
          const r = receive(nonce, Buffer.concat(bad));
          // A frame bound to another nonce looks like damage when it is checked first (CHECKSUM); anything else is
          // recognised as out of place. Either way it is refused, never used.
          if (how === 'foreign') expect(['FOREIGN_FRAME', 'CHECKSUM']).toContain(r.error?.code);
          else expect(r.error?.code).toBe('FOREIGN_FRAME');
          // Nothing past the damage was handed on as good.
          expect(r.commands.length).toBeLessThanOrEqual(i + 1);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('damage inside a bound frame is still a CHECKSUM error', () => {
    fc.assert(
      fc.property(
        nonceArb,
        fc.array(frameArb, { minLength: 1, maxLength: 4 }),
        fc.nat(),
        fc.nat({ max: 7 }),
        (nonce, frames, at, bit) => {
          const bytes = Buffer.concat(wire(nonce, frames));
          const pos = FRAME_HEADER_BYTES + (at % (bytes.length - FRAME_HEADER_BYTES));
          // Flipping a bit of a length or command byte makes other errors; flip payload and trailer bytes only.
          fc.pre(bytes.readUInt32BE(0) + FRAME_HEADER_BYTES + 4 > pos);
          bytes[pos]! ^= 1 << bit;
          expect(receive(nonce, bytes).error?.code).toBe('CHECKSUM');
        },
      ),
      { numRuns: 300 },
    );
  });

  it('binds from the frame after the HELLO_ACK or RECOVER_ACK, even one in the same chunk', () => {
    const nonce = Buffer.alloc(BINDING_NONCE_BYTES, 7);
    const ack = encodeFrame(
      Command.HELLO_ACK,
      encodeHelloAck({ version: 1, capabilities: Capability.FRAME_BINDING, maxFrame: 1 << 20, nonce }),
    );
    const b = new FrameBinding(nonce, FrameSender.DESTINATION);
    const after = encodeFrame(Command.PAGE_REQUEST, Buffer.from([0, 0, 0, 1, 0, 0, 0, 5]));
    bindFrame(after, b.next());
    let bound: Uint8Array | undefined;
    const reader = new FrameReader(1 << 16);
    reader.bindAfter(
      Command.HELLO_ACK,
      (p) => decodeHelloAck(p).nonce,
      FrameSender.DESTINATION,
      (n) => {
        bound = n;
      },
    );
    expect(reader.push(Buffer.concat([ack, after])).map((f) => f.command)).toEqual([
      Command.HELLO_ACK,
      Command.PAGE_REQUEST,
    ]);
    expect(Buffer.from(bound!)).toEqual(nonce);
    // The same frame unbound after the ack is refused.
    const r2 = new FrameReader(1 << 16);
    r2.bindAfter(
      Command.HELLO_ACK,
      (p) => decodeHelloAck(p).nonce,
      FrameSender.DESTINATION,
      () => undefined,
    );
    expect(() => r2.push(Buffer.concat([ack, encodeFrame(Command.GO)]))).toThrow(/does not belong here/);
    // RECOVER_ACK carries a fresh nonce after its bitmap.
    const present = new Uint8Array([0xff, 1]);
    expect(decodeRecoverAck(encodeRecoverAck(present, nonce), 10, true)).toEqual({ present, nonce });
    expect(decodeRecoverAck(encodeRecoverAck(present), 10, false)).toEqual({ present });
    expect(() => decodeRecoverAck(encodeRecoverAck(present), 10, true)).toThrow(MigrationError);
  });
});
