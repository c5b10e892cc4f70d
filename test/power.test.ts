/**
 * Power end to end: two agents as processes, a host of two guests, a capped pre-copy migration. The report's
 * `energy` carries source and destination figures labelled modelled, per-VM progress, the CAP that was applied;
 * GET /v1/power serves each host's series; a bad capping request is refused before anything starts.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentClient } from '../src/agent/index.js';
import type { ChildAgent } from '../src/agent/spawn.js';
import { UsageError } from '../src/errors.js';
import { runPowerCapping } from '../src/experiments/power-capping.js';
import { fetchPowerSeries, windowOver } from '../src/power/index.js';
import { childAgent, MiB, sleep } from './helpers.js';

describe('power during a migration (two agent processes)', () => {
  let src: { child: ChildAgent; client: AgentClient };
  let dst: { child: ChildAgent; client: AgentClient };
  beforeAll(async () => {
    [src, dst] = await Promise.all([childAgent(), childAgent()]);
  });
  afterAll(async () => {
    await Promise.all([src?.child.stop(), dst?.child.stop()]);
  });

  it('fills report.energy for both hosts and CAPs the migrating VM', async () => {
    const config = { ramBytes: 16 * MiB, workload: { name: 'twolf' as const } };
    await src.client.startGuest(config, 'pm-a', true);
    await src.client.startGuest(config, 'pm-b', true);
    await sleep(600); // a window before the migration for the "before" rates
    const t0 = Date.now();
    const started = await src.client.migrate('pm-a', dst.child.address, {
      capping: 'cap',
      migrationCap: 20,
      maxBandwidth: 8 * MiB,
    });
    const r = await src.client.waitMigration(started.id);
    expect(r.status).toBe('completed');
    const e = r.energy!;
    expect(e.model).toBe('intel-core-i7-920');
    expect(e.source.label).toBe('modelled');
    expect(e.source.joules).toBeGreaterThan(0);
    // The i7-920 model never draws less than its static power.
    expect(e.source.averageWatts).toBeGreaterThanOrEqual(124);
    expect(e.source.peakWatts).toBeGreaterThanOrEqual(e.source.averageWatts - 1e-9);
    expect(e.destination?.label).toBe('modelled');
    expect(e.destination!.joules).toBeGreaterThan(0);
    expect(e.sourceMeasured).toBeNull(); // no RAPL on these machines; a machine with RAPL fills it
    expect(e.capping).toMatchObject({ mode: 'cap', control: 'fixed', caps: [20] });
    expect(r.cap.some((c) => c.cap === 20)).toBe(true);
    const vms = new Map(e.vms.map((v) => [v.guestId, v]));
    expect(vms.get('pm-a')?.migrating).toBe(true);
    expect(vms.get('pm-b')?.migrating).toBe(false);
    expect(vms.get('pm-b')!.stepsPerSecBefore).toBeGreaterThan(0);

    const series = await fetchPowerSeries(src.child.address, t0 - 1000);
    expect(series.labels.watts).toBe('modelled');
    expect(series.labels.utilisation).toBe('measured');
    expect(series.samples.length).toBeGreaterThan(0);
    const during = series.samples.filter((s) => s.at > t0 && s.at <= t0 + r.totalTimeMs);
    // The migration thread (the agent's main thread) was busy sending pages.
    expect(during.reduce((a, s) => a + s.mainCpuMs, 0)).toBeGreaterThan(0);
    const g5 = await fetchPowerSeries(src.child.address, t0 - 1000, 'hpProLiantMl110G5');
    expect(g5.model).toBe('hpProLiantMl110G5');
    expect(Math.min(...g5.samples.map((s) => s.watts))).toBeGreaterThanOrEqual(93.7);

    await dst.client.stopGuest('pm-a');
    await src.client.stopGuest('pm-b');
  });

  for (const mode of ['cap', 'dvfs', 'hybrid'] as const) {
    it(`${mode}: holds a budget 1 W under the host's own power by the 1 s windowed average (within 1 %)`, async () => {
      expect.assertions(4);
      const gap = { ramBytes: 16 * MiB, workload: { name: 'gap' as const } };
      const twolf = { ramBytes: 16 * MiB, workload: { name: 'twolf' as const } };
      const id = `pb-${mode}`;
      await src.client.startGuest(gap, id, true);
      await src.client.startGuest(twolf, `${id}-other`, true);
      await sleep(1500);
      // Relative to the host's own power just before: the uncapped migration would be over it.
      const now = Date.now();
      const pre = await fetchPowerSeries(src.child.address, now - 3000);
      const budget = Math.round((windowOver(pre.samples, now - 1000, now).watts - 1) * 10) / 10;
      const started = await src.client.migrate(id, dst.child.address, {
        capping: mode,
        powerCap: budget,
        maxBandwidth: 8 * MiB,
        // A gap guest may outrun the link on a loaded machine: the budget is what is tested, not convergence.
        maxRounds: 4,
      });
      const r = await src.client.waitMigration(started.id);
      const b = r.energy?.budget;
      expect(r.status).toBe('completed');
      expect(b?.decisions.length).toBeGreaterThan(0);
      if (b?.reachable) {
        expect(b.budgetWatts).toBe(budget);
        expect(b.worstWindow.watts).toBeLessThanOrEqual(budget * 1.01);
      } else {
        // Said plainly: in the decisions and in the events.
        expect(b?.decisions.some((d) => /NOT reachable/.test(d.reason))).toBe(true);
        expect(r.events.some((e) => /NOT reachable/.test(e))).toBe(true);
      }
      await dst.client.stopGuest(id);
      await src.client.stopGuest(`${id}-other`);
    }, 180_000);
  }

  it('runs the power-capping experiment (tiny) and writes its report', async () => {
    const out = mkdtempSync(join(tmpdir(), 'livemig-power-exp-'));
    try {
      const r = await runPowerCapping({
        tiny: true,
        ramBytes: 8 * MiB,
        beforeMs: 600,
        afterMs: 600,
        out,
        pair: { source: src.child, destination: dst.child, close: async () => undefined },
      });
      expect(r.runs.map((x) => `${x.kind}/${x.mode}/${x.status}`)).toEqual([
        'gap-like/none/completed',
        'gap-like/cap/completed',
      ]);
      // The seed's CAP 15 (percent of a model core) on 2 real cores playing 4 model cores.
      expect(r.runs[1]!.caps).toEqual([r.config.capHere]);
      for (const x of r.runs) {
        expect(x.series.length).toBeGreaterThan(0);
        expect(x.vms).toHaveLength(4);
        expect(x.energy?.source.label).toBe('modelled');
      }
      for (const f of ['results.json', 'summary.csv', 'series.csv', 'vms.csv', 'report.html']) {
        expect(existsSync(join(r.dir, f))).toBe(true);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('runs only the sweeps asked for, repeated and paired, with the claims table', async () => {
    const out = mkdtempSync(join(tmpdir(), 'livemig-power-sweep-'));
    try {
      const r = await runPowerCapping({
        quick: true,
        only: ['ratio'],
        repetitions: 2,
        ramBytes: 8 * MiB,
        beforeMs: 600,
        afterMs: 600,
        out,
        pair: { source: src.child, destination: dst.child, close: async () => undefined },
      });
      // No single runs, no controller runs: the ratio sweep alone, both kinds, each repeated.
      expect(r.runs).toEqual([]);
      expect(r.sweeps.map((p) => `${p.sweep}/${p.kind}/${p.mode}/${p.seconds.length}`)).toEqual([
        'ratio/twolf-like/none/2',
        'ratio/gap-like/none/2',
      ]);
      for (const p of r.sweeps) for (const x of p.seconds) expect(x).toBeGreaterThan(0);
      expect(existsSync(join(r.dir, 'claims.csv'))).toBe(true);
      expect(readFileSync(join(r.dir, 'claims.csv'), 'utf8')).toContain('migration time ratio gap / twolf');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);

  it('refuses DVFS capping with a model that has no DVFS states', async () => {
    await src.client.startGuest({ ramBytes: 4 * MiB, workload: { name: 'idle' } }, 'pm-c', true);
    await expect(
      src.client.migrate('pm-c', dst.child.address, {
        capping: 'dvfs',
        dvfsGhz: 1.7,
        powerModel: 'hpProLiantMl110G4',
      }),
    ).rejects.toThrow(UsageError);
    expect((await src.client.guest('pm-c')).status).toBe('running');
    await src.client.stopGuest('pm-c');
  });
});
