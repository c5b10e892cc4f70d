/**
 * The determinism oracle for every workload, with 1 and 2 vCPUs: a guest run freely, paused at whatever steps it
 * reached, copied (RAM + JSON state) into a fresh incoming guest and run on to M steps equals byte for byte a
 * guest run straight to M steps.
 */
import { describe, expect, it } from 'vitest';
import { type GuestConfig, WORKLOAD_NAMES } from './config.js';
import { Guest } from './guest.js';
import { copyRam, ramEquals, referenceRun } from './oracle.js';

const MiB = 1024 * 1024;

describe.each(WORKLOAD_NAMES)('determinism: %s', (name) => {
  it.each([1, 2])('%i vCPU(s): pause anywhere, copy, run on == run straight', async (vcpus) => {
    const config: GuestConfig = {
      ramBytes: 4 * MiB,
      vcpus,
      seed: 7,
      workload: { name, params: name === 'twolf' ? { writeProbability: 0.3 } : {} },
    };
    const source = await Guest.create(config);
    const dest = await Guest.createIncoming(config);
    try {
      source.resume();
      // Let it run until some real work happened (idle is paced: fast-forward it instead).
      if (name === 'idle') {
        await source.runToStep(Array.from({ length: vcpus }, (_, i) => 300 + 17 * i));
      } else {
        while (Math.min(...source.steps()) < 2000) await new Promise((r) => setTimeout(r, 5));
      }
      await source.pause();
      const state = source.state();
      expect(source.dirtyLog.count()).toBeGreaterThan(0);
      copyRam(source.ram, dest.ram);
      dest.loadState(JSON.parse(JSON.stringify(state)));
      expect(dest.steps()).toEqual(state.vcpus.map((v) => v.step));
      const targets = state.vcpus.map((v, i) => v.step + 3000 + 101 * i);
      await dest.runToStep(targets);
      const reference = await referenceRun(config, targets);
      expect(ramEquals(dest.ram, reference.ram)).toEqual({ equal: true, firstDifferentPage: -1 });
      expect(dest.state()).toEqual(reference.state);
      // And the check can fail: the source, left at its pause point, differs from the reference.
      expect(ramEquals(source.ram, reference.ram).equal).toBe(false);
    } finally {
      await source.destroy();
      await dest.destroy();
    }
  });
});

describe('determinism across seeds and runToStep chains', () => {
  it('runToStep in stages equals one runToStep; another seed gives other RAM', async () => {
    const config: GuestConfig = { ramBytes: 2 * MiB, vcpus: 2, workload: { name: 'kv' } };
    const staged = await Guest.create(config);
    try {
      await staged.runToStep(1000);
      await staged.runToStep([1500, 2500]);
      const straight = await referenceRun(config, [1500, 2500]);
      expect(ramEquals(staged.ram, straight.ram).equal).toBe(true);
      const other = await referenceRun({ ...config, seed: 2 }, [1500, 2500]);
      expect(ramEquals(other.ram, straight.ram).equal).toBe(false);
    } finally {
      await staged.destroy();
    }
  });
});
