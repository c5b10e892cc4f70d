import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { UsageError } from '../errors.js';
import { Command, encodeFrame, PREAMBLE } from '../migration/protocol/index.js';
import { FaultProxy, FrameWatcher } from './proxy.js';

/** A server that records what it receives per connection and can answer. */
interface Sink {
  server: Server;
  address: string;
  received: Buffer[];
  sockets: Socket[];
  close(): Promise<void>;
}

async function sink(onData?: (s: Socket, b: Buffer) => void): Promise<Sink> {
  const received: Buffer[] = [];
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    s.on('data', (b: Buffer) => {
      received.push(b);
      onData?.(s, b);
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const a = server.address() as { port: number };
  return {
    server,
    address: `127.0.0.1:${a.port}`,
    received,
    sockets,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

async function dial(address: string): Promise<Socket> {
  const [host, port] = address.split(':');
  const s = connect({ host: host!, port: Number(port) });
  s.on('error', () => undefined);
  // A refused connection may close before it ever reports 'connect'.
  await new Promise<void>((r) => {
    s.once('connect', () => r());
    s.once('close', () => r());
  });
  // Reading, so a reset from the proxy is noticed.
  s.resume();
  return s;
}

const total = (bs: Buffer[]) => bs.reduce((n, b) => n + b.length, 0);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const until = async (f: () => boolean, what: string) => {
  const end = Date.now() + 15_000;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(
  o: Partial<Parameters<typeof FaultProxy.start>[0]> = {},
  onData?: (s: Socket, b: Buffer) => void,
) {
  const k = await sink(onData);
  const proxy = await FaultProxy.start({ target: k.address, ...o });
  cleanups.push(
    () => k.close(),
    () => proxy.close(),
  );
  return { k, proxy };
}

describe('FaultProxy', () => {
  it('relays a stream intact and in order through jitter and loss', async () => {
    const { k, proxy } = await setup({
      faults: { delayMs: 2, jitterMs: 5, loss: 0.001, rtoMs: 20 },
      seed: 3,
    });
    const data = randomBytes(6 << 20);
    const c = await dial(proxy.address);
    for (let i = 0; i < data.length; i += 100_000) c.write(data.subarray(i, i + 100_000));
    c.end();
    await until(() => total(k.received) === data.length, 'all bytes');
    expect(sha(Buffer.concat(k.received))).toBe(sha(data));
    expect(proxy.stats.bytesForward).toBe(data.length);
    expect(proxy.stats.retransmitStalls).toBeGreaterThan(0);
  });

  it('passes replies back, delayed both ways (delay is a lower bound)', async () => {
    const { proxy } = await setup({ faults: { delayMs: 60 } }, (s, b) => s.write(b));
    const c = await dial(proxy.address);
    const t = performance.now();
    c.write('ping');
    const reply = await new Promise<Buffer>((r) => c.once('data', r));
    expect(reply.toString()).toBe('ping');
    expect(performance.now() - t).toBeGreaterThanOrEqual(115);
    c.destroy();
  });

  it('a stall forwards nothing until it ends, then everything', async () => {
    const { k, proxy } = await setup();
    const c = await dial(proxy.address);
    c.write('a');
    await until(() => total(k.received) === 1, 'first byte');
    proxy.stall(300);
    c.write('bcd');
    await new Promise((r) => setTimeout(r, 100));
    expect(total(k.received)).toBe(1);
    await until(() => total(k.received) === 4, 'bytes after the stall');
    expect(Buffer.concat(k.received).toString()).toBe('abcd');
    expect(proxy.stats.stalls).toBe(1);
    c.destroy();
  });

  it('cuts at a byte offset: the destination gets exactly that many bytes, the source loses its connection', async () => {
    const { k, proxy } = await setup();
    proxy.at({ atByte: 100_000 }, { kind: 'cut' });
    const c = await dial(proxy.address);
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    c.write(randomBytes(300_000));
    await closed;
    await until(() => k.sockets[0]?.destroyed === true, 'destination side closed');
    expect(total(k.received)).toBe(100_000);
    expect(proxy.stats.cuts).toBe(1);
    expect(proxy.stats.events[0]).toMatchObject({ action: 'cut', atByte: 100_000 });
  });

  it('cut with refuse: new connections are dropped until heal()', async () => {
    const { k, proxy } = await setup();
    proxy.cut(true);
    const c = await dial(proxy.address);
    await until(() => c.destroyed, 'the refused connection to close');
    proxy.heal();
    const c2 = await dial(proxy.address);
    c2.write('ok');
    await until(() => total(k.received) === 2, 'bytes after heal');
    c2.destroy();
  });

  it('runs code just before the nth frame of a command reaches the destination', async () => {
    const { k, proxy } = await setup();
    let seenAtCall = -1;
    proxy.at(
      { atFrame: Command.ROUND, nth: 2 },
      {
        kind: 'call',
        fn: async () => {
          await new Promise((r) => setTimeout(r, 50));
          seenAtCall = total(k.received);
        },
      },
    );
    const frames = [
      encodeFrame(Command.PAGES, randomBytes(5000)),
      encodeFrame(Command.ROUND, Buffer.alloc(12)),
      encodeFrame(Command.PAGES, randomBytes(7000)),
      encodeFrame(Command.ROUND, Buffer.alloc(12)),
      encodeFrame(Command.VCPU_STATE, Buffer.from('{}')),
    ];
    const stream = Buffer.concat([PREAMBLE, ...frames]);
    const c = await dial(proxy.address);
    // Byte by byte in places: the framing must be found across chunk boundaries.
    for (let i = 0; i < stream.length; i += 333) c.write(stream.subarray(i, i + 333));
    await until(() => total(k.received) === stream.length, 'whole stream');
    const expected = PREAMBLE.length + frames[0]!.length + frames[1]!.length + frames[2]!.length;
    expect(seenAtCall).toBe(expected);
    c.destroy();
  });

  it('counts frames only after the `after` frame when told to', async () => {
    const { k, proxy } = await setup();
    let at = -1;
    proxy.at(
      { atFrame: Command.PAGES, nth: 1, after: { frame: Command.GO } },
      {
        kind: 'call',
        fn: () => {
          at = proxy.stats.bytesForward;
        },
      },
    );
    const head = [PREAMBLE, encodeFrame(Command.PAGES, Buffer.alloc(100)), encodeFrame(Command.GO)];
    const stream = Buffer.concat([...head, encodeFrame(Command.PAGES, Buffer.alloc(10))]);
    const c = await dial(proxy.address);
    c.write(stream);
    await until(() => total(k.received) === stream.length, 'whole stream');
    expect(at).toBe(total(head));
    expect(proxy.stats.events[0]?.trigger).toBe('at frame PAGES #1 after GO #1');
    c.destroy();
  });

  it('splices bytes into the forward stream at a byte offset, and taps what it relays', async () => {
    const tapped: Buffer[] = [];
    const { k, proxy } = await setup({ tap: (d, b) => d === 'forward' && tapped.push(b) });
    proxy.at({ atByte: 3 }, { kind: 'inject', bytes: Buffer.from('XY') });
    const c = await dial(proxy.address);
    c.write('abcdef');
    await until(() => total(k.received) === 8, 'spliced stream');
    expect(Buffer.concat(k.received).toString()).toBe('abcXYdef');
    expect(Buffer.concat(tapped).toString()).toBe('abcdef');
    c.destroy();
  });

  it('throttles to the set rate (a lower bound on time)', async () => {
    const { k, proxy } = await setup({ faults: { rateBytesPerSec: 4 << 20 } });
    const c = await dial(proxy.address);
    const t = performance.now();
    c.write(randomBytes(1 << 20));
    await until(() => total(k.received) === 1 << 20, '1 MiB');
    expect(performance.now() - t).toBeGreaterThanOrEqual(240);
    c.destroy();
  });

  it('loss = 1 holds every chunk for one RTO; loss = 0 none', async () => {
    const { k, proxy } = await setup({ faults: { loss: 1, rtoMs: 10 } });
    const c = await dial(proxy.address);
    c.write('x');
    await until(() => total(k.received) === 1, 'one byte');
    expect(proxy.stats.retransmitStalls).toBe(1);
    proxy.set({ loss: 0 });
    c.write('y');
    await until(() => total(k.received) === 2, 'second byte');
    expect(proxy.stats.retransmitStalls).toBe(1);
    c.destroy();
  });

  it('a delay spike after a time slows what arrives during it', async () => {
    const { k, proxy } = await setup();
    proxy.at({ afterMs: 0 }, { kind: 'spike', ms: 150, forMs: 1000 });
    await until(() => proxy.stats.events.length === 1, 'the spike');
    const c = await dial(proxy.address);
    const t = performance.now();
    c.write('z');
    await until(() => total(k.received) === 1, 'one byte');
    expect(performance.now() - t).toBeGreaterThanOrEqual(145);
    c.destroy();
  });

  it('refuses bad settings with the field and the accepted form', async () => {
    await expect(FaultProxy.start({ target: 'nope' })).rejects.toThrow(/target: "nope" is not HOST:PORT/);
    const { proxy } = await setup();
    expect(() => proxy.set({ loss: 2 })).toThrow(UsageError);
    expect(() => proxy.set({ loss: 2 })).toThrow(/loss: "2" is not a probability 0\.\.1/);
    expect(() => proxy.set({ delayMs: -1 })).toThrow(/delayMs/);
  });
});

describe('FrameWatcher', () => {
  it('finds the same frames however the stream is chunked', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 15 }), fc.integer({ min: 0, max: 3000 })), {
          maxLength: 12,
        }),
        fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 20 }),
        (spec, cuts) => {
          const frames = spec.map(([cmd, len]) => encodeFrame(cmd, Buffer.alloc(len, 7)));
          const stream = Buffer.concat([PREAMBLE, ...frames]);
          const want: { offset: number; command: number }[] = [];
          let off = PREAMBLE.length;
          for (let i = 0; i < frames.length; i++) {
            want.push({ offset: off, command: spec[i]![0] });
            off += frames[i]!.length;
          }
          const w = new FrameWatcher();
          const got: { offset: number; command: number }[] = [];
          let i = 0;
          let k = 0;
          while (i < stream.length) {
            const n = cuts[k++ % cuts.length]!;
            got.push(...w.feed(stream.subarray(i, i + n)));
            i += n;
          }
          expect(got).toEqual(want);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('stops at a stream that is not livemig framing (TLS)', () => {
    const w = new FrameWatcher();
    expect(w.feed(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9]))).toEqual([]);
    expect(w.active).toBe(false);
  });
});
