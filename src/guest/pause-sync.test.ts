/**
 * pause() parks the vCPUs by Atomics.wait on their park words and takes their states with receiveMessageOnPort:
 * within the call, not on a later turn of the event loop (which unrelated work may hold up). The bound given here
 * is generous, so a loaded machine cannot make it fall back to the event loop.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Guest } from './guest.js';

const MiB = 1024 * 1024;

describe('synchronous pause', () => {
  const guests: Guest[] = [];
  afterEach(async () => {
    await Promise.all(guests.splice(0).map((g) => g.destroy()));
  });

  it('parks every vCPU and has their states before pause() returns its promise', async () => {
    const g = await Guest.create({ ramBytes: 4 * MiB, vcpus: 2, workload: { name: 'zipf' } });
    guests.push(g);
    for (let round = 0; round < 5; round++) {
      g.resume();
      await new Promise((r) => setTimeout(r, 20));
      const p = g.pause(60_000);
      // No await yet: the event loop has not run, so the park reports were taken synchronously.
      expect(g.running).toBe(false);
      const steps = g.state().vcpus.map((v) => v.step);
      await p;
      expect(g.steps()).toEqual(steps);
    }
  });

  it('without a synchronous wait (syncMs 0) still pauses, through the event loop', async () => {
    const g = await Guest.create({ ramBytes: 4 * MiB, workload: { name: 'zipf' } });
    guests.push(g);
    g.resume();
    const p = g.pause(0);
    expect(g.running).toBe(true);
    await p;
    expect(g.running).toBe(false);
  });
});
