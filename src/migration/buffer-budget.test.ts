import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { BufferBudget } from './buffer-budget.js';
import { FrameConnection } from './connection.js';
import { Command, encodeFrame } from './protocol/index.js';

describe('BufferBudget', () => {
  it('grants in arrival order, admits a frame larger than the budget once it is empty, and cancels', () => {
    const b = new BufferBudget(100);
    expect(b.tryAcquire(60)).toBe(true);
    const granted: string[] = [];
    b.wait(50, () => granted.push('a'));
    const cancel = b.wait(10, () => granted.push('b'));
    expect(b.tryAcquire(10)).toBe(false); // someone waits ahead, even though 10 would fit
    cancel();
    expect(granted).toEqual([]);
    b.wait(500, () => granted.push('big'));
    b.release(60);
    expect(granted).toEqual(['a']);
    b.release(50);
    expect(granted).toEqual(['a', 'big']);
    expect(b.inUse).toBe(500);
    b.release(500);
    expect(b.inUse).toBe(0);
  });
});

/** Two receiving connections fed by two raw senders over loopback. */
async function pairs(n: number, budget: BufferBudget): Promise<{ tx: Socket[]; rx: FrameConnection[] }> {
  const accepted: Socket[] = [];
  const server = createServer((s) => accepted.push(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const tx: Socket[] = [];
  for (let i = 0; i < n; i++) {
    const s = connect(port, '127.0.0.1');
    await once(s, 'connect');
    tx.push(s);
  }
  while (accepted.length < n) await new Promise((r) => setTimeout(r, 10));
  server.close();
  return { tx, rx: accepted.map((s) => new FrameConnection(s, { budget })) };
}

describe('FrameConnection with a shared budget', () => {
  const open: Socket[] = [];
  afterAll(() => {
    for (const s of open) s.destroy();
  });

  it('a second large frame waits for room, then arrives whole once the first is complete', async () => {
    const budget = new BufferBudget(3 << 20);
    const { tx, rx } = await pairs(2, budget);
    open.push(...tx);
    const frameA = encodeFrame(Command.ROUND, Buffer.alloc(2 << 20, 1));
    const frameB = encodeFrame(Command.ROUND, Buffer.alloc(2 << 20, 2));
    tx[0]!.write(frameA.subarray(0, 1 << 20)); // half of A: A holds 2 MiB of the 3
    const gotA = rx[0]!.receive(60_000);
    while (budget.inUse === 0) await new Promise((r) => setTimeout(r, 10));
    tx[1]!.write(frameB); // all of B: it must wait, not buffer
    const gotB = rx[1]!.receive(60_000);
    while (budget.waiting === 0) await new Promise((r) => setTimeout(r, 10));
    expect(budget.inUse).toBe(frameA.length);
    tx[0]!.write(frameA.subarray(1 << 20));
    expect((await gotA).payload[0]).toBe(1);
    const b = await gotB;
    expect(b.payload.length).toBe(2 << 20);
    expect(b.payload.every((x) => x === 2)).toBe(true);
    expect(budget.inUse).toBe(0);
  });

  it('a connection that dies mid-frame gives its room back', async () => {
    const budget = new BufferBudget(4 << 20);
    const { tx, rx } = await pairs(1, budget);
    open.push(...tx);
    tx[0]!.write(encodeFrame(Command.ROUND, Buffer.alloc(2 << 20)).subarray(0, 1 << 20));
    rx[0]!.receive().catch(() => undefined);
    while (budget.inUse === 0) await new Promise((r) => setTimeout(r, 10));
    tx[0]!.destroy();
    while (budget.inUse !== 0) await new Promise((r) => setTimeout(r, 10));
    expect(budget.inUse).toBe(0);
  });
});
