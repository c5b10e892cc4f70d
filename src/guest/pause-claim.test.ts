/**
 * A pause claims a vCPU that sleeps (pacing, CAP) where it sleeps, by compare-and-swap on its sleep word, instead of
 * waking it to park (control.ts, SLEEP): the state it takes must be the vCPU's own, and a claimed vCPU must run no
 * step until the next command. Bounds are generous: a loaded machine only makes claims rarer, never wrong.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Guest } from './guest.js';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('pause by claim', () => {
  const guests: Guest[] = [];
  afterEach(async () => {
    await Promise.all(guests.splice(0).map((g) => g.destroy()));
  });

  it('claims an idle guest’s sleeping vCPUs instead of waking them', async () => {
    const g = await Guest.create({ ramBytes: 4 * MiB, vcpus: 2, workload: { name: 'idle' } });
    guests.push(g);
    for (let i = 0; i < 20; i++) {
      g.resume();
      await sleep(15);
      await g.pause();
    }
    const { pauses, claimed } = g.pauseStats();
    expect(pauses).toBe(20);
    // Almost every pause finds both vCPUs asleep (they sleep 30 ms at a time); on a loaded machine some are not.
    expect(claimed).toBeGreaterThan(0);
    expect(claimed).toBeLessThanOrEqual(40);
  });

  it('claims a vCPU paced fast enough to sleep only a fraction of a millisecond between pages', async () => {
    // 6000 pages/s: a page about every 0.17 ms, asleep in between (page-order's gap-128MiB guest).
    const g = await Guest.create({
      ramBytes: 4 * MiB,
      vcpus: 1,
      workload: { name: 'gap', params: { workingSetBytes: 2 * MiB, writeRate: 6000 } },
    });
    guests.push(g);
    for (let i = 0; i < 20; i++) {
      g.resume();
      await sleep(10);
      await g.pause();
    }
    expect(g.pauseStats().pauses).toBe(20);
    // Most pauses find it asleep; a loaded machine makes that rarer, but one in twenty is far below what it gets.
    expect(g.pauseStats().claimed).toBeGreaterThan(0);
  });

  it('takes the vCPU’s own state, and a claimed vCPU runs no step until resumed', async () => {
    // Paced at 400 pages/s: the vCPUs sleep a few ms between bursts, so pauses land both asleep and awake.
    const g = await Guest.create({
      ramBytes: 4 * MiB,
      vcpus: 2,
      workload: { name: 'zipf', params: { writeRate: 400 } },
    });
    guests.push(g);
    for (let i = 0; i < 30; i++) {
      g.resume();
      await sleep(3 + (i % 7));
      await g.pause();
      const taken = g.state().vcpus;
      expect(g.steps()).toEqual(taken.map((v) => v.step));
      g.dirtyLog.sync();
      await sleep(i % 5 === 0 ? 40 : 2); // a claimed vCPU wakes from its sleep meanwhile: it must stay parked
      expect(g.dirtyLog.sync().length).toBe(0);
      expect(g.steps()).toEqual(taken.map((v) => v.step));
      // Run to the step it is at: every vCPU wakes and parks again with the state it reports itself.
      await g.runToStep(taken.map((v) => v.step));
      expect(g.state().vcpus).toEqual(taken);
    }
    expect(g.pauseStats().claimed).toBeGreaterThan(0);
  });
});
