/**
 * `livemig cluster --quick` end to end (about 2–3 minutes on a loaded 2-core machine): real agents, the engine's
 * policy on measured utilisation, real migrations. Asserts what must hold however loaded the machine is: every guest
 * accounted for (running on exactly one host, checked by the run itself after every migration and every interval),
 * every completed migration verified, at least one migration, and the comparison with the simulator produced. A
 * second, shorter run kills a host mid-run: its guests are reported lost with it, the others still accounted for.
 */
import { describe, expect, it } from 'vitest';
import { clusterHtmlReport, QUICK_CLUSTER, runCluster } from '../src/cluster/index.js';
import { renderReport } from '../src/report/index.js';
import { runCli } from './helpers.js';

describe('livemig cluster --quick', () => {
  it('consolidates with real migrations, every guest verified and accounted for, next to the simulator', async () => {
    const r = await runCluster(QUICK_CLUSTER);
    expect(r.vms).toHaveLength(QUICK_CLUSTER.vms);
    // Every guest running, on exactly one (live) host: the run stops with an error otherwise.
    for (const vm of r.vms) {
      expect(vm.state).toBe('running');
      expect(vm.finalHost).toBeGreaterThanOrEqual(0);
    }
    expect(r.migrations.length).toBeGreaterThanOrEqual(1);
    for (const m of r.migrations.filter((x) => x.status === 'completed')) expect(m.verified).toBe(true);
    expect(r.migrations.some((m) => m.status === 'completed')).toBe(true);
    expect(r.intervals).toHaveLength(r.window.intervals);
    // The simulator ran on the same hosts, VMs and window; the table has every metric.
    expect(r.sim.hosts).toBe(QUICK_CLUSTER.hosts);
    expect(r.sim.vms).toBe(QUICK_CLUSTER.vms);
    expect(r.comparison.map((c) => c.metric)).toEqual(
      expect.arrayContaining([
        'energy (kWh)',
        'migrations',
        'SLATAH',
        'PDM',
        'SLAV',
        'ESV',
        'host shutdowns',
      ]),
    );
    // The simulator ladder: four runs on the same hosts and VMs, each row against every run, a gap explained; the
    // report's plain simulator run is its second rung (the interval means, model-priced migrations).
    expect(r.agreement.variants.map((v) => v.key)).toEqual([
      'samples',
      'model',
      'measured-migrations',
      'measured-demand',
    ]);
    for (const v of r.agreement.variants) expect(v.sim.vms).toBe(QUICK_CLUSTER.vms);
    expect(r.sim.energyKWh).toBe(r.agreement.variants[1]!.sim.energyKWh);
    for (const row of r.agreement.rows) {
      expect(row.sims).toHaveLength(4);
      // Where one side is 0 (SLAV), the row is judged on its absolute tolerance: within it is no gap.
      const gap = row.relative.some((x, i) =>
        row.byAbsolute[i] ? row.agrees[i] === false : x === null || Math.abs(x) > (row.target ?? 0.1),
      );
      expect(!gap || row.cause !== '').toBe(true);
    }
    for (const vm of r.vms) expect(vm.utilisation).toHaveLength(r.window.intervals);
    // Every planning round recorded (none after the last interval), and compared with the simulator's rounds.
    expect(r.intervals.filter((i) => i.decision).length).toBe(r.window.intervals - 1);
    const d = r.agreement.divergence!;
    expect(d.rounds).toBe(r.window.intervals - 1);
    expect(d.differing).toBe(d.intervals.length);
    expect(Object.values(d.byCause).reduce((a, x) => a + x, 0)).toBe(d.differing);
    // A guest that arrived is measured on its target or held; never both.
    for (const i of r.intervals) {
      for (const v of i.decision?.tail ?? []) expect(i.decision!.held).not.toContain(v);
    }
    expect(r.metrics.energyKWh).toBeGreaterThan(0);
    expect(r.metrics.migrations).toBe(r.migrations.length);
    // The HTML report: comparison table, power curve, hosts on, migration timeline.
    const html = await renderReport(clusterHtmlReport(r, 'livemig cluster --quick'));
    expect(html.match(/<svg/g)).toHaveLength(3);
    expect(html).toContain('Migration timeline');
  }, 600_000);

  it('reports a host killed mid-run and accounts for its guests', async () => {
    const r = await runCluster({
      ...QUICK_CLUSTER,
      durationSec: 40 * 60,
      speed: 300,
      // Host 1 is where PABFD puts the quick mode's guests at t = 0 (the lowest-cost G5).
      killHost: { host: 1, atInterval: 3 },
    });
    expect(r.killed).toHaveLength(1);
    expect(r.killed[0]!.host).toBe(1);
    expect(r.hosts[1]!.alive).toBe(false);
    const lost = r.vms.filter((v) => v.state === 'lost-with-host').map((v) => v.guest);
    expect([...lost].sort()).toEqual([...r.killed[0]!.guests].sort());
    // Every guest is either running on a live host or listed as lost with the killed one.
    for (const vm of r.vms) {
      if (vm.state === 'running') expect(r.hosts[vm.finalHost]!.alive).toBe(true);
      else expect(vm.state).toBe('lost-with-host');
    }
    expect(lost.length + r.vms.filter((v) => v.state === 'running').length).toBe(r.vms.length);
    // The HTML report says so: every guest's state, and the host that died with the guests it took down.
    const html = await renderReport(clusterHtmlReport(r, 'livemig cluster --quick --kill-host 1@3'));
    expect(html).toContain('Hosts that died');
    for (const g of lost) expect(html).toContain(g);
    expect(html.match(/lost-with-host/g)?.length ?? 0).toBe(lost.length);
  }, 600_000);

  it('refuses bad options with a message naming the flag', () => {
    const r = runCli(['cluster', '--quick', '--ram', 'lots']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--ram: "lots"/);
    const repeat = runCli(['cluster', '--quick', '--repeat', '0']);
    expect(repeat.code).toBe(2);
    expect(repeat.stderr).toMatch(/--repeat/);
    const watch = runCli(['cluster', '--quick', '--repeat', '2', '--dashboard']);
    expect(watch.code).toBe(2);
    expect(watch.stderr).toMatch(/--repeat: watch one run at a time/);
  });
});
